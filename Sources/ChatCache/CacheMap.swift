import Foundation
import ChatConfig
import ChatPostgres

/// Every VersionedCache of this process together, for the status page. Each cache counts under
/// the lock its lookups take anyway, so the threads share no counter (ready alone looks up
/// hundreds of entries); the status page adds them up.
public enum CacheStatistics {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var caches: [WeakCache] = []

    private struct WeakCache { weak var cache: CountedCache? }

    static func register(_ cache: CountedCache) {
        lock.withLock {
            caches.removeAll { $0.cache == nil }
            caches.append(WeakCache(cache: cache))
        }
    }

    /// Bytes kept, hits and misses of every live cache of this process.
    public static func totals() -> (bytes: Int64, hits: Int64, misses: Int64) {
        byKind().values.reduce((Int64(0), Int64(0), Int64(0))) { sum, counts in
            (sum.0 + counts.bytes, sum.1 + counts.hits, sum.2 + counts.misses)
        }
    }

    /// The kind of every live cache of this process, one name per cache.
    public static func liveKindNames() -> [String] {
        lock.withLock { caches.compactMap { $0.cache?.kindName } }
    }

    /// The same per kind of cached data (caches made without a kind count as "other").
    public static func byKind() -> [String: (bytes: Int64, hits: Int64, misses: Int64)] {
        let live = lock.withLock { caches.compactMap(\.cache) }
        var out: [String: (bytes: Int64, hits: Int64, misses: Int64)] = [:]
        for cache in live {
            let counts = cache.counts
            let sum = out[cache.kindName, default: (0, 0, 0)]
            out[cache.kindName] = (sum.bytes + counts.bytes, sum.hits + counts.hits, sum.misses + counts.misses)
        }
        return out
    }
}

/// A cache that reports its size and hits to `CacheStatistics`.
protocol CountedCache: AnyObject {
    var kindName: String { get }
    var counts: (bytes: Int64, hits: Int64, misses: Int64) { get }
}

/// The caches keyed by an id (a user, a group): most of them.
public typealias VersionedCache<Value> = CacheMap<Int64, Value>

/// A process-wide map from a key to a value rendered at a known version, bounded in bytes.
///
/// The version comes from the database (see sql/0004_list_versions.sql): a reader first reads the
/// current version, then asks for `value(for:version:)`; a copy made at any other version is
/// never returned. Whoever renders a value must read the version *before* the data it renders, so
/// that the stored copy is at least as new as its version says (an older version with newer data
/// is only a wasted render; the reverse would be a stale answer).
///
/// Shared by the request threads of one worker process behind one lock; values are immutable and
/// copied out by reference, so the lock is held for a dictionary lookup only. When the byte budget
/// is exceeded, the least recently used quarter of the entries is dropped.
///
/// With `maxAgeNanos`, a copy is also given up that long after its data was read, whatever the
/// versions say (for versions a lost notification could leave standing: `CheckedCache`). Data
/// without a version (a hint that decides nothing) is stored at version 0.
///
/// This is the one bounded map of the project's caches: each is made for a `CacheKind`, which
/// gives it its name and its budget (`CacheBudgets`); docs/caching.md lists them all.
public final class CacheMap<Key: Hashable, Value>: @unchecked Sendable, CountedCache {
    private struct Entry {
        var version: Int64
        var value: Value
        var cost: Int
        var lastUse: UInt64
        var storedAt: UInt64
    }

    private let lock = NSLock()
    private var entries: [Key: Entry] = [:]
    private var clock: UInt64 = 0
    private var totalCost = 0
    private var hits: Int64 = 0
    private var misses: Int64 = 0
    public let budget: Int
    public let maxAgeNanos: UInt64?
    let kindName: String
    private let costOf: (Value) -> Int

    /// - Parameters:
    ///   - kind: what is kept; its budget comes from `budgets` (0 keeps nothing: every lookup misses).
    ///   - maxAgeNanos: how long after its data was read a copy may be used at most (nil: no limit).
    ///   - cost: the approximate size of a value in bytes.
    public convenience init(_ kind: CacheKind, budgets: CacheBudgets, maxAgeNanos: UInt64? = nil,
                            cost: @escaping (Value) -> Int) {
        self.init(budget: budgets.bytes(for: kind), maxAgeNanos: maxAgeNanos, kindName: kind.name, cost: cost)
    }

    /// A cache with a budget of its own, outside `CacheBudgets` (tests).
    package init(budget: Int, maxAgeNanos: UInt64? = nil, kindName: String = "other", cost: @escaping (Value) -> Int) {
        self.budget = max(0, budget)
        self.maxAgeNanos = maxAgeNanos
        self.kindName = kindName
        costOf = cost
        CacheStatistics.register(self)
    }

    public var isEnabled: Bool { budget > 0 }

    var counts: (bytes: Int64, hits: Int64, misses: Int64) {
        lock.withLock { (Int64(totalCost), hits, misses) }
    }

    public func value(for id: Key, version: Int64) -> Value? {
        entry(for: id, version: version)?.value
    }

    /// `id`'s copy at `version` and when its data was read, if it is there and young enough.
    public func entry(for id: Key, version: Int64) -> (value: Value, storedAt: UInt64)? {
        lock.lock()
        defer { lock.unlock() }
        guard var entry = entries[id], entry.version == version,
              maxAgeNanos.map({ monotonicNanos() &- entry.storedAt < $0 }) ?? true else {
            misses &+= 1
            return nil
        }
        hits &+= 1
        clock &+= 1
        entry.lastUse = clock
        entries[id] = entry
        return (entry.value, entry.storedAt)
    }

    /// Stores `value` as `id`'s copy at `version`, unless a copy at a higher version is there
    /// already (versions only grow: a slower request must not put an older copy back).
    /// `storedAt` is when its data was read (kept when an entry is stored again at its version).
    public func store(_ value: Value, for id: Key, version: Int64, storedAt: UInt64 = monotonicNanos()) {
        let cost = costOf(value)
        guard cost <= budget else { return }
        lock.lock()
        defer { lock.unlock() }
        if let old = entries[id] {
            if old.version > version { return }
            totalCost -= old.cost
        }
        clock &+= 1
        entries[id] = Entry(version: version, value: value, cost: cost, lastUse: clock, storedAt: storedAt)
        totalCost += cost
        if totalCost > budget { evict() }
    }

    /// Drops `id`'s copy (a hint found wrong).
    public func remove(_ id: Key) {
        lock.lock()
        defer { lock.unlock() }
        if let old = entries.removeValue(forKey: id) { totalCost -= old.cost }
    }

    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return entries.count
    }

    /// Drops the least recently used entries until three quarters of the budget are in use.
    private func evict() {
        let byAge = entries.sorted { $0.value.lastUse < $1.value.lastUse }
        for (id, entry) in byAge {
            if totalCost <= budget - budget / 4 { break }
            entries[id] = nil
            totalCost -= entry.cost
        }
    }
}
