
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
    /// The session is checked by the handler's first statement (or a worker's copy), saving a round trip.
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
