
/// A failure that ends a request with a given HTTP status and envelope.
///
/// `info` is shown to the client, so it must never carry a secret or an internal detail;
/// internal faults use `HTTPError.internalError` and log their cause separately.
public struct HTTPError: Error, Equatable, Sendable {
    public var status: Int
    public var code: Int
    public var info: String
    /// Seconds after which the client may try again (a `Retry-After` header on 429 and 503).
    public var retryAfterSeconds: Int?

    public init(status: Int, code: Int = -1, info: String, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.code = code
        self.info = info
        self.retryAfterSeconds = retryAfterSeconds
    }

    public static func badRequest(_ info: String) -> HTTPError { HTTPError(status: 400, info: info) }
    public static func missing(_ name: String) -> HTTPError { HTTPError(status: 400, info: "missing parameter: \(name)") }
    public static func invalid(_ name: String) -> HTTPError { HTTPError(status: 400, info: "invalid parameter: \(name)") }
    public static let unauthorized = HTTPError(status: 401, info: "invalid or expired token")
    public static let missingToken = HTTPError(status: 401, info: "missing token")
    public static func forbidden(_ info: String = "forbidden") -> HTTPError { HTTPError(status: 403, info: info) }
    public static let notFound = HTTPError(status: 404, info: "not found")
    public static let methodNotAllowed = HTTPError(status: 405, info: "method not allowed")
    public static let payloadTooLarge = HTTPError(status: 413, info: "request body too large")
    public static func tooManyRequests(_ info: String = "too many requests", retryAfterSeconds: Int? = nil) -> HTTPError {
        HTTPError(status: 429, info: info, retryAfterSeconds: retryAfterSeconds)
    }
    public static let internalError = HTTPError(status: 500, info: "internal error")
    public static let insufficientStorage = HTTPError(status: 507, info: "the server has no room for this file now")
    public static func unavailable(_ info: String = "service unavailable", retryAfterSeconds: Int = 1) -> HTTPError {
        HTTPError(status: 503, info: info, retryAfterSeconds: retryAfterSeconds)
    }
}
