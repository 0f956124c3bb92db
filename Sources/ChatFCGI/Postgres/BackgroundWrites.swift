import Foundation

/// Gathers keys from the request threads of one process and writes them to PostgreSQL from a
/// thread and connection of its own, every `interval`, all of them in one statement.
///
/// For writes that may lag a moment and whose repeats within the interval are one write (such as
/// "this session was used"): a request thread only adds a key to a set and never waits for the
/// database. Keys of a failed write are kept for the next round; `stop()` writes what is pending.
public final class BackgroundWrites<Key: Hashable & Sendable>: @unchecked Sendable {
    let name: String
    let conninfo: String
    let interval: TimeInterval
    let write: (PGConnection, [Key]) throws -> Void
    /// Past this many pending keys new ones are dropped (the database is unreachable).
    let pendingLimit: Int

    private let condition = NSCondition()
    private var pending = Set<Key>()
    private var stopping = false
    private var stopped = false

    public init(name: String, conninfo: String, interval: TimeInterval, pendingLimit: Int = 1_000_000,
                write: @escaping (PGConnection, [Key]) throws -> Void) {
        self.name = name
        self.conninfo = conninfo
        self.interval = interval
        self.pendingLimit = pendingLimit
        self.write = write
    }

    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    public func post(_ key: Key) {
        condition.lock()
        if pending.count < pendingLimit { pending.insert(key) }
        condition.unlock()
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
        while true {
            condition.lock()
            if !stopping { _ = condition.wait(until: Date().addingTimeInterval(interval)) }
            let keys = pending
            pending.removeAll(keepingCapacity: true)
            let last = stopping
            condition.unlock()
            if !keys.isEmpty {
                do {
                    try db.ensureAlive()
                    try write(db, Array(keys))
                } catch {
                    Log.warn("background_write.failed", ["name": name, "keys": keys.count, "error": String(describing: error)])
                    if !last {
                        condition.lock()
                        if pending.count + keys.count <= pendingLimit { pending.formUnion(keys) }
                        condition.unlock()
                    }
                }
            }
            if last {
                condition.lock()
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
        }
    }
}
