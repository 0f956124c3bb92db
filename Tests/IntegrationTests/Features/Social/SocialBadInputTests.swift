import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// Bad input on every friends and groups route (API.md §1, §3, §4): a missing, malformed,
/// over-long or wrongly typed parameter is HTTP 400 with the envelope (`code` -1, `info` naming
/// the parameter), in the query string and in the body alike; never a 5xx. Without a token: 401.
/// A `userId` that is not the session's: 403.
final class SocialBadInputTests: StackTestCase {
    typealias Account = StackClient.Account

    struct Fixture {
        let me: Account
        let friend: Account
        let groupId: Int64
    }
    static let lock = NSLock()
    static var shared: Fixture?


    var fixture: Fixture {
        SocialBadInputTests.lock.lock()
        defer { SocialBadInputTests.lock.unlock() }
        if let shared = SocialBadInputTests.shared { return shared }
        let users = client.newAccounts(2, name: "SocialBad")
        client.befriend(users[0], users[1])
        let groupId = client.makeGroup(users[0], [users[1]])
        let fixture = Fixture(me: users[0], friend: users[1], groupId: groupId)
        SocialBadInputTests.shared = fixture
        return fixture
    }

    static let routes = ["/chat/requestFriend", "/chat/acceptRequest", "/chat/delFriend", "/chat/updateRemark",
                         "/chat/setBlock", "/chat/removeBlack", "/chat/setIgonre", "/chat/setTop", "/chat/cancelTop",
                         "/chat/createGroup", "/chat/updateGroup", "/chat/updateGroupMemberMark", "/chat/addGroupMember",
                         "/chat/quitGroup", "/chat/getGroupById", "/chat/getGroupMember", "/chat/queryGroup"]

    static let badIds = ["abc", "-1", "0", "99999999999999999999999", "9223372036854775808", "1.5", "1e3", " 1", "0x10", "１", "1,2"]
    static let badDestTypes = ["0", "3", "-1", "abc", "1.0", "99999999999999999999", "１", "user"]
    static let badFlags = ["2", "-1", "yes", "true", "on", "10"]
    static let badIdLists = ["a,b", "1,,2", ",", "1,-2", "0", "1;2", "1 2", "１", "1,abc", "99999999999999999999999", "1,"]

    /// Valid parameters for each route: each case changes or removes one of them.
    func baseline(_ path: String) -> [String: String] {
        let f = fixture
        let friend = String(f.friend.userId), group = String(f.groupId)
        switch path {
        case "/chat/requestFriend": return ["destId": friend, "destType": "1", "message": "hi"]
        case "/chat/acceptRequest": return ["destId": friend, "destType": "1"]
        case "/chat/delFriend": return ["destId": "9000000000000000000"]
        case "/chat/updateRemark": return ["destId": friend, "remark": "r"]
        case "/chat/setBlock": return ["blockId": "9000000000000000000"]
        case "/chat/removeBlack": return ["destId": friend]
        case "/chat/setIgonre": return ["destId": friend, "destType": "1", "receiveTip": "1"]
        case "/chat/setTop", "/chat/cancelTop": return ["destId": friend, "destType": "1"]
        case "/chat/createGroup": return ["ids": friend, "name": "g"]
        case "/chat/updateGroup": return ["groupId": group, "name": "g"]
        case "/chat/updateGroupMemberMark": return ["groupId": group, "name": "card"]
        case "/chat/addGroupMember": return ["groupId": group, "inviteIds": friend]
        case "/chat/quitGroup": return ["groupId": "9000000000000000000"]
        case "/chat/getGroupById", "/chat/getGroupMember": return ["groupId": group]
        case "/chat/queryGroup": return ["groupName": "g"]
        default: return [:]
        }
    }

    struct Case {
        var path: String
        var params: [String: String]
        var names: String
        var note: String
    }

