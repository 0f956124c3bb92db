import Foundation
import Synchronization
import ChatConfig
import ChatPostgres

/// What every worker process of a host is doing, for the status page (after php-fpm's
/// scoreboard): a shared memory segment the supervisor creates and hands to each worker, one slot
/// per worker, which the worker fills in twice a second. Any worker can then answer `/_status`
/// for all of them.
///
/// A worker claims a free slot at start (its pid in the slot's first field; a slot whose process
/// is gone is free) and clears it when it stops.
public final class Scoreboard: @unchecked Sendable {
    public static let slotCount = 256

    /// The fields of a slot, in order.
    public enum Field: Int, CaseIterable, Sendable {
        case pid, startedAtMillis, updatedAtMillis, threads, busyThreads, requestsServed, parkedRequests,
             parkedDisplaced, parkedTurnedAway, uploadsInFlight, acceptedConnections, failedAccepts,
             databaseConnections, cacheBytes, cacheHits, cacheMisses

        public var name: String {
            switch self {
            case .pid: return "pid"
            case .startedAtMillis: return "started_at_ms"
            case .updatedAtMillis: return "updated_at_ms"
            case .threads: return "threads"
            case .busyThreads: return "busy_threads"
            case .requestsServed: return "requests_served"
            case .parkedRequests: return "parked_long_polls"
            case .parkedDisplaced: return "long_polls_displaced"
            case .parkedTurnedAway: return "long_polls_turned_away"
            case .uploadsInFlight: return "uploads_in_flight"
            case .acceptedConnections: return "connections_accepted"
            case .failedAccepts: return "accepts_failed"
            case .databaseConnections: return "database_connections"
            case .cacheBytes: return "cache_bytes"
            case .cacheHits: return "cache_hits"
            case .cacheMisses: return "cache_misses"
            }
        }
    }

    static let fieldCount = 16
    static var bytes: Int { slotCount * fieldCount * MemoryLayout<Int64>.stride }

    /// The worker's instance (the supervisor's segment); a private one elsewhere.
    nonisolated(unsafe) public static var shared = Scoreboard()

    private let fields: UnsafeMutablePointer<Atomic<Int64>>
    private var mySlot: Int?

    /// A private board: for one process (tests, commands).
    public convenience init() {
        let raw = mmap(nil, Scoreboard.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(raw != MAP_FAILED && raw != nil, "cannot map the scoreboard")
        self.init(raw!)
    }

    /// The segment behind `fd` (made by `makeSegment()`), or nil when it cannot be mapped.
    public convenience init?(fd: Int32) {
        var status = stat()
        guard fstat(fd, &status) == 0, Int(status.st_size) == Scoreboard.bytes else { return nil }
        guard let raw = mmap(nil, Scoreboard.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), raw != MAP_FAILED else {
            return nil
        }
        self.init(raw)
    }

    private init(_ raw: UnsafeMutableRawPointer) {
        fields = raw.bindMemory(to: Atomic<Int64>.self, capacity: Scoreboard.slotCount * Scoreboard.fieldCount)
    }

    /// A new zeroed shared segment without a name (only this process tree can reach it). -1 on failure.
    public static func makeSegment() -> Int32 {
        let name = "/chat-fcgi-scoreboard-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return -1 }
        shm_unlink(name)
        guard ftruncate(fd, off_t(bytes)) == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    private func field(_ slot: Int, _ field: Field) -> UnsafeMutablePointer<Atomic<Int64>> {
        fields + slot * Scoreboard.fieldCount + field.rawValue
    }

    /// Takes a free slot for this process; false when all are taken (the worker then goes unlisted).
    @discardableResult
    public func claim(pid: pid_t = getpid()) -> Bool {
        for slot in 0..<Scoreboard.slotCount {
            let owner = field(slot, .pid).pointee.load(ordering: .acquiring)
            // A slot of a process that is gone (a crash) is free again.
            if owner != 0 && (kill(pid_t(owner), 0) == 0 || errno != ESRCH) { continue }
            if field(slot, .pid).pointee.compareExchange(expected: owner, desired: Int64(pid), ordering: .acquiringAndReleasing).exchanged {
                for other in Field.allCases where other != .pid { field(slot, other).pointee.store(0, ordering: .relaxed) }
                field(slot, .startedAtMillis).pointee.store(epochMillis(), ordering: .relaxed)
                mySlot = slot
                return true
            }
        }
        return false
    }

    /// Gives the slot back (a worker that stops).
    public func release() {
        guard let slot = mySlot else { return }
        field(slot, .pid).pointee.store(0, ordering: .releasing)
        mySlot = nil
    }

    /// Fills in this process's slot.
    public func publish(_ values: [Field: Int64]) {
        guard let slot = mySlot else { return }
        for (key, value) in values where key != .pid { field(slot, key).pointee.store(value, ordering: .relaxed) }
        field(slot, .updatedAtMillis).pointee.store(epochMillis(), ordering: .relaxed)
    }

    /// The slots of live processes, each as its fields by name.
    public func workers() -> [[Field: Int64]] {
        var result: [[Field: Int64]] = []
        for slot in 0..<Scoreboard.slotCount {
            let owner = field(slot, .pid).pointee.load(ordering: .acquiring)
            guard owner != 0, kill(pid_t(owner), 0) == 0 || errno != ESRCH else { continue }
            var values: [Field: Int64] = [:]
            for key in Field.allCases { values[key] = field(slot, key).pointee.load(ordering: .relaxed) }
            result.append(values)
        }
        return result
    }
}
