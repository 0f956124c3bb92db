import ChatConfig
import ChatHTTP
import ChatPostgres

/// The request pipeline after parsing: route, read the form body, authenticate, run the handler,
/// and turn every failure into the contract's envelope. It knows nothing of any feature: the
/// session check is handed in as a `SessionResolver`.
public final class Responder {
    public let router: Router
    let maxFormBytes: Int
    let sessions: SessionResolver
    /// Set by the worker process once its FastCGI server exists.
    public var wakes: WakeGenerations?

    public init(router: Router, maxFormBytes: Int, sessions: SessionResolver) {
        self.router = router
        self.maxFormBytes = maxFormBytes
        self.sessions = sessions
    }

    public struct Outcome {
        public var response: Response
        public var userId: Int64
        /// True when the body was left partly unread (the connection must not be reused).
        public var bodyLeftUnread: Bool
        /// Set when the request failed because the database connection was lost.
        var lostConnection: PGError? = nil

        public init(response: Response, userId: Int64, bodyLeftUnread: Bool) {
            self.response = response
            self.userId = userId
            self.bodyLeftUnread = bodyLeftUnread
        }
    }

    /// How long a request waits for an unreachable database (a restart) before it gets 503.
    public var databaseWaitNanos: UInt64 = 2_000_000_000

    /// Runs the request; when the database connection was lost before anything of the request
    /// could have been kept (`PGConnection.workDone`), once more on a new connection, waiting
    /// for the database within `databaseWaitNanos`. A streamed body cannot be read twice.
    public func respond(to request: Request, db: PGConnection) -> Outcome {
        let deadline = monotonicNanos() + databaseWaitNanos
        var attempt = 0
        while true {
            attempt += 1
            db.beginRequest()
            let outcome = respondOnce(to: request, db: db, databaseDeadline: deadline)
            guard let lost = outcome.lostConnection else { return outcome }
            let route = router.route(for: request.path)
            if attempt < 3, !db.workDone, route?.body != .stream, (try? db.reconnect(until: deadline)) != nil {
                Log.info("request.retried", ["rid": request.requestId, "path": request.path, "error": lost.message])
                continue
            }
            Log.warn("request.db_lost", ["rid": request.requestId, "path": request.path, "error": lost.message])
            return Outcome(response: .error(.unavailable("database unavailable; try again shortly")),
                           userId: outcome.userId, bodyLeftUnread: outcome.bodyLeftUnread)
        }
    }

    private func respondOnce(to request: Request, db: PGConnection, databaseDeadline: UInt64) -> Outcome {
        let context = RequestContext(request: request, db: db, wakes: wakes)
        context.databaseDeadline = databaseDeadline
        var bodyRead = request.contentLength == 0 || request.body == nil
        do {
            guard let route = router.route(for: request.path) else { throw HTTPError.notFound }
            // Every endpoint takes GET and POST (API.md §1); nothing else, not even HEAD, since a
            // GET here can have effects (sending a code) that a HEAD must not.
            guard request.method == "GET" || request.method == "POST" else {
                throw HTTPError.methodNotAllowed
            }
            if route.body == .form && request.mediaType == "application/x-www-form-urlencoded" {
                let bytes = try readForm(request)
                bodyRead = true
                request.params.merge(try FormURLEncoded.parse(bytes))
            }
            if route.body == .stream { bodyRead = true } // the handler owns the body
            if route.requiresAuth {
                let token = Responder.token(of: request)
                if token == nil && route.tokenInBody {
                    context.bodyTokenCheck = { [sessions, unowned context] token in
                        try sessions.authenticate(token, context: context)
                    }
                } else {
                    guard let token else { throw HTTPError.missingToken }
                    try context.attachSession(token, resolver: sessions, inQuery: route.authInQuery)
                }
            }
            let response = try route.handler(context)
            // An authenticated route must not answer without knowing its user.
            if route.requiresAuth && context.userId == 0 && response.deferral == nil && (200..<300).contains(response.status) {
                Log.error("request.unauthenticated_answer", ["rid": request.requestId, "path": request.path])
                throw HTTPError.internalError
            }
            return Outcome(response: response, userId: context.userId, bodyLeftUnread: !bodyRead)
        } catch var error as HTTPError {
            // A route that checks the session inside its statements may fail on a parameter
            // before it got there: the session still decides first (401 before 400), as on every
            // other route. Only on this error path does it cost a separate round trip.
            if error.status != 401, error.status != 503, context.userId == 0, let token = context.pendingToken {
                do {
                    context.userId = try sessions.authenticate(token, context: context)
                } catch let authError as HTTPError where authError.status == 401 {
                    error = authError
                } catch {}
            }
            return Outcome(response: .error(error), userId: context.userId, bodyLeftUnread: !bodyRead)
        } catch let error as PGError where error.connectionLost {
            var outcome = Outcome(response: .error(.internalError), userId: context.userId, bodyLeftUnread: !bodyRead)
            outcome.lostConnection = error
            return outcome
        } catch let error as PGError {
            Log.error("request.db_error", ["rid": request.requestId, "path": request.path,
                                           "sqlstate": error.sqlState ?? "-", "error": error.message])
            return Outcome(response: .error(.internalError), userId: context.userId, bodyLeftUnread: !bodyRead)
        } catch {
            Log.error("request.error", ["rid": request.requestId, "path": request.path, "error": String(describing: error)])
            return Outcome(response: .error(.internalError), userId: context.userId, bodyLeftUnread: !bodyRead)
        }
    }

