import ChatConfig
import ChatHTTP
import ChatPostgres

/// What a handler gets: the request, the thread's database connection, and the acting user.
///
/// On an authenticated route the session is resolved by one mechanism, in one of three places:
/// - before the handler runs (the default): `userId` is set when the handler starts;
/// - from this worker's current copy of the session (`SessionResolver.copy`), before the handler
///   runs, on a route registered with `authInQuery` when the copy is there;
/// - otherwise, on an `authInQuery` route, by the handler's first statement: either a `pipeline`
///   or `query` through the context (the check rides in the same round trip), or a statement of
///   the handler's own that starts with `WITH who AS (\(c.who))` and hands its row to
///   `adoptSession(from:)`.
/// The responder refuses to answer (500) an authenticated route whose handler finished without
/// resolving the session.
public final class RequestContext {
    public let request: Request
    private let connection: PGConnection
    private var checked = false
    /// The session's user: 0 until the session is resolved.
    public package(set) var userId: Int64 = 0
    public var params: Params { request.params }

    /// The process's wake generations, for handlers that may defer (long-polls).
    public let wakes: WakeGenerations?
    /// The session token still to be checked by the handler's first statement.
    package var pendingToken: String?
    package var sessions: SessionResolver?
    /// Keeps the session that the handler's statement finds (a copy for the next request).
    private var keepSession: ((Int64, Bool) -> Void)?
    /// On a route whose token may come in its body, when none came in the header or query.
    package var bodyTokenCheck: ((String) throws -> Int64)?

    /// True while a route that takes its token from the body has not been given one yet.
    public var awaitsBodyToken: Bool { bodyTokenCheck != nil }

    /// True while the session is still to be checked by the handler's first statement.
    public var isSessionPending: Bool { pendingToken != nil && userId == 0 && sessions != nil }

    /// Authenticates with a token that came in the body (a multipart field).
    public func authenticate(bodyToken token: String) throws {
        guard let check = bodyTokenCheck else { return }
        guard !token.isEmpty else { throw HTTPError.missingToken }
        userId = try check(token)
        bodyTokenCheck = nil
        try RequestContext.checkClaimedUser(request, userId)
    }

    /// The acting user as the body of a CTE with the columns `who_id` and `who_stale`: the
    /// session check while it is pending, else the known user. No row: no live session.
    public var who: SQL {
        if isSessionPending, let token = pendingToken, let sessions { return sessions.who(token) }
        return "SELECT \(userId)::bigint AS who_id, false AS who_stale"
    }

    /// Completes a pending session from a row with `who`'s columns (`who_id`, `who_stale`); nil
    /// (no row) or a NULL user: no live session, 401. Does nothing once the session is known.
    public func adoptSession(from row: PGRow?) throws {
        guard isSessionPending, let token = pendingToken, let sessions else { return }
        guard let row, let user: Int64 = try row.decode("who_id"), user > 0 else { throw HTTPError.unauthorized }
        let stale: Bool = try row.decode("who_stale")
        userId = user
        pendingToken = nil
        keepSession?(user, stale)
        keepSession = nil
        if stale { try sessions.refresh(token, db: try db) }
        try RequestContext.checkClaimedUser(request, userId)
    }

    /// Runs independent statements in one round trip. While the session is pending, its check
    /// rides first in the same round trip (a missing or expired session is 401); the statements
    /// then run as the session's user only if they name it through `who`.
    public func pipeline(_ statements: [SQL]) throws -> [PGResult] {
        let db = try self.db
        guard isSessionPending else { return try db.pipeline(statements) }
        let results = try db.pipeline(["\(who)"] + statements)
        try adoptSession(from: results[0].first)
        return Array(results.dropFirst())
    }

    /// One statement, with the session check in the same round trip while it is pending.
    @discardableResult
    public func query(_ statement: SQL) throws -> PGResult {
        try pipeline([statement])[0]
    }

    public init(request: Request, db: PGConnection, userId: Int64 = 0, wakes: WakeGenerations? = nil) {
        self.request = request
        self.connection = db
        self.userId = userId
        self.wakes = wakes
    }

    /// Attaches `token`'s session: resolved now (`inQuery` false), from this worker's copy, or
    /// left for the handler's first statement.
    package func attachSession(_ token: String, resolver: SessionResolver, inQuery: Bool) throws {
        if inQuery {
            if let copy = resolver.copy(of: token) {
                userId = copy.userId
                if copy.refreshNeeded { try resolver.refresh(token, db: try db) }
            } else {
                pendingToken = token
                sessions = resolver
                keepSession = resolver.keeper(for: token)
                return
            }
        } else {
            userId = try resolver.authenticate(token, context: self)
        }
        try RequestContext.checkClaimedUser(request, userId)
    }

    /// The original API trusted a `userId` parameter; here it may only confirm the session.
    package static func checkClaimedUser(_ request: Request, _ userId: Int64) throws {
        if let claimed = request.params["userId"], !claimed.isEmpty, Int64(claimed) != userId {
            throw HTTPError.forbidden("userId does not match the session")
        }
    }

    /// This thread's PostgreSQL connection. The first use in a request checks that it is alive
    /// (and reconnects if PostgreSQL was restarted), so routes that never touch the database
    /// never pay for the check.
    public var db: PGConnection {
        get throws {
            if !checked {
                try RequestContext.ensureAlive(connection, until: databaseDeadline)
                checked = true
            }
            return connection
        }
    }

    /// Until when (monotonic nanoseconds) this request waits for an unreachable database.
    package var databaseDeadline: UInt64 = 0

    /// Checks the connection; when the database is unreachable, waits for it until `deadline`,
    /// then gives up with 503 and Retry-After (never 500: nothing is wrong with the request).
    static func ensureAlive(_ connection: PGConnection, until deadline: UInt64) throws {
        do {
            try connection.ensureAlive()
        } catch let error as PGError where error.connectionLost {
            do {
                try connection.reconnect(until: deadline)
            } catch let error as PGError where error.connectionLost {
                Log.warn("db.unavailable", ["error": error.message])
                throw HTTPError.unavailable("database unavailable; try again shortly")
            }
        }
    }
}

/// The session check, handed to the responder by the feature that owns sessions.
public protocol SessionResolver: AnyObject {
    /// The user of `token`'s live session, or 401: the check made before a handler runs (which
    /// opens `context.db` only when it needs the database).
    func authenticate(_ token: String, context: RequestContext) throws -> Int64
    /// This worker's current copy of the session (nil: none, or caching is off).
    func copy(of token: String) -> (userId: Int64, refreshNeeded: Bool)?
    /// `token`'s live session as a query with the columns `who_id` and `who_stale` (whether its
    /// use is to be recorded); no row when there is none.
    func who(_ token: String) -> SQL
    /// What keeps the session that a handler's statement finds (nil: nothing may be kept).
    func keeper(for token: String) -> ((_ userId: Int64, _ stale: Bool) -> Void)?
    /// Records a use of the session.
    func refresh(_ token: String, db: PGConnection) throws
}
