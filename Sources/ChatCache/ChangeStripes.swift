import Foundation
import Synchronization
import ChatPostgres

/// Change counters shared by every worker process of one host, for caches that answer without
/// asking PostgreSQL.
///
/// A key (a letter naming what kind of thing, and an id) maps to one of 65,535 counters in a
/// shared memory segment the supervisor creates and hands to each worker; counter 0 is the epoch,
/// which moves every key at once. A cache reads `version(of:)` *before* it reads the data it
/// keeps, stores the data at that version, and later trusts its copy only while the version is
/// still the same. Whoever changes the data bumps the key *after* the change is committed:
/// - the worker that made the change, before it answers, so that the next request to any worker
///   of the host sees it (read-your-writes across workers);
/// - every worker's listener, on the NOTIFY that the triggers of sql/0006_cache_invalidation.sql
///   send for any committed change, whoever made it (psql, the admin commands, another host).
/// A reader that raced a writer read the version before the bump, so its copy dies with the bump.
/// Keys that share a counter only cost each other misses.
///
/// Versions are nil while this process's listener is not connected: notifications sent meanwhile
/// are lost, so no cached copy may be trusted, and reconnecting bumps the epoch.
public final class ChangeStripes: @unchecked Sendable {
    public static let counterCount = 1 << 16

    /// The worker's instance (the supervisor's shared segment); a private segment elsewhere.
    nonisolated(unsafe) public static var shared = ChangeStripes()

    private let counters: UnsafeMutablePointer<Atomic<Int64>>
    private let listening = Atomic<Bool>(false)

    /// A private segment: for one process (tests, commands).
    public convenience init() {
        let bytes = ChangeStripes.counterCount * MemoryLayout<Int64>.stride
        let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(raw != MAP_FAILED && raw != nil, "cannot map change counters")
        self.init(raw!)
    }

    /// The segment behind `fd` (made by `makeSegment()`), or nil when it cannot be mapped.
    public convenience init?(fd: Int32) {
        let bytes = ChangeStripes.counterCount * MemoryLayout<Int64>.stride
        var status = stat()
        guard fstat(fd, &status) == 0, Int(status.st_size) == bytes else { return nil }
        guard let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), raw != MAP_FAILED else { return nil }
        self.init(raw)
    }

    private init(_ raw: UnsafeMutableRawPointer) {
        // Zero-filled memory is a valid Atomic<Int64> of 0.
        counters = raw.bindMemory(to: Atomic<Int64>.self, capacity: ChangeStripes.counterCount)
    }

    /// A new zeroed shared segment for the workers (the supervisor's): a descriptor without a
    /// name, so that nothing outside this process tree can open it. -1 on failure.
    public static func makeSegment() -> Int32 {
        let name = "/chat-fcgi-changes-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return -1 }
        shm_unlink(name)
        guard ftruncate(fd, off_t(counterCount * MemoryLayout<Int64>.stride)) == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// What a counter counts changes of: a kind (one ASCII letter, as in the notifications) and id.
    public struct Key: Hashable, Sendable {
        public var kind: UInt8
        public var id: Int64
        public init(_ kind: Character, _ id: Int64) {
            self.kind = kind.asciiValue ?? 0
            self.id = id
        }
        init(kind: UInt8, id: Int64) {
            self.kind = kind
            self.id = id
        }

        /// Counters 1 ... count-1, spread by a multiplicative hash.
        var index: Int {
            let mixed = (UInt64(bitPattern: id) ^ (UInt64(kind) << 56)) &* 0x9E37_79B9_7F4A_7C15
            return 1 + Int((mixed >> 20) % UInt64(ChangeStripes.counterCount - 1))
        }
    }

    /// The version to store a copy of `key`'s data at, or to compare a stored copy with; nil while
    /// copies cannot be trusted (the listener is not connected).
    public func version(of key: Key) -> Int64? {
        guard listening.load(ordering: .acquiring) else { return nil }
        let epoch = counters[0].load(ordering: .acquiring)
        let counter = counters[key.index].load(ordering: .acquiring)
        return (epoch << 32) &+ (counter & 0xFFFF_FFFF)
    }

    /// Ends every copy of `key`'s data, on every worker of the host. Only for the listener (the
    /// change is committed) and `bumpAfterCommit`: a bump before the commit would let a reader
    /// store the old data at the new version.
    func bump(_ key: Key) {
        counters[key.index].wrappingAdd(1, ordering: .acquiringAndReleasing)
    }

    /// Ends every worker's copies of these keys' data once `db`'s current change commits (at
    /// once outside a transaction): the bump of a change made through the API.
    public static func bumpAfterCommit(_ keys: [Key], db: PGConnection) {
        db.afterCommit {
            for key in keys { shared.bump(key) }
        }
    }

    /// Ends every copy of everything.
    func bumpAll() {
        counters[0].wrappingAdd(1, ordering: .acquiringAndReleasing)
    }

    /// Applies one notification's payload: space-separated keys (a lower-case letter and a
    /// decimal id), or `*` for everything. Unknown words end everything, to be safe.
    public func apply(payload: String) {
        for word in payload.split(separator: " ") {
            guard let key = ChangeStripes.parse(word) else {
                bumpAll()
                return
            }
            bump(key)
        }
    }

    static func parse(_ word: Substring) -> Key? {
        guard let first = word.utf8.first, first >= UInt8(ascii: "a"), first <= UInt8(ascii: "z"),
              let id = Int64(word.dropFirst()) else { return nil }
        return Key(kind: first, id: id)
    }

    /// Called by the listener: copies may be trusted from now on (after the epoch moved), or not.
    public func setListening(_ connected: Bool) {
        if connected { bumpAll() }
        listening.store(connected, ordering: .releasing)
    }

    /// The channel the triggers notify (sql/0006_cache_invalidation.sql), for the worker's
    /// `NotificationListener`.
    public func listenerChannel(_ name: String = "chat_cache") -> NotificationListener.Channel {
        NotificationListener.Channel(name, onNotify: { [self] payload in apply(payload: payload) },
                                     connected: { [self] connected in setListening(connected) })
    }
}
