import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// Bad input on every accounts and uploads route: a missing or malformed parameter is HTTP 400
/// with the envelope (`code` -1, `info` naming the problem), never a 5xx. Also unknown paths (404),
/// unsupported methods (405), over-long bodies (413) and missing tokens (401).
final class BadInputTests: StackTestCase {
    static var sharedAccount: StackClient.Account?

    override func setUpWithError() throws {
        try super.setUpWithError()
        EarlyAccounts.warmUp(client)
    }

    var account: StackClient.Account {
        if let account = BadInputTests.sharedAccount { return account }
        let account = client.newAccount(name: "BadInput")
        BadInputTests.sharedAccount = account
        return account
    }

    static let authRoutes = ["/chat/ready", "/chat/updateProfile", "/chat/updateHead", "/chat/updatePrivateSetting",
                             "/chat/updateAuth", "/chat/queryUser", "/chat/getUserById", "/chat/uploadImage",
                             "/chat/doUploads"]
    static let openRoutes = ["/getVersion", "/chat/getValidateNum", "/chat/register", "/chat/doLogin", "/chat/findPwd"]
    static let allRoutes = openRoutes + authRoutes

    static let password = StackClient.md5Hex("bad-input")
    static let validIdNo = "11010519491231002X"

    static let badMobiles = [
        "8613800138000",          // no +
        "+12345",                 // 5 digits
        "+86138abc0000",          // letters
        "+1234567890123456",      // 16 digits
        "+86 13800138000",        // a space
        "++8613800138000",
        "+",
        "+８６１３８００１３８０００", // full-width digits
    ]
    static let badPasswords = [
        String(repeating: "A", count: 32),                    // upper-case hex
        "0123456789ABCDEF0123456789abcdef",                   // mixed case
        String(repeating: "a", count: 31),
        String(repeating: "a", count: 33),
        String(repeating: "g", count: 32),                    // not hex
        "secret",                                             // plain text
        String(repeating: "a", count: 30) + "中文",
    ]
    static let badIds = ["abc", "-1", "0", "99999999999999999999999", "9223372036854775808", "1.5", "1e3", " 1", "0x10", "１"]
    static let badDevices = ["9", "0", "4", "-1", "abc", "1.0", "99999999999999999999999"]
    static let badFlags = ["2", "-1", "yes", "true", "on", "10"]

    /// An 18-character id number with a right check digit for the first 17 characters.
    static func withCheckDigit(_ first17: String) -> String {
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        let sum = zip(first17, weights).reduce(0) { $0 + Int(String($1.0))! * $1.1 }
        return first17 + String(Array("10X98765432")[sum % 11])
    }

    struct Case {
        var path: String
        var params: [String: String]
        /// What `info` must mention (usually the parameter's name).
        var names: String?
        var note: String
    }

    /// Valid parameters for each route: a case changes or removes one of them.
    func baseline(_ path: String) -> [String: String] {
        let mobile = StackClient.newMobile()
        switch path {
        case "/chat/getValidateNum": return ["mobile": mobile]
        case "/chat/register":
            return ["mobile": mobile, "pwd": BadInputTests.password, "name": "Name", "validateNum": "123456"]
        case "/chat/doLogin": return ["mobile": mobile, "pwd": BadInputTests.password, "device": "1"]
        case "/chat/findPwd": return ["mobile": mobile, "pwd": BadInputTests.password, "validateNum": "123456"]
        case "/chat/updateHead": return ["headUrl": "https://example.com/a.png"]
        case "/chat/updateAuth":
            return ["idNo": BadInputTests.validIdNo, "mobile": account.mobile, "name": "张三", "validateNum": "123456"]
        case "/chat/queryUser": return ["mobile": mobile]
        case "/chat/getUserById": return ["destId": String(account.userId)]
        default: return [:]
        }
    }

