import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// The running stack that `make test` brings up (nginx → FastCGI workers → PostgreSQL), described
/// by the environment `scripts/test.sh` exports. Integration tests talk to it over HTTP only.
struct Stack {
    let baseURL: String
    let httpsURL: String?
    let smsOutbox: String
    let pidFile: String?
    let stackScript: String?
    let uploadsDir: String?
    let configPath: String?
    let binary: String?

    /// The stack from the environment; the test is skipped when run outside `make test`.
    static func current() throws -> Stack {
        let env = ProcessInfo.processInfo.environment
        guard let base = env["CHAT_TEST_BASE_URL"], !base.isEmpty else {
            throw XCTSkip("CHAT_TEST_BASE_URL is not set: integration tests run under `make test`")
        }
        return Stack(baseURL: base, httpsURL: env["CHAT_TEST_HTTPS_URL"],
                     smsOutbox: env["CHAT_TEST_SMS_OUTBOX"] ?? "", pidFile: env["CHAT_TEST_PIDFILE"],
                     stackScript: env["CHAT_TEST_STACK_SCRIPT"], uploadsDir: env["CHAT_TEST_UPLOADS_DIR"],
                     configPath: env["CHAT_TEST_CONFIG"], binary: env["CHAT_TEST_BINARY"])
    }
}

/// One HTTP answer, with the envelope decoded.
struct Reply {
    let status: Int
    let headers: [String: String]
    let body: Data

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    var code: Int? { json["code"] as? Int }
    var info: String? { json["info"] as? String }
    var data: Any? { json["data"] }
    var dataObject: [String: Any] { data as? [String: Any] ?? [:] }
    var dataArray: [Any] { data as? [Any] ?? [] }
    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// A small synchronous HTTP client over URLSession (no keep-alive surprises: each call is one request).
final class StackClient {
    let stack: Stack
    let session: URLSession

    init(stack: Stack) {
        self.stack = stack
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 60
        configuration.httpMaximumConnectionsPerHost = 64
        session = URLSession(configuration: configuration)
    }

    /// Percent-encodes a form value (application/x-www-form-urlencoded: space as %20 is fine).
    static func encode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    static func form(_ params: [String: String]) -> String {
        params.sorted { $0.key < $1.key }.map { "\(encode($0.key))=\(encode($0.value))" }.joined(separator: "&")
    }

    /// GET with the parameters in the query string.
    func get(_ path: String, _ params: [String: String] = [:], headers: [String: String] = [:]) -> Reply {
        let query = params.isEmpty ? "" : "?" + StackClient.form(params)
        var request = URLRequest(url: URL(string: stack.baseURL + path + query)!)
        request.httpMethod = "GET"
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        return perform(request)
    }

    /// POST with the parameters as an urlencoded body.
    func post(_ path: String, _ params: [String: String] = [:], query: [String: String] = [:],
              headers: [String: String] = [:]) -> Reply {
        let q = query.isEmpty ? "" : "?" + StackClient.form(query)
        var request = URLRequest(url: URL(string: stack.baseURL + path + q)!)
        request.httpMethod = "POST"
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(StackClient.form(params).utf8)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        return perform(request)
    }

    /// POST with a raw body (doUploads) or any content type.
    func postRaw(_ path: String, query: [String: String] = [:], body: Data, contentType: String,
                 headers: [String: String] = [:]) -> Reply {
        let q = query.isEmpty ? "" : "?" + StackClient.form(query)
        var request = URLRequest(url: URL(string: stack.baseURL + path + q)!)
        request.httpMethod = "POST"
        request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        request.httpBody = body
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        return perform(request)
    }

    /// A plain GET of an absolute path (e.g. an uploaded file served by nginx).
    func fetch(_ pathOrURL: String) -> Reply {
        let url = pathOrURL.hasPrefix("http") ? pathOrURL : stack.baseURL + pathOrURL
        return perform(URLRequest(url: URL(string: url)!))
    }

    func perform(_ request: URLRequest) -> Reply {
        final class Box: @unchecked Sendable { var reply = Reply(status: 0, headers: [:], body: Data()) }
        let done = DispatchSemaphore(value: 0)
        let box = Box()
        let task = session.dataTask(with: request) { data, response, _ in
            let http = response as? HTTPURLResponse
            var headers: [String: String] = [:]
            for (key, value) in http?.allHeaderFields ?? [:] {
                headers[String(describing: key).lowercased()] = String(describing: value)
            }
            box.reply = Reply(status: http?.statusCode ?? 0, headers: headers, body: data ?? Data())
            done.signal()
        }
        task.resume()
        done.wait()
        return box.reply
    }

    // MARK: accounts helpers shared by the tests

    /// A fresh, unused E.164 number (+8613 followed by 9 random digits).
    static func newMobile() -> String {
        "+8613" + String(format: "%09d", Int.random(in: 0..<1_000_000_000))
    }

    static func md5Hex(_ text: String) -> String {
        // The clients send MD5 hex; tests only need 32 lower-case hex digits derived from the text.
        var hash = [UInt8](repeating: 0, count: 16)
        for (index, byte) in text.utf8.enumerated() { hash[index % 16] = hash[index % 16] &* 31 &+ byte }
        return hash.map { String(format: "%02x", $0) }.joined()
    }

    /// The latest code the outbox holds for a number.
    func latestCode(for mobile: String) -> String? {
        guard let text = try? String(contentsOfFile: stack.smsOutbox, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n").reversed() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if object["mobile"] as? String == mobile { return object["code"] as? String }
        }
        return nil
    }

    /// Requests a code and returns it from the outbox.
    func requestCode(for mobile: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let reply = post("/chat/getValidateNum", ["mobile": mobile])
        XCTAssertEqual(reply.status, 200, reply.text, file: file, line: line)
        XCTAssertEqual(reply.code, 1, reply.text, file: file, line: line)
        return latestCode(for: mobile) ?? ""
    }

    struct Account {
        let mobile: String
        let password: String
        let userId: Int64
        let token: String
    }

    /// Registers a new user and logs in; fails the calling test if any step fails.
    func newAccount(name: String = "Tester", device: Int = 1, file: StaticString = #filePath, line: UInt = #line) -> Account {
        let mobile = StackClient.newMobile()
        let password = StackClient.md5Hex("secret-\(mobile)")
        let code = requestCode(for: mobile, file: file, line: line)
        let registered = post("/chat/register", ["mobile": mobile, "pwd": password, "name": name, "validateNum": code])
        XCTAssertEqual(registered.code, 1, registered.text, file: file, line: line)
        let login = post("/chat/doLogin", ["mobile": mobile, "pwd": password, "device": String(device)])
        XCTAssertEqual(login.code, 1, login.text, file: file, line: line)
        let userId = (login.dataObject["userId"] as? NSNumber)?.int64Value ?? 0
        return Account(mobile: mobile, password: password, userId: userId, token: login.dataObject["token"] as? String ?? "")
    }
}

/// The base of the integration test classes: the running stack and a client for it (each test is
/// skipped outside `make test`).
class StackTestCase: XCTestCase {
    var stack: Stack!
    var client: StackClient!

    override func setUpWithError() throws {
        try super.setUpWithError()
        stack = try Stack.current()
        client = StackClient(stack: stack)
    }
}
