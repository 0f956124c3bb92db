import CFastCGI
import Foundation
import ChatConfig

/// Requests that wait without a thread: long-polls (`/chat/sync`) park here until something
/// wakes their key (a user id), their deadline passes, or the server drains.
///
/// A parked request keeps its nginx connection and its libfcgi state, and nothing else: no
/// thread and no database connection. One monitor thread per process watches the parked
/// connections with epoll (nginx closes the connection when the client goes away) and the
/// deadlines; requests that are due move to a ready queue, and the worker threads answer them
/// between new requests.
public final class ParkingLot: @unchecked Sendable {
    final class Parked {
        let request: UnsafeMutablePointer<FCGX_Request>
        let exchange: FastCGIExchange
        let key: Int64
        let deadline: UInt64
        let fd: Int32
        /// Order of parking, to find a key's oldest request.
        let sequence: UInt64
        init(request: UnsafeMutablePointer<FCGX_Request>, exchange: FastCGIExchange, key: Int64, deadline: UInt64,
             sequence: UInt64) {
            self.request = request
            self.exchange = exchange
            self.key = key
            self.deadline = deadline
            self.fd = request.pointee.ipcFd
            self.sequence = sequence
        }
    }

    /// Most requests parked under one key (a user): a new one answers the oldest at once, so a
    /// client that opens long-polls in a loop holds a bounded number of connections.
    public var maxPerKey = 8
    /// Most requests parked in this process: beyond it a request is answered at once.
    public var maxTotal = 4096
    private var parkSequence: UInt64 = 0
    private var displaced: UInt64 = 0
    private var turnedAway: UInt64 = 0

    /// Requests answered early because their key had `maxPerKey` parked (for the status page).
    public var displacedCount: UInt64 { lock.withLock { displaced } }
    /// Requests answered at once because `maxTotal` were parked (for the status page).
    public var turnedAwayCount: UInt64 { lock.withLock { turnedAway } }

    private let lock = NSLock()
    private var byKey: [Int64: [ObjectIdentifier: Parked]] = [:]
    private var byFD: [Int32: Parked] = [:]
    private var ready: [Parked] = []
    /// Per-key wake counters, to close the gap between "nothing new" and "parked" (see `park`).
    private var wakeCounter: UInt64 = 0
    private var lastWake: [Int64: UInt64] = [:]
    private var pruneMark: UInt64 = 0
    private var pruneTime = monotonicNanos()
    private var draining = false
    private let epollFD: Int32
    /// Readable while ready requests wait for a worker thread; one byte per ready request.
    let readyPipe: [Int32]

    public init() {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        readyPipe = makeCloseOnExecPipe()
        _ = fcntl(readyPipe[0], F_SETFL, fcntl(readyPipe[0], F_GETFL) | O_NONBLOCK)
    }

    public var parkedCount: Int { lock.withLock { byFD.count } }
    var readyCount: Int { lock.withLock { ready.count } }

    /// The key's wake generation. Read it *before* checking for news; pass it to `park`.
    public func generation(for key: Int64) -> UInt64 {
        lock.withLock { lastWake[key] ?? 0 }
    }

    /// Parks a request. If the key was woken since `seenGeneration` (news arrived between the
    /// handler's check and now), the request is made ready at once instead, so no wake is lost.
    func park(request: UnsafeMutablePointer<FCGX_Request>, exchange: FastCGIExchange, key: Int64,
              deadline: UInt64, seenGeneration: UInt64) {
        let readied: Int = lock.withLock {
            parkSequence += 1
            let parked = Parked(request: request, exchange: exchange, key: key, deadline: deadline, sequence: parkSequence)
            if draining || (lastWake[key] ?? 0) != seenGeneration || byFD.count >= maxTotal {
                if byFD.count >= maxTotal && !draining { turnedAway += 1 }
                parked.exchange.resumeIsFinal = draining || byFD.count >= maxTotal
                ready.append(parked)
                return 1
            }
            var readied = 0
            if let mine = byKey[key], mine.count >= maxPerKey,
               let oldest = mine.values.min(by: { $0.sequence < $1.sequence }) {
                unwatch(oldest)
                oldest.exchange.resumeIsFinal = true
                ready.append(oldest)
                displaced += 1
                readied = 1
            }
            byKey[key, default: [:]][ObjectIdentifier(parked)] = parked
            byFD[parked.fd] = parked
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
            event.data.fd = parked.fd
            epoll_ctl(epollFD, EPOLL_CTL_ADD, parked.fd, &event)
            return readied
        }
        signalReady(readied)
    }

