import XCTest
@testable import ChatConfig
@testable import ChatPostgres
@testable import ChatHTTP
@testable import ChatRouting

/// A body stream over bytes, fed in small pieces to exercise the pipeline's reading loop.
final class BytesBody: BodyStream {
    var bytes: [UInt8]
    var offset = 0
    let piece: Int
    init(_ text: String, piece: Int = 7) { bytes = Array(text.utf8); self.piece = piece }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(piece, buffer.count, bytes.count - offset)
        for i in 0..<n { buffer[i] = bytes[offset + i] }
        offset += n
        return n
    }
}

/// Sessions without a database: `authenticate` decides, and `copy` stands for a worker's copy.
final class StubSessions: SessionResolver {
    let check: (String) throws -> Int64
    let copied: Int64?
    init(copied: Int64? = nil, _ check: @escaping (String) throws -> Int64 = { token in
        guard token == "good" else { throw HTTPError.unauthorized }
        return 42
    }) {
        self.check = check
        self.copied = copied
    }
    func authenticate(_ token: String, context: RequestContext) throws -> Int64 { try check(token) }
    func copy(of token: String) -> (userId: Int64, refreshNeeded: Bool)? { copied.map { ($0, false) } }
    func who(_ token: String) -> SQL { "SELECT 42::bigint AS who_id, false AS who_stale" }
    func keeper(for token: String) -> ((_ userId: Int64, _ stale: Bool) -> Void)? { nil }
    func refresh(_ token: String, db: PGConnection) throws {}
}

final class ResponderTests: XCTestCase {
    /// No database: these routes never touch it, and the connection is only opened on first use.
    let db = PGConnection(conninfo: "host=/nonexistent")

    func makeResponder() -> Responder {
        let router = Router()
        router.add("/open", auth: false) { c in .ok(["echo": .string(c.params["a"] ?? "")]) }
        router.add("/private") { c in .ok(["user": .int(c.userId)]) }
        router.add("/fails", auth: false) { _ in throw HTTPError.invalid("x") }
        router.add("/crashes", auth: false) { _ in struct Boom: Error {}; throw Boom() }
        return Responder(router: router, maxFormBytes: 64, sessions: StubSessions())
    }

    func request(_ path: String, method: String = "GET", query: String = "", body: String? = nil,
                 contentType: String = "application/x-www-form-urlencoded", authorization: String? = nil) throws -> Request {
        Request(method: method, path: path, queryString: query, contentType: body == nil ? "" : contentType,
                contentLength: body.map { $0.utf8.count }, requestId: "r1", authorization: authorization,
                params: Params(try FormURLEncoded.parse(query)), body: body.map { BytesBody($0) })
    }

