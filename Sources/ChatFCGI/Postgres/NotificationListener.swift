import Foundation

/// A dedicated connection that LISTENs on one channel and hands each notification's payload to a
/// callback. PostgreSQL delivers NOTIFY at commit to every listening session, on every app host,
/// so this is how a worker learns that another worker (or host) stored something its parked
/// clients are waiting for.
///
/// When the connection drops (e.g. PostgreSQL restarts) it reconnects with backoff and then calls
/// `onReconnect`, since notifications sent while it was away are lost. `onConnectionChange` hears
/// of every LISTEN that took effect (true) and every loss (false), the first connection included.
public final class NotificationListener: @unchecked Sendable {
    let conninfo: String
    let channel: String
    let onNotify: (String) -> Void
    let onReconnect: () -> Void
    let onConnectionChange: (Bool) -> Void

    public init(conninfo: String, channel: String, onNotify: @escaping (String) -> Void,
                onReconnect: @escaping () -> Void, onConnectionChange: @escaping (Bool) -> Void = { _ in }) {
        precondition(channel.allSatisfy { $0.isLetter || $0 == "_" }, "channel names are identifiers")
        self.conninfo = conninfo
        self.channel = channel
        self.onNotify = onNotify
        self.onReconnect = onReconnect
        self.onConnectionChange = onConnectionChange
    }

    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "pg-listen"
        thread.start()
    }

    func run() {
        var backoff: UInt32 = 100_000
        var firstConnect = true
        while true {
            let db = PGConnection(conninfo: conninfo)
            do {
                try db.connect()
                // The channel is a fixed identifier checked above; LISTEN takes no parameters.
                try db.execute("LISTEN \(channel)")
                if !firstConnect {
                    Log.info("listen.reconnected", ["channel": channel])
                    onReconnect()
                }
                firstConnect = false
                backoff = 100_000
                onConnectionChange(true)
                try listen(db)
            } catch {
                onConnectionChange(false)
                Log.warn("listen.lost", ["channel": channel, "error": String(describing: error)])
            }
            usleep(backoff)
            backoff = min(backoff * 2, 5_000_000)
        }
    }

    private func listen(_ db: PGConnection) throws {
        while true {
            var entry = pollfd(fd: db.socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, 5000)
            if ready < 0 && errno != EINTR { throw PGError(sqlState: nil, message: "poll failed", connectionLost: true) }
            // Also every few seconds without traffic: drainNotifications notices a dead socket.
            for notification in try db.drainNotifications() where notification.channel == channel {
                onNotify(notification.payload)
            }
            if ready == 0 {
                // An idle link can die silently; a trivial query proves it is alive.
                try db.execute("SELECT 1")
            }
        }
    }
}
