import Foundation
import ChatConfig
import ChatFastCGI
import ChatRouting
import ChatPostgres
import ChatCache

/// A worker process: started by the supervisor (fork+exec of the same binary) with the listening
/// socket on descriptor 3, a readiness pipe on descriptor 4, the shared change counters
/// (`ChangeStripes`) on descriptor 5 and the scoreboard (`Scoreboard`) on descriptor 6.
public enum WorkerProcess {
    public static let listenFD: Int32 = 3
    public static let readyFD: Int32 = 4
    public static let changesFD: Int32 = 5
    public static let scoreboardFD: Int32 = 6


    /// Runs the worker until SIGTERM/SIGINT, then drains and returns the exit status.
    /// - Parameter wakeChannel: the NOTIFY channel whose payloads are comma-separated keys (user
    ///   ids) to wake parked requests for.
    /// - Parameter notifier: sends this process's notifications on `wakeChannel`; started here and
    ///   flushed after the requests in flight have finished.
    /// - Parameter statistics: what the features add to this worker's scoreboard slot.
    public static func run(config: Config, responder: Responder, wakeChannel: String, notifier: BackgroundWrites<Int64>? = nil,
                           statistics: @escaping @Sendable () -> [Scoreboard.Field: Int64] = { [:] }) -> Int32 {
        Log.processTag = "worker \(getpid())"
        raiseDescriptorLimit()
        Signals.blockHandled()
        FastCGIServer.initializeLibrary()

        let server = FastCGIServer(listenFD: listenFD, threads: config.threads,
                                   slowRequestMillis: config.slowRequestMs,
                                   ioTimeoutSeconds: config.bodyTimeoutSeconds) {
            // One PostgreSQL connection per thread, made on first use.
            let db = PGConnection(conninfo: config.database)
            return { exchange in FastCGIAdapter.handle(exchange, responder: responder, db: db) }
        }
        responder.wakes = server.parking
        server.parking.maxPerKey = config.maxParkedPerUser
        server.parking.maxTotal = config.maxParkedPerWorker
        // Without the supervisor's segment (an older supervisor during an upgrade), this worker's
        // caches still hear of every change through the listener, only not of its siblings' at once.
        if let shared = ChangeStripes(fd: changesFD) {
            ChangeStripes.shared = shared
        } else {
            Log.warn("worker.private_counters")
        }
        if let board = Scoreboard(fd: scoreboardFD) {
            Scoreboard.shared = board
        } else {
            Log.warn("worker.private_scoreboard")
        }
        Scoreboard.shared.claim()
        notifier?.start()
        server.start()
        startPublishing(server: server, threads: config.threads, statistics: statistics)
        // One listening connection: wakes parked long-polls (the payload of a notification is the
        // affected user ids; after a lost link every parked request is woken, since wakes may have
        // been lost) and keeps the caches' change counters (ChangeStripes).
        let parking = server.parking
        NotificationListener(conninfo: config.database, channels: [
            .init(wakeChannel, onNotify: { payload in parking.wake(payload.split(separator: ",").compactMap { Int64($0) }) },
                  connected: { if $0 { parking.wakeAll() } }),
            ChangeStripes.shared.listenerChannel(),
        ]).start()
        Log.info("worker.ready", ["threads": config.threads])
        var ready: UInt8 = UInt8(ascii: "R")
        _ = write(readyFD, &ready, 1)
        close(readyFD)

        while true {
            guard let signal = Signals.wait(timeout: 1) else { continue }
            if signal == SIGTERM || signal == SIGINT || signal == SIGQUIT { break }
            // SIGHUP is the supervisor's business; a worker ignores it.
        }
        Log.info("worker.draining")
        server.beginDraining()
        let stopped = server.waitUntilStopped(timeoutSeconds: Double(config.shutdownTimeoutSeconds))
        notifier?.stop()
        Scoreboard.shared.release()
        Log.flushAccess()
        Log.info("worker.stopped", ["clean": stopped])
        return stopped ? 0 : 1
    }

    /// Fills in this worker's scoreboard slot twice a second (the status page reads every slot).
    static func startPublishing(server: FastCGIServer, threads: Int,
                                statistics: @escaping @Sendable () -> [Scoreboard.Field: Int64]) {
        let thread = Thread {
            while true {
                var values = statistics()
                values[.threads] = Int64(threads)
                values[.busyThreads] = Int64(server.busyThreads)
                values[.requestsServed] = server.requestsServed
                values[.parkedRequests] = Int64(server.parking.parkedCount)
                values[.parkedDisplaced] = Int64(server.parking.displacedCount)
                values[.parkedTurnedAway] = Int64(server.parking.turnedAwayCount)
                values[.acceptedConnections] = Int64(server.acceptedConnections)
                values[.failedAccepts] = Int64(server.failedAccepts)
                values[.databaseConnections] = PGConnection.openConnections
                let caches = CacheStatistics.totals()
                values[.cacheBytes] = caches.bytes
                values[.cacheHits] = caches.hits
                values[.cacheMisses] = caches.misses
                Scoreboard.shared.publish(values)
                usleep(500_000)
            }
        }
        thread.name = "scoreboard"
        thread.start()
    }

    /// Parked long-polls each hold an nginx connection: allow as many descriptors as the system does.
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }
}