    func envelope(_ outcome: Responder.Outcome) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(outcome.response.body))) as? [String: Any] ?? [:]
    }

    func testUnknownPathIs404Envelope() throws {
        let outcome = makeResponder().respond(to: try request("/nope"), db: db)
        XCTAssertEqual(outcome.response.status, 404)
        XCTAssertEqual(envelope(outcome)["code"] as? Int, -1)
        XCTAssertTrue(envelope(outcome).keys.contains("data"))
    }

    func testMethodOtherThanGetOrPostIs405() throws {
        let outcome = makeResponder().respond(to: try request("/open", method: "DELETE"), db: db)
        XCTAssertEqual(outcome.response.status, 405)
    }

    func testBodyValueWinsOverQueryValue() throws {
        let outcome = makeResponder().respond(to: try request("/open", method: "POST", query: "a=query", body: "a=body&b=2"), db: db)
        XCTAssertEqual(outcome.response.status, 200)
        XCTAssertEqual((envelope(outcome)["data"] as? [String: Any])?["echo"] as? String, "body")
    }

    func testOversizedFormIs413() throws {
        let body = "a=" + String(repeating: "x", count: 100)
        let outcome = makeResponder().respond(to: try request("/open", method: "POST", body: body), db: db)
        XCTAssertEqual(outcome.response.status, 413)
    }

    func testMalformedFormIs400() throws {
        let outcome = makeResponder().respond(to: try request("/open", method: "POST", body: "a=%zz"), db: db)
        XCTAssertEqual(outcome.response.status, 400)
        XCTAssertEqual(envelope(outcome)["code"] as? Int, -1)
    }

    func testAuthenticationByParameterAndBearer() throws {
        let responder = makeResponder()
        XCTAssertEqual(responder.respond(to: try request("/private"), db: db).response.status, 401)
        XCTAssertEqual(responder.respond(to: try request("/private", query: "token=bad"), db: db).response.status, 401)
        let byParam = responder.respond(to: try request("/private", query: "token=good"), db: db)
        XCTAssertEqual(byParam.response.status, 200)
        XCTAssertEqual(byParam.userId, 42)
        let byHeader = responder.respond(to: try request("/private", authorization: "Bearer good"), db: db)
        XCTAssertEqual((envelope(byHeader)["data"] as? [String: Any])?["user"] as? Int, 42)
    }

    func testBearerTokenParsing() {
        XCTAssertEqual(Responder.bearerToken("Bearer abc123"), "abc123")
        XCTAssertEqual(Responder.bearerToken("bearer abc123"), "abc123")
        XCTAssertEqual(Responder.bearerToken("BEARER abc123"), "abc123")
        XCTAssertEqual(Responder.bearerToken("Bearer   abc123 \t"), "abc123")
        XCTAssertEqual(Responder.bearerToken("Bearer a b"), "a b", "inner spaces stay; the token check refuses it later")
        XCTAssertNil(Responder.bearerToken("Bearer"))
        XCTAssertNil(Responder.bearerToken("Bearer "))
        XCTAssertNil(Responder.bearerToken("Bearer \t "))
        XCTAssertNil(Responder.bearerToken("Bearer\tabc"))
        XCTAssertNil(Responder.bearerToken("Basic dXNlcjpwYXNz"))
        XCTAssertNil(Responder.bearerToken("Bearerx abc"))
        XCTAssertNil(Responder.bearerToken("Bëarer abc"))
        XCTAssertNil(Responder.bearerToken(""))
        XCTAssertEqual(Responder.bearerToken("Bearer 令牌"), "令牌")
    }

    func testUserIdMustMatchTheSession() throws {
        let responder = makeResponder()
        XCTAssertEqual(responder.respond(to: try request("/private", query: "token=good&userId=42"), db: db).response.status, 200)
        let mismatch = responder.respond(to: try request("/private", query: "token=good&userId=7"), db: db)
        XCTAssertEqual(mismatch.response.status, 403)
        XCTAssertEqual(envelope(mismatch)["code"] as? Int, -1)
    }

    func testHandlerErrorsBecomeEnvelopesAndInternalsStayHidden() throws {
        let responder = makeResponder()
        let invalid = responder.respond(to: try request("/fails"), db: db)
        XCTAssertEqual(invalid.response.status, 400)
        XCTAssertEqual(envelope(invalid)["info"] as? String, "invalid parameter: x")
        let crash = responder.respond(to: try request("/crashes"), db: db)
        XCTAssertEqual(crash.response.status, 500)
        XCTAssertEqual(envelope(crash)["info"] as? String, "internal error")
    }

    func testA405NamesTheAllowedMethods() throws {
        let outcome = makeResponder().respond(to: try request("/open", method: "PUT"), db: db)
        XCTAssertEqual(outcome.response.status, 405)
        XCTAssertTrue(outcome.response.headers.contains { $0.0 == "Allow" && $0.1 == "GET, POST" })
    }

    func testNoTokenIsMissingTokenAndAWrongOneIsInvalid() throws {
        let responder = makeResponder()
        let missing = responder.respond(to: try request("/private"), db: db)
        XCTAssertEqual(missing.response.status, 401)
        XCTAssertEqual(envelope(missing)["info"] as? String, "missing token")
        let wrong = responder.respond(to: try request("/private", query: "token=bad"), db: db)
        XCTAssertEqual(envelope(wrong)["info"] as? String, "invalid or expired token")
    }

    /// A route whose token may come in its body: the handler checks it; one that answers without
    /// having done so is refused (500 and a log line), never served as user 0.
    func testATokenFromTheBodyIsCheckedAndARouteThatForgetsItIsRefused() throws {
        let router = Router()
        router.add("/upload", body: .stream, tokenInBody: true) { c in
            if c.awaitsBodyToken { try c.authenticate(bodyToken: c.params["fieldToken"] ?? "") }
            return .ok(["user": .int(c.userId)])
        }
        router.add("/forgets", body: .stream, tokenInBody: true) { _ in .ok() }
        let responder = Responder(router: router, maxFormBytes: 64, sessions: StubSessions())
        let good = responder.respond(to: try request("/upload", query: "fieldToken=good"), db: db)
        XCTAssertEqual((envelope(good)["data"] as? [String: Any])?["user"] as? Int, 42)
        XCTAssertEqual(responder.respond(to: try request("/upload", query: "fieldToken=bad"), db: db).response.status, 401)
        XCTAssertEqual(envelope(responder.respond(to: try request("/upload"), db: db))["info"] as? String, "missing token")
        let header = responder.respond(to: try request("/upload", authorization: "Bearer good"), db: db)
        XCTAssertEqual((envelope(header)["data"] as? [String: Any])?["user"] as? Int, 42)
        XCTAssertEqual(responder.respond(to: try request("/forgets"), db: db).response.status, 500)
    }

    /// The same for a route that checks the session inside its own statements: one that answers
    /// without having resolved it is refused, never served as user 0. With the worker's copy of
    /// the session, the session is resolved before the handler runs.
    func testARouteThatChecksTheSessionInItsStatementsMustResolveIt() throws {
        let router = Router()
        router.add("/forgets", authInQuery: true) { c in .ok(["pending": .bool(c.isSessionPending)]) }
        let withoutCopy = Responder(router: router, maxFormBytes: 64, sessions: StubSessions())
        let forgot = withoutCopy.respond(to: try request("/forgets", query: "token=good"), db: db)
        XCTAssertEqual(forgot.response.status, 500)
        XCTAssertEqual(envelope(forgot)["info"] as? String, "internal error")
        let withCopy = Responder(router: router, maxFormBytes: 64, sessions: StubSessions(copied: 42))
        let copied = withCopy.respond(to: try request("/forgets", query: "token=good"), db: db)
        XCTAssertEqual(copied.response.status, 200)
        XCTAssertEqual((envelope(copied)["data"] as? [String: Any])?["pending"] as? Bool, false)
        XCTAssertEqual(copied.userId, 42)
    }

    /// A lost database connection is never a 500: the request is run again on a new connection
    /// while the database may come back, then answered 503 with Retry-After.
    func testALostDatabaseIsRetriedThen503WithRetryAfter() throws {
        let router = Router()
        final class Counter: @unchecked Sendable { var calls = 0 }
        let counter = Counter()
        router.add("/db", auth: false) { _ in
            counter.calls += 1
            throw PGError(sqlState: "57P01", message: "terminating connection", connectionLost: true)
        }
        let responder = Responder(router: router, maxFormBytes: 64, sessions: StubSessions { _ in 1 })
        responder.databaseWaitNanos = 300_000_000
        let started = monotonicNanos()
        let outcome = responder.respond(to: try request("/db"), db: db)
        XCTAssertEqual(outcome.response.status, 503)
        XCTAssertTrue(outcome.response.headers.contains { $0.0 == "Retry-After" })
        XCTAssertEqual(counter.calls, 1, "the database never came back: nothing to run again on")
        XCTAssertLessThan(monotonicNanos() - started, 2_000_000_000, "the wait is bounded by databaseWaitNanos")
    }

    func testRouterRefusesNothingItDoesNotKnowAndListsPaths() {
        let router = Router()
        router.add("/b") { _ in .ok() }
        router.add("/a") { _ in .ok() }
        XCTAssertEqual(router.paths, ["/a", "/b"])
        XCTAssertNil(router.route(for: "/a/"))
        XCTAssertNotNil(router.route(for: "/a"))
    }
}