    /// Wakes every request parked under these keys.
    public func wake(_ keys: [Int64]) {
        var count = 0
        lock.lock()
        wakeCounter += 1
        for key in keys {
            lastWake[key] = wakeCounter
            guard let items = byKey.removeValue(forKey: key) else { continue }
            for parked in items.values {
                unwatch(parked)
                parked.exchange.resumeIsFinal = draining
                ready.append(parked)
                count += 1
            }
        }
        lock.unlock()
        signalReady(count)
    }

    /// Wakes everything (after a reconnect of the notification listener, when wakes may be lost).
    public func wakeAll() {
        lock.lock()
        let keys = Array(byKey.keys)
        lock.unlock()
        wake(keys)
    }

    /// Drain: every parked request is answered now, and later ones are answered at once.
    func drain() {
        lock.lock()
        draining = true
        lock.unlock()
        wakeAll()
    }

    /// Takes one ready request, if the byte a thread just read still has one behind it.
    func takeReady() -> Parked? {
        lock.withLock { ready.isEmpty ? nil : ready.removeFirst() }
    }

    private func unwatch(_ parked: Parked) {
        byFD.removeValue(forKey: parked.fd)
        byKey[parked.key]?.removeValue(forKey: ObjectIdentifier(parked))
        if byKey[parked.key]?.isEmpty == true { byKey.removeValue(forKey: parked.key) }
        epoll_ctl(epollFD, EPOLL_CTL_DEL, parked.fd, nil)
    }

    private func signalReady(_ count: Int) {
        guard count > 0 else { return }
        let bytes = [UInt8](repeating: 1, count: count)
        var offset = 0
        while offset < count {
            let n = bytes.withUnsafeBytes { Foundation.write(readyPipe[1], $0.baseAddress! + offset, count - offset) }
            if n <= 0 { if errno == EINTR { continue } else { return } }
            offset += n
        }
    }

    /// The monitor loop: disconnects and deadlines. Runs on its own thread for the process's life.
    func monitor() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var lastSweep = monotonicNanos()
        while true {
            let n = epoll_wait(epollFD, &events, Int32(events.count), 250)
            if n > 0 {
                for index in 0..<Int(n) {
                    let fd = events[index].data.fd
                    // nginx wrote nothing more on a request it is waiting for: readable means gone.
                    let gone: Parked? = lock.withLock {
                        guard let parked = byFD[fd] else { return nil }
                        unwatch(parked)
                        return parked
                    }
                    if let gone {
                        gone.request.pointee.detached = 1
                        FCGX_Free(gone.request, 1)
                        gone.request.deallocate()
                    }
                }
            }
            let now = monotonicNanos()
            if now - lastSweep >= 200_000_000 {
                lastSweep = now
                sweep(now: now)
            }
        }
    }

    private func sweep(now: UInt64) {
        var due = 0
        lock.lock()
        for parked in Array(byFD.values) where parked.deadline <= now {
            unwatch(parked)
            parked.exchange.resumeIsFinal = true
            ready.append(parked)
            due += 1
        }
        // Wake counters only matter for the few milliseconds between a check and a park.
        if now - pruneTime > 60_000_000_000 {
            lastWake = lastWake.filter { $0.value > pruneMark }
            pruneMark = wakeCounter
            pruneTime = now
        }
        lock.unlock()
        signalReady(due)
    }
}
