import ChatHTTP
import ChatPostgres
import ChatRouting
import ChatCache
import ChatSecurity

/// Session tokens: 256-bit random values, stored only as their SHA-256.
///
/// A session lasts 30 days from its last use. Recording every use would turn each read into a
/// write, so `last_used_at` is refreshed at most once a minute per session: a session can end up
/// to a minute earlier than 30 days after its very last request, never later.
public enum Sessions {
    public static let lifetimeDays = 30

    package static func hash(_ token: String) -> [UInt8] { Crypto.sha256(Array(token.utf8)) }

    static func isWellFormed(_ token: String) -> Bool {
        token.utf8.count == 64 && token.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// Starts a session for the device kind, ending that kind's previous session (whose cached
    /// copies end with it once this commits: the old session's change id comes back from the
    /// statement).
    public static func create(userId: Int64, device: Int, db: PGConnection) throws -> String {
        let token = Crypto.randomToken()
        if let old = try AccountsStore(db: db).replaceSession(userId: userId, device: device, tokenHash: hash(token)) {
            ChangeStripes.bumpAfterCommit([ChangeStripes.Key(changeKind, old)], db: db)
        }
        return token
    }

    /// Sessions in the workers' change counters (`ChangeStripes`): kind `s`, and as id the first 8
    /// bytes of the token hash read as a big-endian signed integer, as sql/0006's trigger and
    /// `AccountsStore.changeId(ofTokenHash:)` compute it.
    static let changeKind: Character = "s"

    static func changeId(tokenHash: [UInt8]) -> Int64 {
        var bits: UInt64 = 0
        for byte in tokenHash.prefix(8) { bits = bits << 8 | UInt64(byte) }
        return Int64(bitPattern: bits)
    }

    /// The user of a live session, or 401.
    public static func authenticate(token: String, db: PGConnection) throws -> Int64 {
        guard isWellFormed(token) else { throw HTTPError.unauthorized }
        guard let session = try AccountsStore(db: db).liveSession(tokenHash: hash(token)) else { throw HTTPError.unauthorized }
        if session.stale { try refresh(token: token, db: db) }
        return session.userId
    }

    /// Records a use. Concurrent requests of one session may all find it stale at the same
    /// moment: the condition makes every update after the first a no-op.
    ///
    /// In a worker the use goes to `touches` and is written within a second together with the
    /// other sessions' (the request does not wait for it); elsewhere it is written at once.
    static func refresh(token: String, db: PGConnection) throws {
        if let touches {
            touches.post(Crypto.hex(hash(token)))
            return
        }
        try AccountsStore(db: db).touchSession(tokenHash: hash(token))
    }

    /// Writes the uses of this worker's sessions (set by the worker at start).
    nonisolated(unsafe) public static var touches: BackgroundWrites<String>?

    /// The session uses gathered in `touches` (hex token hashes), for `BackgroundWrites`: one
    /// statement for all. A session ended meanwhile matches nothing.
    public static func makeTouches(conninfo: String) -> BackgroundWrites<String> {
        BackgroundWrites(name: "session-touch", conninfo: conninfo, linger: 1) { db, hashes in
            try AccountsStore(db: db).touchSessions(hexTokenHashes: Array(hashes))
        }
    }

    public static func endAll(userId: Int64, db: PGConnection) throws {
        let ended = try AccountsStore(db: db).endSessions(userId: userId)
        ChangeStripes.bumpAfterCommit(ended.map { ChangeStripes.Key(changeKind, $0) }, db: db)
    }
}

/// The session check the request pipeline uses (`SessionResolver`): this worker's current copy of
/// a session when it holds one (docs/caching.md), else PostgreSQL.
public final class SessionChecks: SessionResolver {
    let caches: AccountCaches

    init(caches: AccountCaches) { self.caches = caches }

    public func authenticate(_ token: String, context: RequestContext) throws -> Int64 {
        try Sessions.authenticate(token: token, db: context.db)
    }

    public func copy(of token: String) -> (userId: Int64, refreshNeeded: Bool)? {
        guard caches.isEnabled, Sessions.isWellFormed(token) else { return nil }
        return caches.session(tokenHash: Sessions.hash(token)).map { ($0.userId, $0.touchNeeded) }
    }

    public func who(_ token: String) -> SQL {
        // A malformed token matches nothing; hashing it anyway keeps one code path.
        AccountsStore.liveSession(tokenHash: Sessions.hash(token))
    }

    /// Keeps what the statement found at the session's version read now, before the statement.
    public func keeper(for token: String) -> ((_ userId: Int64, _ stale: Bool) -> Void)? {
        guard caches.isEnabled, Sessions.isWellFormed(token) else { return nil }
        let tokenHash = Sessions.hash(token)
        guard let version = caches.sessionVersion(tokenHash: tokenHash) else { return nil }
        return { [caches] userId, stale in
            caches.storeSession(tokenHash: tokenHash, userId: userId, touched: stale, version: version)
        }
    }

    public func refresh(_ token: String, db: PGConnection) throws { try Sessions.refresh(token: token, db: db) }
}
