import ChatHTTP

/// A response: status, content type, body and any extra headers.
///
/// Application responses are the JSON envelope of the contract: `{"code", "info", "data"}`.
public struct Response {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var headers: [(String, String)]
    /// Set when the handler answers later (a long-poll); the body is then ignored.
    public var deferral: Deferral? = nil

    public init(status: Int = 200, contentType: String = "application/json; charset=utf-8", body: [UInt8],
                headers: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    /// The contract's envelope. `code` 1 is success; any business outcome is HTTP 200.
    public static func envelope(code: Int = 1, info: String = "ok", data: JSON = .null, status: Int = 200) -> Response {
        envelope(code: code, info: info, status: status, reserving: data.sizeHint) { data.write(into: &$0) }
    }

    /// The envelope with `data` written by the caller straight into the body.
    static func envelope(code: Int, info: String, status: Int, reserving capacity: Int,
                         writingData write: (inout [UInt8]) -> Void) -> Response {
        var body: [UInt8] = []
        body.reserveCapacity(64 + info.utf8.count + capacity)
        body.append(contentsOf: "{\"code\":".utf8)
        JSONWriter.appendInt(Int64(code), to: &body)
        body.append(contentsOf: ",\"info\":".utf8)
        JSON.writeString(info, into: &body)
        body.append(contentsOf: ",\"data\":".utf8)
        write(&body)
        body.append(UInt8(ascii: "}"))
        return Response(status: status, body: body)
    }

    /// A success whose `data` the caller writes itself, straight into the body (a long list: no
    /// second buffer and no copy of it).
    public static func ok(reserving capacity: Int, writingData write: (inout [UInt8]) -> Void) -> Response {
        envelope(code: 1, info: "ok", status: 200, reserving: capacity, writingData: write)
    }

    /// A success with fields of its own after `data` in the envelope (a paged list's next cursor):
    /// clients that read `data` alone are not affected.
    public static func ok(reserving capacity: Int, writingData write: (inout [UInt8]) -> Void,
                          thenFields fields: [(key: String, value: JSON)]) -> Response {
        envelope(code: 1, info: "ok", status: 200, reserving: capacity) { body in
            write(&body)
            for field in fields {
                body.append(UInt8(ascii: ","))
                JSON.writeString(field.key, into: &body)
                body.append(UInt8(ascii: ":"))
                field.value.write(into: &body)
            }
        }
    }

    /// Answer later: when `key` is woken, after `timeoutSeconds`, or when the server drains, the
    /// request is resumed and `resume` produces the answer with the resuming thread's connection,
    /// after the session has been checked again (an ended session gets 401).
    /// `resume` gets `final` = true when it must answer (time-out, drain); when merely woken it
    /// may return another `deferred` response to keep waiting until the same deadline.
    public static func deferred(key: Int64, timeoutSeconds: Int, seenGeneration: UInt64,
                                resume: @escaping (RequestContext, _ final: Bool) throws -> Response) -> Response {
        var response = Response(body: [])
        response.deferral = Deferral(key: key, timeoutNanos: UInt64(timeoutSeconds) * 1_000_000_000,
                                     seenGeneration: seenGeneration, resume: resume)
        return response
    }

    public static func ok(_ data: JSON = .null, info: String = "ok") -> Response { envelope(data: data) }

    /// A business failure (HTTP 200) with an endpoint-specific code.
    public static func outcome(_ code: Int, _ info: String, data: JSON = .null) -> Response {
        envelope(code: code, info: info, data: data)
    }

    public static func error(_ error: HTTPError) -> Response {
        var response = envelope(code: error.code, info: error.info, status: error.status)
        // Every route takes GET and POST (API.md §1); RFC 9110 asks a 405 to say so.
        if error.status == 405 { response.headers.append(("Allow", "GET, POST")) }
        if let seconds = error.retryAfterSeconds { response.headers.append(("Retry-After", String(seconds))) }
        return response
    }

    /// The status line's reason phrase, for the CGI `Status:` header.
    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 413: return "Payload Too Large"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        case 507: return "Insufficient Storage"
        default: return "Status"
        }
    }
}

/// A response that comes later; see `Response.deferred`.
public final class Deferral {
    public let key: Int64
    public let timeoutNanos: UInt64
    public let seenGeneration: UInt64
    /// Gets a context whose session is still to be checked again: statements sent through
    /// `RequestContext.pipeline` or adopted from `who` carry the check; else the responder makes it.
    public let resume: (RequestContext, Bool) throws -> Response

    init(key: Int64, timeoutNanos: UInt64, seenGeneration: UInt64, resume: @escaping (RequestContext, Bool) throws -> Response) {
        self.key = key
        self.timeoutNanos = timeoutNanos
        self.seenGeneration = seenGeneration
        self.resume = resume
    }
}

/// Where a handler learns a key's wake generation before it checks for news (see ParkingLot).
public protocol WakeGenerations: AnyObject {
    func generation(for key: Int64) -> UInt64
}
