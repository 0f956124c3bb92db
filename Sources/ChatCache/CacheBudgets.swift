/// The two amounts of memory the configuration gives a worker process's caches.
public enum CachePool: String, Sendable, CaseIterable {
    /// `list_cache_mib`: rendered lists and what is derived from them, checked against versions in
    /// PostgreSQL.
    case lists = "list_cache_mib"
    /// `profile_cache_mib`: copies checked against the host's change counters, for answers
    /// without a round trip.
    case copies = "profile_cache_mib"
}

/// One kind of data a worker keeps (a `VersionedCache`): its name, for the status page and the
/// registry, and the pool it draws on. Each feature declares its own kinds; which share of the
/// pool each gets is decided in one place, `CacheBudgets`.
public struct CacheKind: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let pool: CachePool

    public init(_ name: String, pool: CachePool) {
        self.name = name
        self.pool = pool
    }

    public var description: String { name }
}

/// How the configured memory is split among every kind of cached data: the only place that
/// splits it. Each kind gets a share of its pool in 64ths, and the shares of a pool add up to at
/// most 64, so the pools the configuration sets bound what the caches hold together.
public struct CacheBudgets: Sendable {
    public struct Share: Sendable {
        public let kind: CacheKind
        public let sixtyFourths: Int
        public init(_ kind: CacheKind, sixtyFourths: Int) {
            self.kind = kind
            self.sixtyFourths = sixtyFourths
        }
    }

    public let poolBytes: [CachePool: Int]
    public let shares: [Share]
    private let bytesByKind: [CacheKind: Int]

    /// - Parameters:
    ///   - pools: bytes per pool (0 turns the pool's kinds off).
    ///   - shares: every kind's share; a kind may appear once, and a pool's shares add up to 64
    ///     at most.
    public init(pools: [CachePool: Int], shares: [Share]) {
        var used: [CachePool: Int] = [:]
        var bytes: [CacheKind: Int] = [:]
        for share in shares {
            precondition(bytes[share.kind] == nil, "cache kind \(share.kind) listed twice")
            precondition(share.sixtyFourths > 0, "cache kind \(share.kind) without a share")
            used[share.kind.pool, default: 0] += share.sixtyFourths
            bytes[share.kind] = max(0, pools[share.kind.pool] ?? 0) / 64 * share.sixtyFourths
        }
        for (pool, total) in used { precondition(total <= 64, "the shares of \(pool.rawValue) add up to \(total)/64") }
        poolBytes = pools
        self.shares = shares
        bytesByKind = bytes
    }

    /// Nothing kept anywhere (tests, commands).
    public static let none = CacheBudgets(pools: [:], shares: [])

    /// The bytes `kind` may hold; 0 for a kind without a share (nothing is kept).
    public func bytes(for kind: CacheKind) -> Int { bytesByKind[kind] ?? 0 }

    /// The bytes all kinds of `pool` may hold together: never more than the pool.
    public func total(of pool: CachePool) -> Int {
        shares.filter { $0.kind.pool == pool }.reduce(0) { $0 + bytes(for: $1.kind) }
    }
}