    func cases() -> [Case] {
        var cases: [Case] = []
        func missing(_ path: String, _ name: String, empty: Bool = true) {
            var params = baseline(path)
            params.removeValue(forKey: name)
            cases.append(Case(path: path, params: params, names: name, note: "missing \(name)"))
            if empty {
                params[name] = ""
                cases.append(Case(path: path, params: params, names: name, note: "empty \(name)"))
            }
        }
        func bad(_ path: String, _ name: String, _ values: [String], extra: [String: String] = [:]) {
            for value in values {
                var params = baseline(path)
                for (key, extraValue) in extra { params[key] = extraValue }
                params[name] = value
                cases.append(Case(path: path, params: params, names: name, note: "\(name)=\(value.prefix(40))"))
            }
        }
        let overLong = String(repeating: "m", count: 4001) // longer than any text limit in the contract; fits in a URL
        let nul = "a\u{0}b"

        missing("/chat/requestFriend", "destId")
        missing("/chat/requestFriend", "destType")
        bad("/chat/requestFriend", "destId", SocialBadInputTests.badIds)
        bad("/chat/requestFriend", "destType", SocialBadInputTests.badDestTypes)
        bad("/chat/requestFriend", "message", [overLong, nul])

        missing("/chat/acceptRequest", "destId")
        missing("/chat/acceptRequest", "destType")
        bad("/chat/acceptRequest", "destId", SocialBadInputTests.badIds)
        bad("/chat/acceptRequest", "destType", SocialBadInputTests.badDestTypes)
        bad("/chat/acceptRequest", "friendGroupId", ["abc", "-1", "1.5", "99999999999999999999999"])
        bad("/chat/acceptRequest", "groupId", SocialBadInputTests.badIds, extra: ["destType": "2"])
        var groupRequest = baseline("/chat/acceptRequest")
        groupRequest["destType"] = "2"
        cases.append(Case(path: "/chat/acceptRequest", params: groupRequest, names: "groupId", note: "destType 2 without groupId"))

        missing("/chat/delFriend", "destId")
        bad("/chat/delFriend", "destId", SocialBadInputTests.badIds)

        missing("/chat/updateRemark", "destId")
        missing("/chat/updateRemark", "remark", empty: false) // an empty remark clears it
        bad("/chat/updateRemark", "destId", SocialBadInputTests.badIds)
        bad("/chat/updateRemark", "remark", [String(repeating: "备", count: 33), String(repeating: "r", count: 33), nul])

        missing("/chat/setBlock", "blockId")
        bad("/chat/setBlock", "blockId", SocialBadInputTests.badIds)

        missing("/chat/removeBlack", "destId")
        bad("/chat/removeBlack", "destId", SocialBadInputTests.badIds)

        for name in ["destId", "destType", "receiveTip"] { missing("/chat/setIgonre", name) }
        bad("/chat/setIgonre", "destId", SocialBadInputTests.badIds)
        bad("/chat/setIgonre", "destType", SocialBadInputTests.badDestTypes)
        bad("/chat/setIgonre", "receiveTip", SocialBadInputTests.badFlags)

        for path in ["/chat/setTop", "/chat/cancelTop"] {
            missing(path, "destId")
            missing(path, "destType")
            bad(path, "destId", SocialBadInputTests.badIds)
            bad(path, "destType", SocialBadInputTests.badDestTypes)
        }

        missing("/chat/createGroup", "ids")
        missing("/chat/createGroup", "name")
        bad("/chat/createGroup", "ids", SocialBadInputTests.badIdLists)
        bad("/chat/createGroup", "name", [String(repeating: "群", count: 65), nul])

        missing("/chat/updateGroup", "groupId")
        bad("/chat/updateGroup", "groupId", SocialBadInputTests.badIds)
        bad("/chat/updateGroup", "name", [String(repeating: "群", count: 65), "", nul])
        bad("/chat/updateGroup", "needApproval", SocialBadInputTests.badFlags)
        cases.append(Case(path: "/chat/updateGroup", params: ["groupId": String(fixture.groupId)], names: "name",
                          note: "neither name nor needApproval"))

        missing("/chat/updateGroupMemberMark", "groupId")
        missing("/chat/updateGroupMemberMark", "name", empty: false)
        bad("/chat/updateGroupMemberMark", "groupId", SocialBadInputTests.badIds)
        bad("/chat/updateGroupMemberMark", "name", [String(repeating: "卡", count: 33), nul])

        missing("/chat/addGroupMember", "groupId")
        missing("/chat/addGroupMember", "inviteIds")
        bad("/chat/addGroupMember", "groupId", SocialBadInputTests.badIds)
        bad("/chat/addGroupMember", "inviteIds", SocialBadInputTests.badIdLists)

        for path in ["/chat/quitGroup", "/chat/getGroupById", "/chat/getGroupMember"] {
            missing(path, "groupId")
            bad(path, "groupId", SocialBadInputTests.badIds)
        }

        missing("/chat/queryGroup", "groupName")
        bad("/chat/queryGroup", "groupName", [String(repeating: "群", count: 65), "   ", nul])
        return cases
    }

    func testMissingAndMalformedParametersAre400InQueryAndBody() {
        let headers = ["Authorization": "Bearer \(fixture.me.token)"]
        let before = snapshot()
        let all = cases()
        XCTAssertEqual(Set(all.map(\.path)), Set(SocialBadInputTests.routes), "every route has cases")
        for testCase in all {
            let context = "\(testCase.path) \(testCase.note)"
            let viaQuery = client.get(testCase.path, testCase.params, headers: headers)
            assertReply(viaQuery, status: 400, code: -1, infoContains: testCase.names, "GET " + context)
            let viaBody = client.post(testCase.path, testCase.params, headers: headers)
            assertReply(viaBody, status: 400, code: -1, infoContains: testCase.names, "POST " + context)
        }
        XCTAssertEqual(snapshot(), before, "refused requests changed nothing")
    }

