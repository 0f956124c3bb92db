import Foundation
import ChatConfig

/// Gathers keys from the request threads of one process and writes them to PostgreSQL from a
/// thread and connection of its own: once a key arrives, it waits `linger` for more, then writes
/// all of them with `write`. Used for the `NOTIFY`s that wake long-polls (1 ms, `Notifier`) and
/// for session uses (1 s, `Sessions.makeTouches`): a request thread only adds keys to a set and
/// never waits for the database, and the keys of several requests go out in one statement.
///
/// Keys of a failed write are kept and written after the reconnect (with a back-off); past
/// `pendingLimit` pending keys new ones are dropped, with a warning (the database has been
/// unreachable for long). `stop()` writes what is pending before it returns.
public final class BackgroundWrites<Key: Hashable & Sendable>: @unchecked Sendable {
    let name: String
    let conninfo: String
    let linger: TimeInterval
    let pendingLimit: Int
    let write: (PGConnection, Set<Key>) throws -> Void

    private let condition = NSCondition()
    private var pending = Set<Key>()
    private var stopping = false
    private var stopped = false
    private var droppedWarned = false

    public init(name: String, conninfo: String, linger: TimeInterval, pendingLimit: Int = 1_000_000,
                write: @escaping (PGConnection, Set<Key>) throws -> Void) {
        self.name = name
        self.conninfo = conninfo
        self.linger = linger
        self.pendingLimit = pendingLimit
        self.write = write
    }

    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    public func post(_ key: Key) { post(CollectionOfOne(key)) }

    public func post<S: Sequence>(_ keys: S) where S.Element == Key {
        condition.lock()
        defer { condition.unlock() }
        let wasEmpty = pending.isEmpty
        for key in keys {
            guard pending.count < pendingLimit else {
                if !droppedWarned { Log.warn("background_write.dropped", ["name": name, "pending": pending.count]) }
                droppedWarned = true
                break
            }
            pending.insert(key)
        }
        if wasEmpty && !pending.isEmpty { condition.signal() }
    }

    /// Writes what is pending, then ends the thread; waits at most `timeout` seconds.
    public func stop(timeout: TimeInterval = 5) {
        condition.lock()
        stopping = true
        condition.broadcast()
        let deadline = Date().addingTimeInterval(timeout)
        while !stopped && condition.wait(until: deadline) {}
        condition.unlock()
    }

    private func run() {
        let db = PGConnection(conninfo: conninfo)
        var backoff: UInt32 = 100_000
        while true {
            condition.lock()
            while pending.isEmpty && !stopping { condition.wait() }
            if !stopping && linger > 0 {
                // Let the keys of requests at about the same time join this write.
                condition.unlock()
                Thread.sleep(forTimeInterval: linger)
                condition.lock()
            }
            let keys = pending
            pending.removeAll(keepingCapacity: true)
            droppedWarned = false
            let last = stopping
            condition.unlock()

            var failed = false
            if !keys.isEmpty {
                do {
                    try db.ensureAlive()
                    try write(db, keys)
                    backoff = 100_000
                } catch {
                    Log.warn("background_write.failed", ["name": name, "keys": keys.count, "error": String(describing: error)])
                    failed = true
                    if !last { post(keys) }
                }
            }
            if last {
                condition.lock()
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
            if failed {
                usleep(backoff)
                backoff = min(backoff * 2, 2_000_000)
            }
        }
    }
}
