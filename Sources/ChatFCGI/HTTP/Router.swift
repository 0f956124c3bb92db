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
                try connection.ensureAlive()
                checked = true
            }
            return connection
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

public struct Route {
    public let path: String
    public let requiresAuth: Bool
    public let body: BodyHandling
    public let handler: (RequestContext) throws -> Response
}

/// Exact-path routing: the contract's paths are fixed strings, so a dictionary lookup is enough.
public final class Router {
    private var routes: [String: Route] = [:]

    public init() {}

    public func add(_ path: String, auth: Bool = true, body: BodyHandling = .form,
                    _ handler: @escaping (RequestContext) throws -> Response) {
        precondition(routes[path] == nil, "route \(path) registered twice")
        routes[path] = Route(path: path, requiresAuth: auth, body: body, handler: handler)
    }

    public func route(for path: String) -> Route? { routes[path] }

    public var paths: [String] { routes.keys.sorted() }
}