    /// The session token: the `token` parameter or `Authorization: Bearer <token>`.
    static func token(of request: Request) -> String? {
        if let auth = request.authorization, let token = bearerToken(auth) { return token }
        if let token = request.params["token"], !token.isEmpty { return token }
        return nil
    }

    /// The token of an `Authorization: Bearer <token>` header ("bearer" in any case, one space,
    /// then the token, with spaces and tabs around it trimmed), or nil. Read from the UTF-8 bytes:
    /// every authenticated request passes here.
    static func bearerToken(_ header: String) -> String? {
        var header = header
        return header.withUTF8 { bytes -> String? in
            let bearer = "bearer".utf8
            guard bytes.count > bearer.count, bytes[bearer.count] == UInt8(ascii: " ") else { return nil }
            for (index, letter) in bearer.enumerated() where bytes[index] | 0x20 != letter { return nil }
            var start = bearer.count + 1, end = bytes.count
            while start < end, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { start += 1 }
            while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
            guard start < end else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
    }

    private func readForm(_ request: Request) throws -> [UInt8] {
        if let length = request.contentLength, length > maxFormBytes { throw HTTPError.payloadTooLarge }
        guard let body = request.body else { return [] }
        var bytes = [UInt8](repeating: 0, count: min(request.contentLength ?? 16384, maxFormBytes) + 1)
        var filled = 0
        while true {
            if filled == bytes.count {
                if bytes.count > maxFormBytes { throw HTTPError.payloadTooLarge }
                bytes.append(contentsOf: repeatElement(0, count: min(bytes.count, maxFormBytes + 1 - bytes.count)))
            }
            let n = try bytes.withUnsafeMutableBytes { try body.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
            if n == 0 { break }
            filled += n
        }
        if filled > maxFormBytes { throw HTTPError.payloadTooLarge }
        bytes.removeSubrange(filled...)
        return bytes
    }
}

extension Responder {
    /// Produces the answer of a deferred response, mapping failures like `respond` does.
    public func resume(_ deferral: Deferral, request: Request, userId: Int64, db: PGConnection, final: Bool) -> Response {
        do {
            let context = RequestContext(request: request, db: db, wakes: wakes)
            context.databaseDeadline = monotonicNanos() + databaseWaitNanos
            guard let token = Responder.token(of: request) else { throw HTTPError.missingToken }
            try context.attachSession(token, resolver: sessions, inQuery: true)
            var response = try deferral.resume(context, final)
            // A resume that sent nothing through the context: check the session on its own.
            if context.userId == 0 { context.userId = try sessions.authenticate(token, context: context) }
            if context.userId != userId { response = .error(.unauthorized) }
            // A final resume must answer; it cannot wait again.
            if final && response.deferral != nil { return .error(.internalError) }
            return response
        } catch let error as HTTPError {
            return .error(error)
        } catch let error as PGError where error.connectionLost {
            Log.warn("request.db_lost", ["rid": request.requestId, "path": request.path, "error": error.message])
            return .error(.unavailable("database unavailable; try again shortly"))
        } catch {
            Log.error("request.error", ["rid": request.requestId, "path": request.path, "error": String(describing: error)])
            return .error(.internalError)
        }
    }
}
