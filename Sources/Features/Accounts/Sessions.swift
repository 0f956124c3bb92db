import ChatConfig
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
    /// statement). `old` is read (and its row locked) before the insert replaces the row: read
    /// only from RETURNING, it would be read after, and find nothing.
    public static func create(userId: Int64, device: Int, db: PGConnection) throws -> String {
        let token = Crypto.randomToken()
        let user = SQLParameter(userId)
        let deviceKind = SQLParameter(device)
        let rows = try db.query("""
            WITH old AS (SELECT token_hash FROM sessions WHERE user_id = \(user) AND device = \(deviceKind) FOR UPDATE)
            INSERT INTO sessions (token_hash, user_id, device)
            SELECT \(PGBytes(hash(token)))::bytea, \(user)::bigint, \(deviceKind)::smallint FROM (SELECT count(*) FROM old) AS old_read_first
            ON CONFLICT (user_id, device) DO UPDATE
            SET token_hash = EXCLUDED.token_hash, created_at = now(), last_used_at = now()
            RETURNING \(unsafeRaw: changeIdSQL("(SELECT token_hash FROM old)"))
            """)
        if let old = rows.first?.int64(0) { ChangeStripes.bumpAfterCommit([ChangeStripes.Key(changeKind, old)], db: db) }
        return token
    }

    /// Sessions in the workers' change counters (`ChangeStripes`): kind `s`, and as id the first 8
    /// bytes of the token hash read as a big-endian signed integer, as sql/0006's trigger and
    /// `changeIdSQL` compute it.
    static let changeKind: Character = "s"

    static func changeId(tokenHash: [UInt8]) -> Int64 {
        var bits: UInt64 = 0
        for byte in tokenHash.prefix(8) { bits = bits << 8 | UInt64(byte) }
        return Int64(bitPattern: bits)
    }

    /// `changeId` in SQL, of a bytea expression (NULL for NULL).
    static func changeIdSQL(_ tokenHash: String) -> String {
        "('x' || encode(substr(\(tokenHash), 1, 8), 'hex'))::bit(64)::bigint"
    }

    /// The one definition of a live session, for every statement that checks one: its user
    /// (`who_id`) and whether its last use should be recorded (`who_stale`); no row when there is
    /// no live session.
    static func live(tokenHash: [UInt8]) -> SQL {
        """
        SELECT s.user_id AS who_id, s.last_used_at < now() - interval '1 minute' AS who_stale FROM sessions s
        WHERE s.token_hash = \(PGBytes(tokenHash)) AND s.last_used_at > now() - interval '30 days'
        """
    }

    /// The user of a live session, or 401.
    public static func authenticate(token: String, db: PGConnection) throws -> Int64 {
        guard isWellFormed(token) else { throw HTTPError.unauthorized }
        guard let row = try db.query(live(tokenHash: hash(token))).first else { throw HTTPError.unauthorized }
        if try row.decode("who_stale") { try refresh(token: token, db: db) }
        return try row.decode("who_id")
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
        try db.query("""
            UPDATE sessions SET last_used_at = now()
            WHERE token_hash = \(PGBytes(hash(token))) AND last_used_at < now() - interval '1 minute'
            """)
    }

    /// Writes the uses of this worker's sessions (set by the worker at start).
    nonisolated(unsafe) public static var touches: BackgroundWrites<String>?

    /// The session uses gathered in `touches` (hex token hashes), for `BackgroundWrites`: one
    /// statement for all. A session ended meanwhile matches nothing.
    public static func makeTouches(conninfo: String) -> BackgroundWrites<String> {
        BackgroundWrites(name: "session-touch", conninfo: conninfo, linger: 1) { db, hashes in
            try db.query("""
                UPDATE sessions SET last_used_at = now()
                WHERE token_hash = ANY (ARRAY(SELECT decode(h, 'hex') FROM unnest(\(PGTextArray(Array(hashes)))::text[]) AS t(h)))
                  AND last_used_at < now() - interval '1 minute'
                """)
        }
    }

    public static func endAll(userId: Int64, db: PGConnection) throws {
        let ended = try db.query("DELETE FROM sessions WHERE user_id = \(userId) RETURNING \(unsafeRaw: changeIdSQL("token_hash"))")
        ChangeStripes.bumpAfterCommit(ended.rows.map { ChangeStripes.Key(changeKind, $0.int64Value(0)) }, db: db)
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
        Sessions.live(tokenHash: Sessions.hash(token))
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
