import ChatConfig
import ChatHTTP
import ChatPostgres

/// What a handler gets: the request, the thread's database connection, and the acting user.
public final class RequestContext {
    public let request: Request
    private let connection: PGConnection
    private var checked = false
    /// The session's user; set before any handler of a route that requires authentication runs.
    public internal(set) var userId: Int64 = 0
    public var params: Params { request.params }

    /// The process's wake generations, for handlers that may defer (long-polls).
    public let wakes: WakeGenerations?
    /// For routes that authenticate inside their own statements: the session token, until the
    /// first `pipelineAsUser` resolves it.
    var pendingToken: String?
    var sessions: SessionResolver?
    /// On a route whose token may come in its body, when none came in the header or query.
    var bodyTokenCheck: ((String) throws -> Int64)?

    /// True while a route that takes its token from the body has not been given one yet.
    public var awaitsBodyToken: Bool { bodyTokenCheck != nil }

    /// Authenticates with a token that came in the body (a multipart field).
    public func authenticate(bodyToken token: String) throws {
        guard let check = bodyTokenCheck else { return }
        guard !token.isEmpty else { throw HTTPError.missingToken }
        userId = try check(token)
        bodyTokenCheck = nil
        try Responder.checkClaimedUser(request, userId)
    }

    /// How a statement names the acting user: `$1` bound to the user id once it is known, or (on
    /// a route that authenticates in its queries) a subquery on `$1` bound to the session token.
    public var me: (sql: String, param: PGBindable) {
        if let pendingToken, userId == 0, let sessions {
            return (sessions.userExpression, sessions.tokenParameter(pendingToken))
        }
        return ("$1::bigint", userId)
    }

    /// The session token still to be checked, on a route that authenticates in its queries (for
    /// a handler that joins the session into its own statement instead of `pipelineAsUser`).
    public var unresolvedSessionToken: String? { userId == 0 && sessions != nil ? pendingToken : nil }

    /// Completes authentication from a handler's own statement: the session's user (nil when the
    /// session is missing or expired: 401) and whether its last use should be recorded.
    public func adoptSession(userId sessionUser: Int64?, refreshNeeded: Bool) throws {
        guard let token = pendingToken, let sessions else { return }
        guard let sessionUser, sessionUser > 0 else { throw HTTPError.unauthorized }
        userId = sessionUser
        pendingToken = nil
        if refreshNeeded { try sessions.refresh(token, db: try db) }
        try Responder.checkClaimedUser(request, userId)
    }

    /// `adoptSession` from a row that starts with `SessionStatements.whoCTE`'s two columns (the
    /// session's user and whether its use is stale); no row: no live session.
    public func adoptSession(whoRow row: PGRow?) throws {
        try adoptSession(userId: row?.int64(0), refreshNeeded: row?.boolValue(1) ?? false)
    }

    /// Runs independent statements in one round trip as the acting user. On a route that
    /// authenticates in its queries, the session check rides in the same round trip, and the
    /// statements name the user with `me`; a missing or expired session is 401.
    public func pipelineAsUser(_ statements: [(sql: String, params: [PGBindable?])]) throws -> [PGResult] {
        let db = try self.db
        guard let token = pendingToken, userId == 0, let sessions else { return try db.pipeline(statements) }
        let results = try db.pipeline([sessions.statement(token)] + statements)
        userId = try sessions.resolve(results[0], token: token, db: db)
        pendingToken = nil
        try Responder.checkClaimedUser(request, userId)
        return Array(results.dropFirst())
    }

    /// One statement that needs no user, with the session check in the same round trip when it is
    /// still pending (see `pipelineAsUser`).
    public func queryAsUser(_ sql: String, _ params: [PGBindable?]) throws -> PGResult {
        try pipelineAsUser([(sql, params)])[0]
    }

    public init(request: Request, db: PGConnection, userId: Int64 = 0, wakes: WakeGenerations? = nil) {
        self.request = request
        self.connection = db
        self.userId = userId
        self.wakes = wakes
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
    var databaseDeadline: UInt64 = 0

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

/// How a route treats the request body.
public enum BodyHandling: Sendable {
    /// The pipeline reads a form body (urlencoded, up to `max_form_bytes`) into `params`.
    case form
    /// The handler reads the body itself from `request.body` (uploads).
    case stream
}

/// Session checks that run inside a handler's own statements (see `RequestContext.pipelineAsUser`).
public protocol SessionResolver: AnyObject {
    /// SQL for "the session's user" given the token parameter as `$1`.
    var userExpression: String { get }
    func tokenParameter(_ token: String) -> PGBindable
    /// The statement that checks the session (token as `$1`).
    func statement(_ token: String) -> (sql: String, params: [PGBindable?])
    /// The user from that statement's result, or 401.
    func resolve(_ result: PGResult, token: String, db: PGConnection) throws -> Int64
    /// Records a use of the session (at most once a minute matters).
    func refresh(_ token: String, db: PGConnection) throws
}

public struct Route {
    public let path: String
    public let requiresAuth: Bool
    /// The handler authenticates inside its own statements (`pipelineAsUser`), saving a round trip.
    public let authInQuery: Bool
    public let body: BodyHandling
    /// A streamed (multipart) body may carry the token as a field, which the handler checks
    /// with `RequestContext.authenticate(bodyToken:)` before it keeps anything.
    public let tokenInBody: Bool
    public let handler: (RequestContext) throws -> Response
}

/// Exact-path routing: the contract's paths are fixed strings, so a dictionary lookup is enough.
public final class Router {
    private var routes: [String: Route] = [:]

    public init() {}

    public func add(_ path: String, auth: Bool = true, authInQuery: Bool = false, body: BodyHandling = .form,
                    tokenInBody: Bool = false, _ handler: @escaping (RequestContext) throws -> Response) {
        precondition(routes[path] == nil, "route \(path) registered twice")
        precondition(!tokenInBody || body == .stream, "a token in the body needs a streamed body")
        routes[path] = Route(path: path, requiresAuth: auth, authInQuery: authInQuery, body: body,
                             tokenInBody: tokenInBody, handler: handler)
    }

    public func route(for path: String) -> Route? { routes[path] }

    public var paths: [String] { routes.keys.sorted() }
}
