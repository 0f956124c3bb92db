import CFastCGI
import Foundation

/// The FastCGI side of one worker process: `threads` threads serve requests from a listening
/// socket shared with the other worker processes.
///
/// Each thread runs its own `poll` loop over the listening socket and the kept-alive nginx
/// connections it owns. libfcgi parses the protocol; the accept itself is done here (non-blocking,
/// on a socket every worker shares) so that a thread never sleeps inside `accept` or inside a read
/// on an idle kept-alive connection. That gives two things libfcgi's blocking `FCGX_Accept_r`
/// loop cannot: an idle kept-alive connection never pins a thread (requests do not queue behind
/// idle connections), and a graceful stop can wake every thread at once through a pipe.
public final class FastCGIServer: @unchecked Sendable {
    public typealias Handler = (FastCGIExchange) -> Void

    let listenFD: Int32
    let threadCount: Int
    /// A thread stops accepting new connections while it owns this many.
    let maxConnectionsPerThread: Int
    let slowRequestNanos: UInt64
    let makeHandler: () -> Handler

    /// Written once when the server starts draining; every thread polls its read end.
    private var shutdownPipe: [Int32] = [-1, -1]
    private let lock = NSLock()
    private var draining = false
    private var runningThreads = 0
    private let allStopped = NSCondition()
    private var slots: [RequestSlot] = []
    /// Long-polls waiting without a thread.
    public let parking = ParkingLot()

    /// What each thread is doing right now, for the slow-request watchdog.
    final class RequestSlot: @unchecked Sendable {
        let lock = NSLock()
        var path = ""
        var startNanos: UInt64 = 0
        var reported = false
    }

    public init(listenFD: Int32, threads: Int, maxConnectionsPerThread: Int = 4, slowRequestMillis: Int,
                makeHandler: @escaping () -> Handler) {
        self.listenFD = listenFD
        self.threadCount = threads
        self.maxConnectionsPerThread = maxConnectionsPerThread
        self.slowRequestNanos = UInt64(slowRequestMillis) * 1_000_000
        self.makeHandler = makeHandler
    }

    public var isDraining: Bool { lock.withLock { draining } }

