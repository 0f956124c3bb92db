
/// `NOTIFY channel, 'key,key,…'` for the request threads of one process, sent by
/// `BackgroundWrites`: what arrives within a millisecond goes out as one notification.
///
/// A NOTIFY from the request thread itself cost every stored message one more round trip and
/// one more transaction, and woke every listening session once per message. At 3,000 messages a
/// second this is one notification for every few messages, for at most 1 ms more delivery latency.
/// Keys of a failed notification are sent after the reconnect (the listeners also wake all their
/// waiters when their own connection comes back).
public enum Notifier {
    /// PostgreSQL refuses payloads of 8000 bytes or more.
    static let payloadLimit = 7900

    public static func make(conninfo: String, channel: String, linger: Double = 0.001) -> BackgroundWrites<Int64> {
        precondition(channel.allSatisfy { $0.isLetter || $0 == "_" }, "channel names are identifiers")
        return BackgroundWrites(name: "pg-notify", conninfo: conninfo, linger: linger) { db, keys in
            for payload in payloads(keys) {
                try db.query("SELECT pg_notify(\(channel), \(payload))")
            }
        }
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
}
