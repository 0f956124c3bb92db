import Foundation

/// Sends `NOTIFY channel, 'key,key,…'` for the request threads of one process, from a thread and
/// connection of its own, coalescing what arrives close together into one notification.
///
/// A NOTIFY from the request thread itself cost every stored message one more round trip and
/// one more transaction, and woke every listening session once per message. Here a request
/// thread only adds its keys to a set and goes on; the notifier thread waits up to `linger` for
/// more keys to arrive, then sends them all (several notifications when a payload would pass
/// PostgreSQL's 8000-byte limit). At 3,000 messages per second that is one notification for every
/// few messages, for at most `linger` more delivery latency.
///
/// Keys posted before a connection failure are kept and sent after the reconnect (the listeners
/// wake all their waiters when their own connection comes back, so nothing waits for its time-out
/// because of an outage that both sides saw). `stop()` sends what is pending before returning.
public final class Notifier: @unchecked Sendable {
    let conninfo: String
    let channel: String
    let linger: TimeInterval
    /// PostgreSQL refuses payloads of 8000 bytes or more.
    static let payloadLimit = 7900
    /// Beyond this many pending keys, new ones are dropped (with a warning): the database has
    /// been unreachable for long and the waiters' time-outs will answer them.
    static let pendingLimit = 1_000_000

    private let condition = NSCondition()
    private var pending = Set<Int64>()
    private var stopping = false
    private var stopped = false
    private var droppedWarned = false

    public init(conninfo: String, channel: String, linger: TimeInterval = 0.001) {
        precondition(channel.allSatisfy { $0.isLetter || $0 == "_" }, "channel names are identifiers")
        self.conninfo = conninfo
        self.channel = channel
        self.linger = linger
    }

    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "pg-notify"
        thread.start()
    }

    /// Queues `keys` for the next notification. Never blocks on the database.
    public func post(_ keys: [Int64]) {
        guard !keys.isEmpty else { return }
        condition.lock()
        if pending.count + keys.count > Notifier.pendingLimit {
            if !droppedWarned { Log.warn("notify.dropped", ["pending": pending.count]) }
            droppedWarned = true
        } else {
            let wasEmpty = pending.isEmpty
            pending.formUnion(keys)
            if wasEmpty { condition.signal() }
        }
        condition.unlock()
    }

    /// Sends what is pending, then ends the thread; waits at most `timeout` seconds.
    public func stop(timeout: TimeInterval = 5) {
        condition.lock()
        stopping = true
        condition.broadcast()
        let deadline = Date().addingTimeInterval(timeout)
        while !stopped && condition.wait(until: deadline) {}
        condition.unlock()
    }

    /// The payloads for `keys`: comma-separated, sorted, each under the size limit.
    static func payloads(_ keys: Set<Int64>) -> [String] {
        var result: [String] = []
        var current = ""
        for key in keys.sorted() {
            let text = String(key)
            if !current.isEmpty && current.utf8.count + 1 + text.utf8.count > payloadLimit {
                result.append(current)
                current = ""
            }
            current += current.isEmpty ? text : "," + text
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    private func run() {
        let db = PGConnection(conninfo: conninfo)
        var backoff: UInt32 = 100_000
        while true {
            condition.lock()
            while pending.isEmpty && !stopping { condition.wait() }
            if pending.isEmpty && stopping {
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
            if !stopping && linger > 0 {
                // Let the keys of messages stored at about the same time join this notification.
                condition.unlock()
                Thread.sleep(forTimeInterval: linger)
                condition.lock()
            }
            let keys = pending
            pending.removeAll(keepingCapacity: true)
            droppedWarned = false
            condition.unlock()

            do {
                try db.ensureAlive()
                for payload in Notifier.payloads(keys) {
                    try db.query("SELECT pg_notify($1, $2)", [channel, payload])
                }
                backoff = 100_000
            } catch {
                Log.warn("notify.failed", ["error": String(describing: error)])
                condition.lock()
                pending.formUnion(keys)
                let giveUp = stopping
                if giveUp {
                    stopped = true
                    condition.broadcast()
                }
                condition.unlock()
                if giveUp { return }
                usleep(backoff)
                backoff = min(backoff * 2, 2_000_000)
            }
        }
    }
}