    /// Initialises libfcgi. Call once per process, after the process's own signal dispositions are set
    /// (libfcgi installs SIGPIPE/SIGUSR1 handlers of its own only where the disposition is default).
    public static func initializeLibrary() {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGUSR1, SIG_IGN)
        _ = FCGX_Init()
    }

    /// Starts the threads and returns at once.
    public func start() {
        shutdownPipe = makeCloseOnExecPipe()
        slots = (0..<threadCount).map { _ in RequestSlot() }
        runningThreads = threadCount
        for index in 0..<threadCount {
            let slot = slots[index]
            let thread = Thread { [self] in
                let loop = ConnectionLoop(server: self, slot: slot, handler: makeHandler())
                loop.run()
                allStopped.lock()
                runningThreads -= 1
                allStopped.broadcast()
                allStopped.unlock()
            }
            thread.name = "fcgi-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
        let watchdog = Thread { [self] in watchSlowRequests() }
        watchdog.name = "fcgi-watchdog"
        watchdog.start()
        let monitor = Thread { [parking] in parking.monitor() }
        monitor.name = "fcgi-parking"
        monitor.start()
    }

    /// Stops accepting, lets requests in flight finish, and closes idle connections.
    public func beginDraining() {
        let first: Bool = lock.withLock {
            if draining { return false }
            draining = true
            return true
        }
        if first {
            var byte: UInt8 = 1
            _ = Foundation.write(shutdownPipe[1], &byte, 1)
            // Parked long-polls are answered now (with whatever they have), so clients reconnect
            // to the new generation instead of waiting on a worker that is leaving.
            parking.drain()
        }
    }

    /// Waits until every thread has stopped, or the deadline passes. Returns true when all stopped.
    public func waitUntilStopped(timeoutSeconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        allStopped.lock()
        defer { allStopped.unlock() }
        while runningThreads > 0 {
            if !allStopped.wait(until: deadline) { return runningThreads == 0 }
        }
        return true
    }

    private func watchSlowRequests() {
        while true {
            usleep(250_000)
            let now = monotonicNanos()
            for slot in slots {
                slot.lock.lock()
                // `now` was read before the lock, so a request may have started after it: compare
                // before subtracting (an unsigned underflow would trap).
                if slot.startNanos != 0 && !slot.reported && now > slot.startNanos
                    && now - slot.startNanos > slowRequestNanos {
                    slot.reported = true
                    let path = slot.path
                    let ms = (now - slot.startNanos) / 1_000_000
                    slot.lock.unlock()
                    Log.warn("request.slow", ["path": path, "running_ms": ms])
                } else {
                    slot.lock.unlock()
                }
            }
        }
    }

    /// One thread's loop over its connections.
    final class ConnectionLoop {
        let server: FastCGIServer
        let slot: RequestSlot
        let handler: Handler
        var idle: [UnsafeMutablePointer<FCGX_Request>] = []
        var spare: [UnsafeMutablePointer<FCGX_Request>] = []
        var pollSet: [pollfd] = []

        init(server: FastCGIServer, slot: RequestSlot, handler: @escaping Handler) {
            self.server = server
            self.slot = slot
            self.handler = handler
        }

        func run() {
            var draining = false
            let parking = server.parking
            while true {
                if !draining && server.isDraining {
                    draining = true
                    // Idle kept-alive connections are closed now; nginx retries a request that
                    // raced with the close on another connection (fastcgi_next_upstream).
                    for connection in idle { release(connection) }
                    idle.removeAll()
                }
                if draining && idle.isEmpty && parking.parkedCount == 0 && parking.readyCount == 0 { break }

                pollSet.removeAll(keepingCapacity: true)
                // While draining, the shutdown pipe stays readable: leave it out, or poll would spin.
                pollSet.append(pollfd(fd: draining ? -1 : server.shutdownPipe[0], events: Int16(POLLIN), revents: 0))
                let accepting = !draining && idle.count < server.maxConnectionsPerThread
                pollSet.append(pollfd(fd: accepting ? server.listenFD : -1, events: Int16(POLLIN), revents: 0))
                pollSet.append(pollfd(fd: parking.readyPipe[0], events: Int16(POLLIN), revents: 0))
                for connection in idle {
                    pollSet.append(pollfd(fd: connection.pointee.ipcFd, events: Int16(POLLIN), revents: 0))
                }
                let ready = poll(&pollSet, nfds_t(pollSet.count), draining ? 100 : 1000)
                if ready <= 0 { continue }

                // The kept-alive connections with a request waiting (the poll set matches `idle`
                // as it was before anything below adds to it) …
                var stillIdle: [UnsafeMutablePointer<FCGX_Request>] = []
                let polled = idle
                idle.removeAll(keepingCapacity: true)
                for (index, connection) in polled.enumerated() {
                    if pollSet[index + 3].revents != 0 {
                        serve(connection)
                    } else {
                        stillIdle.append(connection)
                    }
                }
                idle.append(contentsOf: stillIdle)
                // … then a parked request that is due …
                if pollSet[2].revents != 0 {
                    var byte: UInt8 = 0
                    if read(parking.readyPipe[0], &byte, 1) == 1, let parked = parking.takeReady() {
                        parked.exchange.isResuming = true
                        dispatch(parked.request, parked.exchange)
                    }
                }
                // … then a new connection.
                if accepting && pollSet[1].revents != 0 {
                    acceptOne()
                }
            }
            for connection in spare { connection.deallocate() }
        }

        private func acceptOne() {
            let fd = accept(server.listenFD, nil, nil)
            if fd < 0 { return } // EAGAIN: another thread or worker took it
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let request = spare.popLast() ?? UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
            // listen_sock -1: if the connection ends, libfcgi must not accept on its own (it would block).
            FCGX_InitRequest(request, -1, 0)
            request.pointee.ipcFd = fd
            // FCGX_Accept_r first "finishes" the previous request and closes the connection unless
            // it is marked kept; this connection has had no request yet, so keep it open.
            request.pointee.keepConnection = 1
            serve(request)
        }

        /// Reads one request from the connection, handles it, and keeps the connection if nginx asked to.
        private func serve(_ request: UnsafeMutablePointer<FCGX_Request>) {
            // A plain close whenever libfcgi closes this connection: its lingering close uses
            // select(), which breaks for descriptors above FD_SETSIZE.
            request.pointee.detached = 1
            // With ipcFd open, FCGX_Accept_r reads the next request from this connection only.
            if FCGX_Accept_r(request) < 0 || request.pointee.ipcFd < 0 {
                // The connection ended (nginx closed an idle kept-alive connection); libfcgi closed it.
                recycle(request)
                return
            }
            dispatch(request, FastCGIExchange(raw: request))
        }

        /// Runs the handler; then parks the request, or finishes it and keeps the connection if
        /// nginx asked to.
        private func dispatch(_ request: UnsafeMutablePointer<FCGX_Request>, _ exchange: FastCGIExchange) {
            slot.lock.lock()
            slot.path = exchange.param("DOCUMENT_URI") ?? exchange.param("SCRIPT_NAME") ?? "?"
            slot.startNanos = monotonicNanos()
            slot.reported = false
            slot.lock.unlock()

            exchange.clearParkRequest()
            handler(exchange)

            slot.lock.lock()
            slot.startNanos = 0
            slot.lock.unlock()
            if let park = exchange.parkRequest {
                // The parking lot owns the request now; this thread moves on.
                server.parking.park(request: request, exchange: exchange, key: park.key,
                                    deadline: park.deadline, seenGeneration: park.seenGeneration)
                return
            }
            if exchange.closeConnection || server.isDraining {
                request.pointee.keepConnection = 0
            }
            request.pointee.detached = 1
            FCGX_Finish_r(request)
            if request.pointee.ipcFd >= 0 {
                idle.append(request)
            } else {
                recycle(request)
            }
        }

        private func release(_ request: UnsafeMutablePointer<FCGX_Request>) {
            request.pointee.detached = 1
            FCGX_Free(request, 1)
            recycle(request)
        }

        private func recycle(_ request: UnsafeMutablePointer<FCGX_Request>) {
            if request.pointee.ipcFd >= 0 {
                request.pointee.detached = 1
                FCGX_Free(request, 1)
            }
            if spare.count < 8 { spare.append(request) } else { request.deallocate() }
        }
    }
}

/// A pipe whose both ends are closed on exec (so no child process inherits them).
func makeCloseOnExecPipe() -> [Int32] {
    var fds: [Int32] = [-1, -1]
    guard fds.withUnsafeMutableBufferPointer({ pipe($0.baseAddress!) }) == 0 else { return fds }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return fds
}
