import ChatConfig
import ChatSecurity
import ChatFastCGI
import ChatHTTP
import ChatRouting
import ChatPostgres

/// Turns a FastCGI exchange into a `Request`, runs the responder, writes the response and the
/// access-log line. This is the "request parsing" step between the FastCGI layer and the router.
extension FastCGIExchange: BodyStream {
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = readBody(into: buffer)
        if bodyFailed { throw HTTPError.badRequest("incomplete request body") }
        return n
    }
}
extension ParkingLot: WakeGenerations {}

public enum FastCGIAdapter {
    /// Most of a body of unknown length drained to keep a connection reusable; beyond it, close.
    static let drainLimit = 256 * 1024

    /// What a parked request needs when it is resumed.
    final class ParkedCall {
        let deferral: Deferral
        let request: Request
        let started: UInt64
        let userId: Int64
        let deadline: UInt64
        init(deferral: Deferral, request: Request, started: UInt64, userId: Int64, deadline: UInt64) {
            self.deferral = deferral
            self.request = request
            self.started = started
            self.userId = userId
            self.deadline = deadline
        }
    }

    public static func handle(_ exchange: FastCGIExchange, responder: Responder, db: PGConnection) {
        if exchange.isResuming, let call = exchange.parkedState as? ParkedCall {
            let final = exchange.resumeIsFinal || monotonicNanos() >= call.deadline
            let response = responder.resume(call.deferral, request: call.request, userId: call.userId, db: db, final: final)
            if let again = response.deferral {
                // Woken by news that was not for this request: wait on until the same deadline.
                exchange.parkedState = ParkedCall(deferral: again, request: call.request, started: call.started,
                                                  userId: call.userId, deadline: call.deadline)
                exchange.park(key: again.key, deadline: call.deadline, seenGeneration: again.seenGeneration)
                return
            }
            finish(exchange, response: response, method: call.request.method, path: call.request.path,
                   requestId: call.request.requestId, userId: call.userId, started: call.started)
            return
        }
        let started = monotonicNanos()
        let requestId = exchange.param("HTTP_X_REQUEST_ID").flatMap { isSafeRequestId($0) ? $0 : nil }
            ?? Crypto.hex(Crypto.randomBytes(16))
        let method = exchange.param("REQUEST_METHOD") ?? "GET"
        // DOCUMENT_URI is the normalised path without the query string.
        let path = exchange.param("DOCUMENT_URI") ?? exchange.param("SCRIPT_NAME") ?? "/"
        let query = exchange.param("QUERY_STRING") ?? ""
        let lengthText = exchange.param("CONTENT_LENGTH") ?? ""
        let contentLength = lengthText.isEmpty ? nil : Int(lengthText)

        var outcome: Responder.Outcome
        do {
            // nginx always sends a plain decimal; anything else comes from a broken or hostile
            // FastCGI client, and its body is not worth reading.
            if !lengthText.isEmpty, contentLength == nil || contentLength! < 0 {
                throw HTTPError.badRequest("invalid Content-Length")
            }
            let params = Params(try FormURLEncoded.parse(query))
            let request = Request(method: method, path: path, queryString: query,
                                  contentType: exchange.param("CONTENT_TYPE") ?? "",
                                  contentLength: contentLength, requestId: requestId,
                                  remoteAddress: exchange.param("REMOTE_ADDR") ?? "",
                                  authorization: exchange.param("HTTP_AUTHORIZATION"),
                                  params: params, body: exchange)
            outcome = responder.respond(to: request, db: db)
            if let deferral = outcome.response.deferral {
                // Park: read the body to its end first, so that the connection going readable
                // later can only mean nginx closed it (the client went away).
                guard exchange.discardBody(limit: drainLimit) else {
                    outcome = Responder.Outcome(response: .error(.payloadTooLarge), userId: outcome.userId, bodyLeftUnread: false)
                    finish(exchange, response: outcome.response, method: method, path: path, requestId: requestId,
                           userId: outcome.userId, started: started)
                    return
                }
                let deadline = monotonicNanos() + deferral.timeoutNanos
                exchange.parkedState = ParkedCall(deferral: deferral, request: request, started: started,
                                                  userId: outcome.userId, deadline: deadline)
                exchange.park(key: deferral.key, deadline: deadline, seenGeneration: deferral.seenGeneration)
                return
            }
        } catch let error as HTTPError {
            outcome = Responder.Outcome(response: .error(error), userId: 0, bodyLeftUnread: true)
        } catch {
            outcome = Responder.Outcome(response: .error(.internalError), userId: 0, bodyLeftUnread: true)
        }
        // What a refused request left of its body is read and dropped, so that nginx sees the
        // answer and can keep the connection: closing instead makes nginx fail the request (its
        // write of the body breaks: 502) whenever it is still sending. nginx buffers every body
        // before it calls the app, so this runs at local speed whatever the client's pace, each
        // read bounded by body_timeout_s, and the body by nginx's client_max_body_size.
        if outcome.bodyLeftUnread && !exchange.bodyFailed {
            _ = exchange.discardBody(limit: contentLength.map { max($0, 0) } ?? drainLimit)
        }
        finish(exchange, response: outcome.response, method: method, path: path, requestId: requestId,
               userId: outcome.userId, started: started)
    }

    static func finish(_ exchange: FastCGIExchange, response: Response, method: String, path: String,
                       requestId: String, userId: Int64, started: UInt64) {
        write(response, requestId: requestId, to: exchange)
        let micros = (monotonicNanos() - started) / 1000
        Log.access(method: method, path: path, status: response.status, millis: formatMillis(micros),
                   requestId: requestId, userId: userId)
    }

    static func write(_ response: Response, requestId: String, to exchange: FastCGIExchange) {
        var head = "Status: \(response.status) \(Response.reason(response.status))\r\n"
        head += "Content-Type: \(response.contentType)\r\n"
        head += "Content-Length: \(response.body.count)\r\n"
        head += "X-Request-Id: \(requestId)\r\n"
        head += "Cache-Control: no-store\r\n"
        // A browser must never guess another type for a body that echoes client text.
        head += "X-Content-Type-Options: nosniff\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        exchange.writeResponse(head: Array(head.utf8), body: response.body)
    }

    /// nginx's `$request_id` is 32 hex digits; anything else a client smuggles in is replaced.
    static func isSafeRequestId(_ id: String) -> Bool {
        let bytes = id.utf8
        return !bytes.isEmpty && bytes.count <= 64 && bytes.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x2D
        }
    }

    static func formatMillis(_ micros: UInt64) -> String {
        let fraction = micros % 1000
        return "\(micros / 1000)." + (fraction < 10 ? "00" : fraction < 100 ? "0" : "") + "\(fraction)"
    }
}
