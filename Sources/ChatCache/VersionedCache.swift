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
        let live = lock.withLock { caches.compactMap(\.cache) }
        return live.reduce((Int64(0), Int64(0), Int64(0))) { sum, cache in
            let counts = cache.counts
            return (sum.0 + counts.bytes, sum.1 + counts.hits, sum.2 + counts.misses)
        }
    }
}

/// A cache that reports its size and hits to `CacheStatistics`.
protocol CountedCache: AnyObject {
    var counts: (bytes: Int64, hits: Int64, misses: Int64) { get }
}

/// A process-wide map from an id to a value rendered at a known version, bounded in bytes.
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
public final class VersionedCache<Value>: @unchecked Sendable, CountedCache {
    private struct Entry {
        var version: Int64
        var value: Value
        var cost: Int
        var lastUse: UInt64
    }

    private let lock = NSLock()
    private var entries: [Int64: Entry] = [:]
    private var clock: UInt64 = 0
    private var totalCost = 0
    private var hits: Int64 = 0
    private var misses: Int64 = 0
    public let budget: Int
    private let costOf: (Value) -> Int

    /// - Parameters:
    ///   - budget: bytes of values to keep (0 keeps nothing: every lookup misses).
    ///   - cost: the approximate size of a value in bytes.
    public init(budget: Int, cost: @escaping (Value) -> Int) {
        self.budget = max(0, budget)
        costOf = cost
        CacheStatistics.register(self)
    }

    var counts: (bytes: Int64, hits: Int64, misses: Int64) {
        lock.withLock { (Int64(totalCost), hits, misses) }
    }

    public func value(for id: Int64, version: Int64) -> Value? {
        lock.lock()
        defer { lock.unlock() }
        guard var entry = entries[id], entry.version == version else {
            misses &+= 1
            return nil
        }
        hits &+= 1
        clock &+= 1
        entry.lastUse = clock
        entries[id] = entry
        return entry.value
    }

    /// Stores `value` as `id`'s copy at `version`, unless a copy at a higher version is there
    /// already (versions only grow: a slower request must not put an older copy back).
    public func store(_ value: Value, for id: Int64, version: Int64) {
        let cost = costOf(value)
        guard cost <= budget else { return }
        lock.lock()
        defer { lock.unlock() }
        if let old = entries[id] {
            if old.version > version { return }
            totalCost -= old.cost
        }
        clock &+= 1
        entries[id] = Entry(version: version, value: value, cost: cost, lastUse: clock)
        totalCost += cost
        if totalCost > budget { evict() }
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