    func cases() -> [Case] {
        var cases: [Case] = []
        func missing(_ path: String, _ name: String) {
            var params = baseline(path)
            params.removeValue(forKey: name)
            cases.append(Case(path: path, params: params, names: name, note: "missing \(name)"))
            params[name] = ""
            cases.append(Case(path: path, params: params, names: name, note: "empty \(name)"))
        }
        func bad(_ path: String, _ name: String, _ values: [String], names: String? = nil) {
            for value in values {
                var params = baseline(path)
                params[name] = value
                cases.append(Case(path: path, params: params, names: names ?? name, note: "\(name)=\(value.prefix(40))"))
            }
        }
        let long33 = String(repeating: "字", count: 33)

        // /getVersion
        bad("/getVersion", "device", BadInputTests.badDevices)

        // /chat/getValidateNum
        missing("/chat/getValidateNum", "mobile")
        bad("/chat/getValidateNum", "mobile", BadInputTests.badMobiles)

        // /chat/register
        for name in ["mobile", "pwd", "name", "validateNum"] { missing("/chat/register", name) }
        bad("/chat/register", "mobile", BadInputTests.badMobiles)
        bad("/chat/register", "pwd", BadInputTests.badPasswords)
        bad("/chat/register", "name", [long33, "a\u{0}b"])
        bad("/chat/register", "recommandUserId", BadInputTests.badIds)
        bad("/chat/register", "headUrl", ["javascript:alert(1)", "http://example.com/a.png",
                                          "https://" + String(repeating: "a", count: 510)])

        // /chat/doLogin
        for name in ["mobile", "pwd"] { missing("/chat/doLogin", name) }
        bad("/chat/doLogin", "mobile", BadInputTests.badMobiles)
        bad("/chat/doLogin", "pwd", BadInputTests.badPasswords)
        bad("/chat/doLogin", "device", BadInputTests.badDevices)

        // /chat/findPwd
        for name in ["mobile", "pwd", "validateNum"] { missing("/chat/findPwd", name) }
        bad("/chat/findPwd", "mobile", BadInputTests.badMobiles)
        bad("/chat/findPwd", "pwd", BadInputTests.badPasswords)

        // /chat/ready takes no parameters of its own (a userId that differs from the session is a 403:
        // AccountsFlowTests.testAUserIdParameterThatDiffersFromTheSessionIsRefused).

        // /chat/updateProfile
        bad("/chat/updateProfile", "name", [long33, "a\u{0}b"])
        bad("/chat/updateProfile", "nickName", [long33])
        bad("/chat/updateProfile", "sign", [String(repeating: "s", count: 129)])
        bad("/chat/updateProfile", "sex", ["M", "F", "男女", "1", "male"])

        // /chat/updateHead
        missing("/chat/updateHead", "headUrl")
        bad("/chat/updateHead", "headUrl", ["javascript:alert(1)", "http://example.com/a.png", "ftp://x/a.png",
                                            "/uploads/2024/01/abcdefghijklmnopqrstuvwx.png", "/uploads/../../etc/passwd",
                                            "https://" + String(repeating: "a", count: 510), "https://", "//evil.example/a.png"])

        // /chat/updatePrivateSetting
        for name in ["needAuth", "newNotification", "searchMobile"] {
            bad("/chat/updatePrivateSetting", name, BadInputTests.badFlags)
        }

        // /chat/updateAuth
        for name in ["idNo", "mobile", "name", "validateNum"] { missing("/chat/updateAuth", name) }
        bad("/chat/updateAuth", "idNo", [
            "110105194912310021",                                      // wrong check digit
            "11010519491231002",                                       // 17 characters
            "11010519491231002X1",                                     // 19 characters
            "1101051949123100AX",                                      // a letter inside
            BadInputTests.withCheckDigit("11010519491331002"),         // month 13
            BadInputTests.withCheckDigit("11010519490230002"),         // 30 February
            BadInputTests.withCheckDigit("11010529990101002"),         // born in the future
            BadInputTests.withCheckDigit("01010519491231002"),         // region starting with 0
        ])
        bad("/chat/updateAuth", "mobile", BadInputTests.badMobiles)
        bad("/chat/updateAuth", "name", [long33])

        // /chat/queryUser
        missing("/chat/queryUser", "mobile")
        bad("/chat/queryUser", "mobile", BadInputTests.badMobiles)

        // /chat/getUserById
        missing("/chat/getUserById", "destId")
        bad("/chat/getUserById", "destId", BadInputTests.badIds)

        return cases
    }

