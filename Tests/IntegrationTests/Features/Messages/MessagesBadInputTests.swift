import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// Bad input on the messaging routes (API.md §1, §5): a missing or malformed parameter is HTTP 400
/// with the envelope (`code` -1, `info` naming the parameter), never a 5xx; no token is 401; a
/// `userId` that is not the session's is 403.
final class MessagesBadInputTests: StackTestCase {
    typealias Account = StackClient.Account
    static var shared: (a: Account, b: Account)?
    static let lock = NSLock()


    /// Two friends (made once per run); A's stream always has an event pending from 0, so a sync
    /// the server wrongly accepts answers at once instead of parking.
    var pair: (a: Account, b: Account) {
        MessagesBadInputTests.lock.lock()
        defer { MessagesBadInputTests.lock.unlock() }
        if let pair = MessagesBadInputTests.shared { return pair }
        let users = client.newAccounts(2, name: "MsgBad")
        client.msgMakeFriends(users[0], users[1])
        MessagesBadInputTests.shared = (users[0], users[1])
        return (users[0], users[1])
    }

    static let routes = ["/chat/sendMsg", "/chat/getMsgHistory", "/chat/sync", "/chat/markRead"]

    /// Valid parameters for each route; a case changes or removes one of them.
    func baseline(_ path: String) -> [String: String] {
        let b = pair.b
        switch path {
        case "/chat/sendMsg":
            return ["destId": String(b.userId), "destType": "1", "msgType": "1", "content": "hello", "clientMsgId": msgClientId("bad")]
        case "/chat/getMsgHistory": return ["destId": String(b.userId), "destType": "1", "size": "20"]
        case "/chat/sync": return ["since": "0", "timeout": "0"]
        case "/chat/markRead": return ["destId": String(b.userId), "destType": "1", "seq": "1"]
        default: return [:]
        }
    }

    struct Case {
        var path: String
        var params: [String: String]
        var name: String
        var note: String
        /// Too long for a request line (nginx answers 414 before the application sees it): POST only.
        var bodyOnly = false
    }

    static let badIds = ["abc", "-1", "0", "99999999999999999999999", "9223372036854775808", "1.5", "1e3", " 1", "0x10", "１"]
    static let badDestTypes = ["0", "3", "-1", "abc", "1.0", "99999999999999999999"]

    func cases() -> [Case] {
        var cases: [Case] = []
        func missing(_ path: String, _ name: String) {
            var params = baseline(path)
            params.removeValue(forKey: name)
            cases.append(Case(path: path, params: params, name: name, note: "missing \(name)"))
            params[name] = ""
            cases.append(Case(path: path, params: params, name: name, note: "empty \(name)"))
        }
        func bad(_ path: String, _ name: String, _ values: [String]) {
            for value in values {
                var params = baseline(path)
                params[name] = value
                cases.append(Case(path: path, params: params, name: name, note: "\(name)=\(value.prefix(40))"))
            }
        }
        // /chat/sendMsg
        for name in ["destId", "destType", "msgType", "content", "clientMsgId"] { missing("/chat/sendMsg", name) }
        bad("/chat/sendMsg", "destId", MessagesBadInputTests.badIds)
        bad("/chat/sendMsg", "destType", MessagesBadInputTests.badDestTypes)
        bad("/chat/sendMsg", "msgType", ["0", "9", "20", "21", "30", "-1", "text", "1.5", "99999999999999999999999"])
        bad("/chat/sendMsg", "content", [String(repeating: "x", count: 4001)])
        var longChinese = baseline("/chat/sendMsg")
        longChinese["content"] = String(repeating: "字", count: 4001)
        cases.append(Case(path: "/chat/sendMsg", params: longChinese, name: "content", note: "content=4,001 Chinese characters",
                          bodyOnly: true))
        bad("/chat/sendMsg", "clientMsgId", [String(repeating: "c", count: 65), "has space", " leading", "trailing ",
                                             "tab\there", "new\nline", String(repeating: "长", count: 65)])
        // /chat/getMsgHistory
        for name in ["destId", "destType"] { missing("/chat/getMsgHistory", name) }
        bad("/chat/getMsgHistory", "destId", MessagesBadInputTests.badIds)
        bad("/chat/getMsgHistory", "destType", MessagesBadInputTests.badDestTypes)
        bad("/chat/getMsgHistory", "size", ["0", "101", "-1", "abc", "1.5", "1000", "99999999999999999999999"])
        bad("/chat/getMsgHistory", "sendTime", ["abc", "-1", "1.5e12", "99999999999999999999999", "yesterday"])
        // /chat/sync
        bad("/chat/sync", "since", ["abc", "-1", "1.5", "99999999999999999999999", "0x10"])
        bad("/chat/sync", "timeout", ["31", "-1", "abc", "10s", "1.5", "3600", "99999999999999999999999"])
        // /chat/markRead
        for name in ["destId", "destType", "seq"] { missing("/chat/markRead", name) }
        bad("/chat/markRead", "destId", MessagesBadInputTests.badIds)
        bad("/chat/markRead", "destType", MessagesBadInputTests.badDestTypes)
        bad("/chat/markRead", "seq", ["-1", "abc", "1.5", "99999999999999999999999"])
        return cases
    }

