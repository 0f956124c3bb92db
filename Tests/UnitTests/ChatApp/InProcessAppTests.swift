import Foundation
import XCTest
@testable import ChatConfig
@testable import ChatPostgres
@testable import ChatHTTP
@testable import ChatRouting
@testable import ChatApp

/// The application's routes in-process: its responder on the test stack's database, without
/// nginx or FastCGI (after Hummingbird's test client), for handler tests that need nothing of
/// the web server. Skipped outside `make test` (it reads the stack's configuration).
final class AppHarness {
    let responder: Responder
    let db: PGConnection
    let smsOutbox: String

    init() throws {
        let config = try TestStackConfig.load()
        responder = Application.makeResponder(config: config).0
        db = PGConnection(conninfo: config.database)
        smsOutbox = config.smsOutbox
    }

    struct Answer {
        let status: Int
        let json: [String: Any]
        var code: Int? { json["code"] as? Int }
        var data: [String: Any] { json["data"] as? [String: Any] ?? [:] }
    }

    /// A GET of `path` with `params`, as nginx would hand it over from 127.0.0.1.
    func get(_ path: String, _ params: [String: String] = [:], token: String? = nil) throws -> Answer {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let query = params.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
            .joined(separator: "&")
        let request = Request(method: "GET", path: path, queryString: query, requestId: "in-process",
                              remoteAddress: "127.0.0.1", authorization: token.map { "Bearer \($0)" },
                              params: Params(try FormURLEncoded.parse(query)))
        let outcome = responder.respond(to: request, db: db)
        let json = (try? JSONSerialization.jsonObject(with: Data(outcome.response.body))) as? [String: Any] ?? [:]
        return Answer(status: outcome.response.status, json: json)
    }

    /// The code the outbox holds for `mobile`, newest first.
    func latestCode(for mobile: String) -> String? {
        let text = (try? String(contentsOfFile: smsOutbox, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n").reversed() {
            guard let entry = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if entry["mobile"] as? String == mobile { return entry["code"] as? String }
        }
        return nil
    }
}

final class InProcessAppTests: XCTestCase {
    func testARegisteredUserLogsInAndReadsItsOwnProfile() throws {
        let app = try AppHarness()
        let mobile = "+8613" + String(format: "%09d", Int.random(in: 0..<1_000_000_000))
        XCTAssertEqual(try app.get("/chat/getValidateNum", ["mobile": mobile]).code, 1)
        let code = try XCTUnwrap(app.latestCode(for: mobile))
        let password = String(repeating: "ab", count: 16)
        let registered = try app.get("/chat/register", ["mobile": mobile, "pwd": password, "name": "InProcess", "validateNum": code])
        XCTAssertEqual(registered.code, 1, "\(registered.json)")
        let login = try app.get("/chat/doLogin", ["mobile": mobile, "pwd": password])
        XCTAssertEqual(login.code, 1, "\(login.json)")
        let token = try XCTUnwrap(login.data["token"] as? String)
        let userId = try XCTUnwrap((login.data["userId"] as? NSNumber)?.int64Value)

        let ready = try app.get("/chat/ready", token: token)
        XCTAssertEqual(ready.status, 200)
        let user = ready.data["user"] as? [String: Any] ?? [:]
        XCTAssertEqual((user["userId"] as? NSNumber)?.int64Value, userId)
        XCTAssertEqual(user["mobile"] as? String, mobile, "your own mobile, unmasked")
    }

    func testRoutesRefuseWhatTheyShouldWithoutTheWebServer() throws {
        let app = try AppHarness()
        XCTAssertEqual(try app.get("/chat/ready").status, 401)
        XCTAssertEqual(try app.get("/chat/ready", token: String(repeating: "0", count: 64)).status, 401)
        XCTAssertEqual(try app.get("/chat/getUserById", ["destId": "x"], token: String(repeating: "0", count: 64)).status, 401)
        XCTAssertEqual(try app.get("/no/such/route").status, 404)
        XCTAssertEqual(try app.get("/getVersion", ["device": "2"]).code, 1)
    }
}
