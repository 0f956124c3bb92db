import CFastCGI
import Foundation
import Synchronization
import ChatConfig

/// The FastCGI side of one worker process: `threads` threads serve requests from a listening
/// socket shared with the other worker processes.
///
/// The threads of a process wait in one shared `epoll` set holding the listening socket, the
/// kept-alive nginx connections that are idle, the parking lot's ready pipe and the shutdown pipe.
/// libfcgi parses the protocol; the accept itself is done here (non-blocking, on a socket every
/// worker shares) so that a thread never sleeps inside `accept` or inside a read on an idle
/// kept-alive connection. Each idle connection is armed with `EPOLLONESHOT` and each thread takes
/// one event at a time, so a request on any kept-alive connection of the process goes to whichever
/// thread is free: no connection belongs to a thread, and requests never queue behind a busy one
/// while another thread idles (libfcgi's blocking `FCGX_Accept_r` loop pins a thread to each
/// kept-alive connection instead). A graceful stop wakes the threads through the shutdown pipe.
public final class FastCGIServer: @unchecked Sendable {
    public typealias Handler = (FastCGIExchange) -> Void

    let listenFD: Int32
    let threadCount: Int
    let slowRequestNanos: UInt64
    /// Longest one read or write on a connection blocks (SO_RCVTIMEO/SO_SNDTIMEO): a peer that
    /// stalls mid-request frees its thread after this, whatever it sends.
    let ioTimeoutSeconds: Int
    let makeHandler: () -> Handler

    /// Written once when the server starts draining; its read end is in the shared epoll set.
    private var shutdownPipe: [Int32] = [-1, -1]
    private let lock = NSLock()
    private var draining = false
    private var runningThreads = 0
    private let allStopped = NSCondition()
    private var slots: [RequestSlot] = []
    /// Long-polls waiting without a thread.
    public let parking = ParkingLot()

    /// The epoll set every thread of this process waits in (see the type's comment).
    private var epollFD: Int32 = -1
    /// Idle kept-alive connections armed in `epollFD`, by address. A thread that gets an event for
    /// a connection takes it out of here before touching it; one that finds it gone (closed by the
    /// drain) skips the event. Arming and the drain hold `armedLock`, so no connection is armed
    /// after the drain closed the idle ones.
    private let armedLock = NSLock()
    private var armed: [UInt: UnsafeMutablePointer<FCGX_Request>] = [:]
    private var armedClosed = false

    /// What each thread is doing right now, for the slow-request watchdog.
    final class RequestSlot: @unchecked Sendable {
        let lock = NSLock()
        var path = ""
        var startNanos: UInt64 = 0
        var reported = false
    }

    public init(listenFD: Int32, threads: Int, slowRequestMillis: Int, ioTimeoutSeconds: Int = 30,
                makeHandler: @escaping () -> Handler) {
        self.listenFD = listenFD
        self.threadCount = threads
        self.slowRequestNanos = UInt64(slowRequestMillis) * 1_000_000
        self.ioTimeoutSeconds = ioTimeoutSeconds
        self.makeHandler = makeHandler
    }

    /// Requests answered so far (a parked one when it is answered), for the status page.
    public var requestsServed: Int64 { served.load(ordering: .relaxed) }
    private let served = Atomic<Int64>(0)

    /// Threads running a request right now.
    public var busyThreads: Int {
        slots.reduce(0) { count, slot in count + (slot.lock.withLock { slot.startNanos != 0 } ? 1 : 0) }
    }

    /// Connections accepted so far, for the status page.
    public var acceptedConnections: UInt64 { acceptLock.withLock { accepted } }
    /// Accepts that failed for want of descriptors or memory, for the status page.
    public var failedAccepts: UInt64 { acceptLock.withLock { acceptFailures } }

    // MARK: accept back-off

    /// While accepting fails for want of a resource (EMFILE and the like), the listening socket
    /// leaves the epoll set (it is level-triggered: every thread would otherwise spin on it) and
    /// comes back after a pause that doubles up to a second while the failures go on.
    private let acceptLock = NSLock()
    private var accepted: UInt64 = 0
    private var acceptFailures: UInt64 = 0
    private var acceptPausedUntil: UInt64 = 0
    /// `acceptPausedUntil != 0`, read by every thread at every wake without taking the lock.
    private let acceptIsPaused = Atomic<Bool>(false)
    private var acceptPauseNanos: UInt64 = 0
    private var lastAcceptLog: UInt64 = 0

