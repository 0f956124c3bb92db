import Foundation
import ChatConfig

/// Copies of one kind of thing (`kind`, as in `ChangeStripes.Key`), trusted only while their key's
/// change counter has not moved since they were read, and for at most `maxAgeNanos` whatever the
/// counters say (so that a notification lost in some way nobody foresaw costs minutes at most, not
/// the life of the worker). See docs/caching.md.
///
/// The reader's protocol is `VersionedCache`'s: take `version(of:)` *before* reading the data,
/// `store` the data at that version.
public final class CheckedCache<Value>: @unchecked Sendable {
    public static var maxAgeNanos: UInt64 { 300 * 1_000_000_000 }

    public struct Entry {
        public var value: Value
        /// When the data was read (monotonic); kept when an entry is stored again at its version.
        public var storedAt: UInt64
    }

    /// The letter of this kind's change counters (`ChangeStripes.Key`).
    let counterKind: Character
    let entries: VersionedCache<Value>
    let stripes: () -> ChangeStripes

    /// - Parameters:
    ///   - kind: what is kept, and so its budget in `budgets` (0: nothing is kept, every version is nil).
    ///   - counterKind: the letter of its change counters, as the triggers of sql/0006 send it.
    ///   - cost: the approximate size of a value in bytes.
    public convenience init(_ kind: CacheKind, counterKind: Character, budgets: CacheBudgets,
                            stripes: @escaping () -> ChangeStripes = { ChangeStripes.shared }, cost: @escaping (Value) -> Int) {
        self.init(counterKind: counterKind, entries: VersionedCache(kind, budgets: budgets, maxAgeNanos: CheckedCache.maxAgeNanos) {
            cost($0) + 16
        }, stripes: stripes)
    }

    /// A cache with a budget of its own, outside `CacheBudgets` (tests).
    package convenience init(kind counterKind: Character, budget: Int, stripes: @escaping () -> ChangeStripes = { ChangeStripes.shared },
                             cost: @escaping (Value) -> Int) {
        self.init(counterKind: counterKind, entries: VersionedCache(budget: budget, maxAgeNanos: CheckedCache.maxAgeNanos) {
            cost($0) + 16
        }, stripes: stripes)
    }

    private init(counterKind: Character, entries: VersionedCache<Value>, stripes: @escaping () -> ChangeStripes) {
        self.counterKind = counterKind
        self.entries = entries
        self.stripes = stripes
    }

    public var isEnabled: Bool { entries.isEnabled }

    public func key(_ id: Int64) -> ChangeStripes.Key { ChangeStripes.Key(counterKind, id) }

    /// The version to store data about `id` at, read before the data; nil when nothing may be
    /// kept (no budget, or the counters cannot be trusted).
    public func version(of id: Int64) -> Int64? {
        isEnabled ? stripes().version(of: key(id)) : nil
    }

    /// The copy of `id`'s data, if it is current and young enough, with its version.
    public func entry(_ id: Int64) -> (entry: Entry, version: Int64)? {
        guard let version = version(of: id), let found = entries.entry(for: id, version: version) else { return nil }
        return (Entry(value: found.value, storedAt: found.storedAt), version)
    }

    public func value(_ id: Int64) -> Value? { entry(id)?.entry.value }

    public func store(_ value: Value, for id: Int64, version: Int64, storedAt: UInt64 = monotonicNanos()) {
        entries.store(value, for: id, version: version, storedAt: storedAt)
    }
}