    // MARK: parameters

    func testMissingAndMalformedParametersAre400InQueryAndBody() {
        let headers = ["Authorization": "Bearer \(pair.a.token)"]
        let allCases = cases()
        // A few cases at a time (one per CPU) keeps this quick without hammering the stack.
        _ = concurrently(allCases.count) { index -> Void in
            let testCase = allCases[index]
            let context = "\(testCase.path) \(testCase.note)"
            if !testCase.bodyOnly {
                let viaQuery = self.client.get(testCase.path, testCase.params, headers: headers)
                assertReply(viaQuery, status: 400, code: -1, infoContains: testCase.name, "GET " + context)
                XCTAssertLessThan(viaQuery.status, 500, "GET \(context) must never be a 5xx")
            }
            let viaBody = self.client.post(testCase.path, testCase.params, headers: headers)
            assertReply(viaBody, status: 400, code: -1, infoContains: testCase.name, "POST " + context)
        }
        // None of the refused sends was stored.
        let history = client.msgHistory(pair.b, pair.a.userId, size: 100)
        XCTAssertFalse(history.contains { $0.content.count > 4000 || [0, 9, 20, 21, 30].contains($0.msgType) },
                       "a refused message was stored: \(history)")
    }

    func testTheBoundaryValuesAreAccepted() throws {
        let (a, b) = pair
        // 64-character clientMsgId, 4,000-character content, every visible ASCII character in the id.
        let id64 = String(repeating: "k", count: 40) + uniqueToken(24)
        XCTAssertNotNil(client.msgSend(a, to: b.userId, content: String(repeating: "y", count: 4000), clientMsgId: id64))
        XCTAssertNotNil(client.msgSend(a, to: b.userId, content: "punctuation id", clientMsgId: "!#$%&'()*+,-./:;<=>?@[]^_`{|}~" + uniqueToken(8)))
        for size in ["1", "100"] {
            assertOK(client.call(a, "/chat/getMsgHistory", ["destId": String(b.userId), "destType": "1", "size": size]), "size \(size)")
        }
        assertOK(client.call(a, "/chat/getMsgHistory", ["destId": String(b.userId), "destType": "1", "sendTime": "0"]), "sendTime 0")
        for timeout in ["0", "30"] {
            // Events are pending from 0, so even timeout 30 answers at once.
            assertOK(client.call(a, "/chat/sync", ["since": "0", "timeout": timeout]), "timeout \(timeout)")
        }
        assertOK(client.call(a, "/chat/sync"), "sync with no parameters (since 0, timeout 0)")
        assertOK(client.msgMarkRead(a, b.userId, seq: 0), "markRead seq 0")
    }

    func testInvalidUTF8ContentIs400() {
        let (a, b) = pair
        for encoded in ["%FF", "%C0%AF", "%E4%B8", "%ED%A0%80", "%zz", "abc%"] {
            let body = "destId=\(b.userId)&destType=1&msgType=1&clientMsgId=\(msgClientId("utf"))&content=\(encoded)"
            let reply = client.postRaw("/chat/sendMsg", body: Data(body.utf8), contentType: "application/x-www-form-urlencoded",
                                       headers: ["Authorization": "Bearer \(a.token)"])
            assertReply(reply, status: 400, code: -1, "content=\(encoded)")
        }
        for route in ["/chat/getMsgHistory?destId=\(b.userId)&destType=1&size=%FF", "/chat/sync?since=%FF",
                      "/chat/markRead?destId=\(b.userId)&destType=1&seq=%zz"] {
            let reply = RawHTTP.send(stack, method: "GET", target: route, headers: ["Authorization": "Bearer \(a.token)"])
            assertReply(reply, status: 400, code: -1, route)
        }
    }

    // MARK: tokens and identity

    func testEveryMessagingRouteNeedsAToken() {
        let marker = "no token " + uniqueToken(8)
        for path in MessagesBadInputTests.routes {
            var params = baseline(path)
            if path == "/chat/sendMsg" { params["content"] = marker }
            assertReply(client.get(path, params), status: 401, code: -1, "GET \(path) without a token")
            assertReply(client.post(path, params), status: 401, code: -1, "POST \(path) without a token")
            var withBad = params
            withBad["token"] = "not-a-token"
            assertReply(client.post(path, withBad), status: 401, code: -1, "POST \(path) with a bad token")
            assertReply(client.post(path, params, headers: ["Authorization": "Bearer " + String(repeating: "0", count: 64)]),
                        status: 401, code: -1, "POST \(path) with an unknown bearer token")
        }
        // Nothing was sent without a token.
        XCTAssertEqual(client.msgHistory(pair.b, pair.a.userId, size: 100).filter { $0.content == marker }.count, 0)
    }

    func testAUserIdThatIsNotTheSessionsIsRefused() {
        let (a, b) = pair
        for path in MessagesBadInputTests.routes {
            var params = baseline(path)
            params["userId"] = String(b.userId)
            assertReply(client.call(a, path, params), status: 403, code: -1, "\(path) with someone else's userId")
            params["userId"] = String(a.userId)
            let own = client.call(a, path, params)
            XCTAssertEqual(own.status, 200, "\(path) with one's own userId: \(own.text.prefix(200))")
        }
    }
}