    fileprivate func acceptSucceeded() {
        acceptLock.withLock {
            accepted &+= 1
            acceptPauseNanos = 0
        }
    }

    fileprivate func acceptFailed(errno code: Int32) {
        let now = monotonicNanos()
        let shouldLog: Bool = acceptLock.withLock {
            acceptFailures &+= 1
            if acceptPausedUntil != 0 { return false }
            acceptPauseNanos = min(max(acceptPauseNanos * 2, 50_000_000), 1_000_000_000)
            acceptPausedUntil = now + acceptPauseNanos
            acceptIsPaused.store(true, ordering: .releasing)
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, listenFD, nil)
            // One line per ten seconds at most: the condition may last.
            if now &- lastAcceptLog > 10_000_000_000 || lastAcceptLog == 0 {
                lastAcceptLog = now
                return true
            }
            return false
        }
        if shouldLog {
            Log.error("accept.failed", ["errno": code, "error": String(cString: strerror(code)),
                                        "pause_ms": acceptPauseNanos / 1_000_000])
        }
    }

    /// Puts the listening socket back once its pause is over (called by every thread as it wakes).
    fileprivate func resumeAcceptingIfDue() {
        acceptLock.withLock {
            guard acceptPausedUntil != 0, monotonicNanos() >= acceptPausedUntil else { return }
            acceptPausedUntil = 0
            acceptIsPaused.store(false, ordering: .releasing)
            if isDraining { return }
            watch(listenFD, token: Self.listenToken, events: EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue)
        }
    }

    /// The epoll wait of a thread: short while accepting is paused, so the pause ends on time.
    fileprivate var acceptPaused: Bool { acceptIsPaused.load(ordering: .acquiring) }

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
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        // The listening socket is shared with the other worker processes: EPOLLEXCLUSIVE wakes
        // one process's set (not all) for a new connection, and within a set one thread waits
        // at a time. The shutdown pipe is one-shot: the thread that gets it closes the idle
        // connections; the others see `isDraining` at their next wake-up (at most 250 ms).
        watch(listenFD, token: Self.listenToken, events: EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue)
        watch(shutdownPipe[0], token: Self.shutdownToken, events: EPOLLIN.rawValue | EPOLLONESHOT.rawValue)
        watch(parking.readyPipe[0], token: Self.parkingToken, events: EPOLLIN.rawValue)
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

    // MARK: the shared epoll set

    /// epoll_event.data of the three fixed descriptors; a connection's is its request's address
    /// (never below 4096).
    static let shutdownToken: UInt64 = 1
    static let listenToken: UInt64 = 2
    static let parkingToken: UInt64 = 3

    private func watch(_ fd: Int32, token: UInt64, events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = token
        _ = epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event)
    }

    /// Puts an idle kept-alive connection (back) into the set, for the next request on it to wake
    /// one thread. Returns false when the server is draining: the caller closes the connection.
    fileprivate func arm(_ request: UnsafeMutablePointer<FCGX_Request>) -> Bool {
        let key = UInt(bitPattern: request)
        armedLock.lock()
        defer { armedLock.unlock() }
        if armedClosed { return false }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLONESHOT.rawValue
        event.data.u64 = UInt64(key)
        let fd = request.pointee.ipcFd
        // A connection that was served after an event is still in the set (disabled by
        // EPOLLONESHOT); a new one, or one back from the parking lot before its first event, is not.
        if epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) != 0 {
            guard errno == ENOENT, epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else { return false }
        }
        armed[key] = request
        return true
    }

    /// The connection an event names, now owned by the calling thread; nil when the drain closed it.
    fileprivate func takeArmed(_ token: UInt64) -> UnsafeMutablePointer<FCGX_Request>? {
        armedLock.withLock { armed.removeValue(forKey: UInt(truncatingIfNeeded: token)) }
    }

    fileprivate var hasArmed: Bool { armedLock.withLock { !armed.isEmpty } }

    /// Stops accepting and closes every idle connection; nginx retries a request that raced with
    /// the close on another connection (fastcgi_next_upstream).
    fileprivate func closeIdleConnections() {
        let idle: [UnsafeMutablePointer<FCGX_Request>] = armedLock.withLock {
            armedClosed = true
            defer { armed.removeAll() }
            return Array(armed.values)
        }
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, listenFD, nil)
        for request in idle {
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, request.pointee.ipcFd, nil)
            request.pointee.detached = 1
            FCGX_Free(request, 1)
            request.deallocate()
        }
    }

    /// One thread's loop: one event at a time from the shared set.
    final class ConnectionLoop {
        let server: FastCGIServer
        let slot: RequestSlot
        let handler: Handler
        var spare: [UnsafeMutablePointer<FCGX_Request>] = []

        init(server: FastCGIServer, slot: RequestSlot, handler: @escaping Handler) {
            self.server = server
            self.slot = slot
            self.handler = handler
        }

        func run() {
            let parking = server.parking
            var event = epoll_event()
            while true {
                let draining = server.isDraining
                if draining && !server.hasArmed && parking.parkedCount == 0 && parking.readyCount == 0 { break }
                // One event per call, so that the other ready connections go to other threads.
                let paused = server.acceptPaused
                if paused { server.resumeAcceptingIfDue() }
                let n = epoll_wait(server.epollFD, &event, 1, draining ? 100 : (paused ? 50 : 250))
                if n <= 0 { continue }
                switch event.data.u64 {
                case FastCGIServer.shutdownToken:
                    server.closeIdleConnections()
                case FastCGIServer.listenToken:
                    if !server.isDraining { acceptOne() }
                case FastCGIServer.parkingToken:
                    var byte: UInt8 = 0
                    if read(parking.readyPipe[0], &byte, 1) == 1, let parked = parking.takeReady() {
                        parked.exchange.isResuming = true
                        dispatch(parked.request, parked.exchange)
                    }
                default:
                    if let connection = server.takeArmed(event.data.u64) { serve(connection) }
                }
            }
            for connection in spare { connection.deallocate() }
        }

        private func acceptOne() {
            let fd = accept(server.listenFD, nil, nil)
            if fd < 0 {
                let code = errno
                // EAGAIN: another thread or worker took it. Out of descriptors or memory: back off.
                if code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM {
                    server.acceptFailed(errno: code)
                }
                return
            }
            server.acceptSucceeded()
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var timeout = timeval(tv_sec: server.ioTimeoutSeconds, tv_usec: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let request = spare.popLast() ?? UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
            // listen_sock -1: if the connection ends, libfcgi must not accept on its own (it would block).
            FCGX_InitRequest(request, -1, 0)
            request.pointee.ipcFd = fd
            // FCGX_Accept_r first "finishes" the previous request and closes the connection unless
            // it is marked kept; this connection has had no request yet, so keep it open.
            request.pointee.keepConnection = 1
            // Into the set like an idle connection: its first request wakes a thread when it has
            // arrived (at once, from nginx), so a peer that connects and sends nothing holds no thread.
            if !server.arm(request) { recycle(request) }
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
            server.served.add(1, ordering: .relaxed)
            if exchange.closeConnection || server.isDraining {
                request.pointee.keepConnection = 0
            }
            request.pointee.detached = 1
            FCGX_Finish_r(request)
            if request.pointee.ipcFd < 0 || !server.arm(request) {
                recycle(request)
            }
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
package func makeCloseOnExecPipe() -> [Int32] {
    var fds: [Int32] = [-1, -1]
    guard fds.withUnsafeMutableBufferPointer({ pipe($0.baseAddress!) }) == 0 else { return fds }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return fds
}

extension FastCGIServer {
    /// Opens the listening socket: a Unix socket path, or `host:port` / `:port` for TCP. -1 when it
    /// cannot.
    public static func openSocket(_ address: String, backlog: Int32) -> Int32 {
        FCGX_OpenSocket(address, backlog)
    }
}