    // MARK: parameters

    func testMissingAndMalformedParametersAre400InQueryAndBody() {
        let headers = ["Authorization": "Bearer \(account.token)"]
        for testCase in cases() {
            let context = "\(testCase.path) \(testCase.note)"
            let viaQuery = client.get(testCase.path, testCase.params, headers: headers)
            assertReply(viaQuery, status: 400, code: -1, infoContains: testCase.names, "GET " + context)
            let viaBody = client.post(testCase.path, testCase.params, headers: headers)
            assertReply(viaBody, status: 400, code: -1, infoContains: testCase.names, "POST " + context)
        }
    }

    func testABodyValueWinsOverTheQueryValue() {
        // The query is valid, the body is not: the body's value is the one checked.
        let reply = client.post("/chat/getValidateNum", ["mobile": "not-a-number"], query: ["mobile": StackClient.newMobile()])
        assertReply(reply, status: 400, code: -1, infoContains: "mobile")
        // And the other way round: a valid body value over an invalid query value is accepted.
        let ok = client.post("/getVersion", ["device": "2"], query: ["device": "9"])
        assertOK(ok)
    }

    func testUploadRoutesBadInput() {
        let auth = ["Authorization": "Bearer \(account.token)"]
        // uploadImage: no body, a form body, multipart without fileUpload.
        assertReply(client.postRaw("/chat/uploadImage", body: Data(), contentType: "multipart/form-data; boundary=abc",
                                   headers: auth), status: 400, code: -1)
        assertReply(client.post("/chat/uploadImage", ["fileUpload": "abc"], headers: auth), status: 400, code: -1)
        assertReply(client.get("/chat/uploadImage", headers: auth), status: 400, code: -1)
        let (noFile, type) = multipartBody([MultipartPart(name: "name", filename: nil, contentType: nil, data: Data("x".utf8))])
        assertReply(client.postRaw("/chat/uploadImage", body: noFile, contentType: type, headers: auth),
                    status: 400, code: -1, infoContains: "fileUpload")
        // doUploads: fileExt missing, empty, disallowed, over-long; an empty body.
        let pdf = Data("%PDF-1.4\n%%EOF\n".utf8)
        for query in [[:], ["fileExt": ""], ["fileExt": "exe"], ["fileExt": String(repeating: "p", count: 300)]] as [[String: String]] {
            assertReply(client.postRaw("/chat/doUploads", query: query, body: pdf, contentType: "application/octet-stream",
                                       headers: auth), status: 400, code: -1, infoContains: "fileExt", "\(query)")
        }
        assertReply(client.postRaw("/chat/doUploads", query: ["fileExt": "pdf"], body: Data(),
                                   contentType: "application/octet-stream", headers: auth), status: 400, code: -1)
    }

    // MARK: encoding

    static let badEncodings = [
        "%zz",        // not hex
        "%F",         // cut short
        "abc%",       // a lone %
        "%FF",        // not UTF-8
        "%C0%AF",     // overlong UTF-8
        "%E4%B8",     // truncated UTF-8 sequence
        "%ED%A0%80",  // a UTF-16 surrogate
    ]

    func testInvalidPercentEncodingAndInvalidUTF8InTheQueryAre400() {
        for path in BadInputTests.allRoutes {
            for encoded in BadInputTests.badEncodings {
                for target in ["\(path)?mobile=\(encoded)", "\(path)?\(encoded)=1"] {
                    let reply = RawHTTP.send(stack, method: "GET", target: target,
                                             headers: ["Authorization": "Bearer \(account.token)"])
                    assertReply(reply, status: 400, code: -1, "GET \(target)")
                    XCTAssertFalse((reply.info ?? "").isEmpty, "info must say what was wrong: \(target)")
                    XCTAssertNotEqual(reply.info, "internal error", target)
                }
            }
        }
    }

