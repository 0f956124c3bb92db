import Foundation
import ChatConfig

/// A dedicated connection that LISTENs on some channels and hands each notification's payload to
/// its channel's callback. PostgreSQL delivers NOTIFY at commit to every listening session, on
/// every app host, so this is how a worker learns that another worker (or host) stored something
/// its parked clients are waiting for, or changed something its caches hold.
///
/// One connection for all channels: every listening backend is woken for every notification of
/// its database, whatever the channel, so each extra listener costs PostgreSQL a wake-up per
/// notification.
///
/// When the connection drops (e.g. PostgreSQL restarts) it reconnects with backoff. Notifications
/// sent while it was away are lost, so each channel hears `connected(false)` when the link is lost
/// and `connected(true)` once its LISTEN is in effect again (and the first time).
public final class NotificationListener: @unchecked Sendable {
    public struct Channel {
        public var name: String
        public var onNotify: (String) -> Void
        public var connected: (Bool) -> Void

        public init(_ name: String, onNotify: @escaping (String) -> Void, connected: @escaping (Bool) -> Void = { _ in }) {
            precondition(!name.isEmpty && name.allSatisfy { $0.isLetter || $0 == "_" }, "channel names are identifiers")
            self.name = name
            self.onNotify = onNotify
            self.connected = connected
        }
    }

    let conninfo: String
    let channels: [Channel]

    public init(conninfo: String, channels: [Channel]) {
        self.conninfo = conninfo
        self.channels = channels
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
                // The channels are fixed identifiers checked above; LISTEN takes no parameters.
                for channel in channels { try db.execute("LISTEN \(channel.name)") }
                if !firstConnect { Log.info("listen.reconnected", ["channels": channels.map(\.name).joined(separator: ",")]) }
                firstConnect = false
                backoff = 100_000
                for channel in channels { channel.connected(true) }
                try listen(db)
            } catch {
                for channel in channels { channel.connected(false) }
                Log.warn("listen.lost", ["channels": channels.map(\.name).joined(separator: ","), "error": String(describing: error)])
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
            for notification in try db.drainNotifications() {
                for channel in channels where channel.name == notification.channel { channel.onNotify(notification.payload) }
            }
            if ready == 0 {
                // An idle link can die silently; a trivial query proves it is alive.
                try db.execute("SELECT 1")
            }
        }
    }
}
