import Foundation

/// A worker process: started by the supervisor (fork+exec of the same binary) with the listening
/// socket on descriptor 3 and a readiness pipe on descriptor 4.
public enum WorkerProcess {
    public static let listenFD: Int32 = 3
    public static let readyFD: Int32 = 4

    /// Runs the worker until SIGTERM/SIGINT, then drains and returns the exit status.
    public static func run(config: Config, responder: Responder) -> Int32 {
        Log.processTag = "worker \(getpid())"
        Signals.blockHandled()
        FastCGIServer.initializeLibrary()

        let server = FastCGIServer(listenFD: listenFD, threads: config.threads,
                                   slowRequestMillis: config.slowRequestMs) {
            // One PostgreSQL connection per thread, made on first use.
            let db = PGConnection(conninfo: config.database)
            return { exchange in FastCGIAdapter.handle(exchange, responder: responder, db: db) }
        }
        server.start()
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
        Log.info("worker.stopped", ["clean": stopped])
        return stopped ? 0 : 1
    }
}