    /// What `ready` shows of the fixture user's social state, as text.
    func snapshot() -> [String] {
        let ready = client.readyView(fixture.me)
        let friend = client.readyView(fixture.friend)
        return ["friends \(ready.friendIds)", "groups \(ready.groupIds.sorted())", "blocks \(ready.blocks)",
                "tops \(ready.tops)", "ignores \(ready.ignores)", "requests \(ready.requests.count)",
                "friend's friends \(friend.friendIds)", "friend's requests \(friend.requests.count)",
                "cards \(ready.groups.map { $0["myCard"] as? String ?? "?" })",
                "names \(ready.groups.map { $0["name"] as? String ?? "?" })"]
    }

    func testExtremeButWellFormedValuesAreNeverAServerError() {
        let f = fixture
        let huge = "9223372036854775807"
        let calls: [(String, [String: String])] = [
            ("/chat/requestFriend", ["destId": huge, "destType": "1"]),
            ("/chat/requestFriend", ["destId": huge, "destType": "2"]),
            ("/chat/requestFriend", ["destId": String(f.me.userId), "destType": "2"]),
            ("/chat/acceptRequest", ["destId": huge, "destType": "1", "friendGroupId": huge]),
            ("/chat/acceptRequest", ["destId": huge, "destType": "2", "groupId": huge]),
            ("/chat/delFriend", ["destId": huge]),
            ("/chat/updateRemark", ["destId": huge, "remark": "x"]),
            ("/chat/setBlock", ["blockId": huge]),
            ("/chat/removeBlack", ["destId": huge]),
            ("/chat/setIgonre", ["destId": huge, "destType": "2", "receiveTip": "0"]),
            ("/chat/setTop", ["destId": huge, "destType": "1"]),
            ("/chat/cancelTop", ["destId": huge, "destType": "2"]),
            ("/chat/createGroup", ["ids": "\(huge),\(f.friend.userId)", "name": "g"]),
            ("/chat/createGroup", ["ids": " \(f.friend.userId) , \(f.friend.userId) ", "name": "'; DROP TABLE groups; --"]),
            ("/chat/updateGroup", ["groupId": huge, "name": "g"]),
            ("/chat/updateGroupMemberMark", ["groupId": huge, "name": "c"]),
            ("/chat/addGroupMember", ["groupId": huge, "inviteIds": String(f.friend.userId)]),
            ("/chat/addGroupMember", ["groupId": String(f.groupId), "inviteIds": huge]),
            ("/chat/quitGroup", ["groupId": huge]),
            ("/chat/getGroupById", ["groupId": huge]),
            ("/chat/getGroupMember", ["groupId": huge, "version": "1"]),
            ("/chat/queryGroup", ["groupName": "%_\\'\"<>&"]),
            ("/chat/queryGroup", ["groupName": "😀"]),
            ("/chat/queryGroup", ["groupName": String(repeating: "群", count: 64)]),
        ]
        for (path, params) in calls {
            let reply = client.call(f.me, path, params)
            XCTAssertTrue([200, 403].contains(reply.status), "\(path) \(params): HTTP \(reply.status) \(reply.text.prefix(200))")
            assertIsEnvelope(reply, "\(path) \(params)")
            assertCommonHeaders(reply, "\(path) \(params)")
        }
    }

    func testEveryRouteNeedsAToken() {
        for path in SocialBadInputTests.routes {
            let params = baseline(path)
            assertReply(client.get(path, params), status: 401, code: -1, "GET \(path) without a token")
            var withBadToken = params
            withBadToken["token"] = String(repeating: "a", count: 64)
            assertReply(client.post(path, withBadToken), status: 401, code: -1, "POST \(path) with an unknown token")
            assertReply(client.post(path, params, headers: ["Authorization": "Bearer not-a-token"]), status: 401, code: -1,
                        "POST \(path) with a malformed bearer token")
        }
    }

    func testAUserIdThatIsNotTheSessionsIsRefused() {
        let f = fixture
        let before = snapshot()
        for path in SocialBadInputTests.routes {
            var params = baseline(path)
            params["userId"] = String(f.friend.userId)
            assertReply(client.call(f.me, path, params), status: 403, code: -1, "\(path) with another userId")
        }
        XCTAssertEqual(snapshot(), before, "nothing changed")
    }

    func testTheTokenAsAParameterWorksOnEveryRoute() {
        let f = fixture
        for path in ["/chat/getGroupById", "/chat/getGroupMember", "/chat/queryGroup"] {
            var params = baseline(path)
            params["token"] = f.me.token
            assertOK(client.get(path, params), "GET \(path) with token=")
            assertOK(client.post(path, params), "POST \(path) with token=")
        }
    }
}