    func testInvalidPercentEncodingAndInvalidUTF8InTheBodyAre400() {
        let formRoutes = BadInputTests.allRoutes.filter { $0 != "/chat/uploadImage" && $0 != "/chat/doUploads" }
        for path in formRoutes {
            for encoded in BadInputTests.badEncodings {
                for body in ["name=\(encoded)", "mobile=%2B8613800138000&\(encoded)=x"] {
                    let reply = client.postRaw(path, body: Data(body.utf8), contentType: "application/x-www-form-urlencoded",
                                               headers: ["Authorization": "Bearer \(account.token)"])
                    assertReply(reply, status: 400, code: -1, "POST \(path) body \(body)")
                    XCTAssertFalse((reply.info ?? "").isEmpty)
                    XCTAssertNotEqual(reply.info, "internal error")
                }
            }
            // Raw bytes that are not UTF-8 (not percent-encoded at all).
            var raw = Data("name=".utf8)
            raw.append(contentsOf: [0xFF, 0xFE, 0x80])
            let reply = client.postRaw(path, body: raw, contentType: "application/x-www-form-urlencoded",
                                       headers: ["Authorization": "Bearer \(account.token)"])
            assertReply(reply, status: 400, code: -1, "POST \(path) raw non-UTF-8 body")
        }
    }

    // MARK: tokens

    func testEveryAuthenticatedRouteNeedsAToken() {
        for path in BadInputTests.authRoutes {
            assertReply(client.get(path), status: 401, code: -1, "GET \(path) without a token")
            assertReply(client.post(path, ["token": "not-a-token"]), status: 401, code: -1, "POST \(path) with a bad token")
        }
        for path in BadInputTests.openRoutes where path == "/getVersion" {
            assertOK(client.get(path))
        }
    }

    // MARK: paths, methods, sizes

    func testUnknownPathsAre404Envelopes() {
        for path in ["/chat/noSuchEndpoint", "/nothing", "/chat/", "/chat/ready/extra", "/CHAT/READY", "/getVersion/x",
                     "/index.html", "/.env", "/chat/ready.php"] {
            let reply = client.get(path)
            assertReply(reply, status: 404, code: -1, path)
        }
    }

    func testUnsupportedMethodsAre405Envelopes() {
        for (method, path) in [("PUT", "/chat/ready"), ("DELETE", "/getVersion"), ("PATCH", "/chat/doLogin"),
                               ("DELETE", "/chat/updateProfile"), ("PUT", "/chat/uploadImage")] {
            var request = URLRequest(url: URL(string: stack.baseURL + path)!)
            request.httpMethod = method
            request.setValue("Bearer \(account.token)", forHTTPHeaderField: "Authorization")
            if method != "DELETE" {
                request.httpBody = Data("a=b".utf8)
                request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            }
            let reply = client.perform(request)
            assertReply(reply, status: 405, code: -1, "\(method) \(path)")
        }
        // Methods URLSession will not send.
        for (method, path) in [("TRACE", "/getVersion"), ("OPTIONS", "/chat/ready"), ("PROPFIND", "/chat/doLogin")] {
            let reply = RawHTTP.send(stack, method: method, target: path)
            assertReply(reply, status: 405, code: -1, "\(method) \(path)")
        }
    }

    func testATwoMiBFormBodyIs413() {
        let big = "sign=" + String(repeating: "a", count: 2 << 20)
        let reply = client.postRaw("/chat/updateProfile", body: Data(big.utf8),
                                   contentType: "application/x-www-form-urlencoded",
                                   headers: ["Authorization": "Bearer \(account.token)"])
        assertReply(reply, status: 413, code: -1, "2 MiB urlencoded body")
        // Announced but not sent: refused from the Content-Length alone.
        let announced = RawHTTP.send(stack, method: "POST", target: "/chat/doLogin",
                                     headers: ["Content-Type": "application/x-www-form-urlencoded"],
                                     contentLength: 2 << 20)
        assertReply(announced, status: 413, code: -1, "2 MiB announced")
        // The account is untouched.
        let ready = client.get("/chat/ready", ["token": account.token])
        XCTAssertEqual((ready.dataObject["user"] as? [String: Any])?["sign"] as? String, "")
    }
}
