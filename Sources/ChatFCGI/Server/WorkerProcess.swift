import Foundation

/// A worker process: started by the supervisor (fork+exec of the same binary) with the listening
/// socket on descriptor 3, a readiness pipe on descriptor 4 and the shared change counters
/// (`ChangeStripes`) on descriptor 5.
public enum WorkerProcess {
    public static let listenFD: Int32 = 3
    public static let readyFD: Int32 = 4
    public static let changesFD: Int32 = 5


    /// Runs the worker until SIGTERM/SIGINT, then drains and returns the exit status.
    /// - Parameter wakeChannel: the NOTIFY channel whose payloads are comma-separated keys (user
    ///   ids) to wake parked requests for.
    /// - Parameter notifier: sends this process's notifications on `wakeChannel`; started here and
    ///   flushed after the requests in flight have finished.
    public static func run(config: Config, responder: Responder, wakeChannel: String, notifier: BackgroundWrites<Int64>? = nil) -> Int32 {
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
        notifier?.start()
        server.start()
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
        Log.flushAccess()
        Log.info("worker.stopped", ["clean": stopped])
        return stopped ? 0 : 1
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
