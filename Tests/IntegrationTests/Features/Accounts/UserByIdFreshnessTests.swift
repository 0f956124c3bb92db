import Foundation
import XCTest

/// `getUserById` is answered from each worker's copies of the session, the profile and the
/// caller's relations (docs/caching.md). These tests hold it to the same promise as without them:
/// - a change made through the API shows in the very next answer, from every worker;
/// - a change made in PostgreSQL directly (an operator, the admin commands) shows within moments;
/// - an ended session is refused at once.
///
/// Every look is an `agreeingLook` (many requests at once from several threads, twice), so that both worker
/// processes (and several threads of each) answer, and expects the same answer from all. A
/// session's first request to a worker keeps the session and the profile, its second the caller's
/// relations: the look before a change is what fills the copies, and the look after it must not
/// be answered from stale ones.
final class UserByIdFreshnessTests: StackTestCase {
    typealias Account = StackClient.Account

    /// What getUserById shows, as comparable text.
    struct View: Equatable, CustomStringConvertible {
        var status: Int
        var code: Int?
        var name = "", nickName = "", headUrl = "", sign = "", mobile = "", isAuth = ""
        var isFriend: Bool?
        var remark: String?
        var blocked: Bool?

        init(_ reply: Reply) {
            status = reply.status
            code = reply.code
            let data = reply.dataObject
            let user = data["user"] as? [String: Any] ?? [:]
            func text(_ key: String) -> String { user[key].map { "\($0)" } ?? "<missing>" }
            (name, nickName, headUrl, sign, mobile, isAuth) =
                (text("name"), text("nickName"), text("headUrl"), text("sign"), text("mobile"), text("isAuth"))
            isFriend = data["isFriend"] as? Bool
            remark = data["remark"] as? String
            blocked = data["blocked"] as? Bool
        }

        var description: String {
            "[\(status)/\(code.map(String.init) ?? "-") \(name) nick=\(nickName) head=\(headUrl) sign=\(sign) mobile=\(mobile) "
                + "isAuth=\(isAuth) friend=\(isFriend.map(String.init) ?? "-") remark=\(remark ?? "-") blocked=\(blocked.map(String.init) ?? "-")]"
        }
    }

    func view(_ viewer: Account, _ dest: Int64) -> () -> View {
        { View(self.client.call(viewer, "/chat/getUserById", ["destId": String(dest)])) }
    }

    /// `viewer`'s view of `dest` (`agreeingLook`).
    func look(_ viewer: Account, _ dest: Int64, file: StaticString = #filePath, line: UInt = #line) -> View {
        agreeingLook(file: file, line: line, view(viewer, dest))
    }

    func eventually(_ viewer: Account, _ dest: Int64, _ context: String, file: StaticString = #filePath, line: UInt = #line,
                    _ accept: (View) -> Bool) {
        eventuallyEvery(context, file: file, line: line, view(viewer, dest), accept: accept)
    }

    func pair(_ name: String) -> (Account, Account) {
        let accounts = client.newAccounts(2, name: name)
        return (accounts[0], accounts[1])
    }

    // MARK: changes through the API: in the very next answer

    func testAProfileEditShowsAtOnce() {
        let (viewer, other) = pair("UidProfile")
        XCTAssertEqual(look(viewer, other.userId).name, "UidProfile1")
        XCTAssertEqual(client.call(other, "/chat/updateProfile", ["name": "Renamed", "sign": "new sign"]).code, 1)
        let view = look(viewer, other.userId)
        XCTAssertEqual(view.name, "Renamed")
        XCTAssertEqual(view.sign, "new sign")
        // The editor sees it too.
        XCTAssertEqual(look(other, other.userId).name, "Renamed")
    }

    func testAnAvatarChangeShowsAtOnce() {
        let (viewer, other) = pair("UidHead")
        _ = look(viewer, other.userId)
        let url = "https://example.com/uid/\(UUID().uuidString).png"
        XCTAssertEqual(client.call(other, "/chat/updateHead", ["headUrl": url]).code, 1)
        XCTAssertEqual(look(viewer, other.userId).headUrl, url)
    }

    func testFriendshipRemarkBlockAndTheirEndsShowAtOnce() {
        let (viewer, other) = pair("UidRelation")
        var view = look(viewer, other.userId)
        XCTAssertEqual(view.isFriend, false)
        XCTAssertEqual(view.mobile.contains("****"), true, "a stranger's mobile is masked: \(view)")

        client.befriend(viewer, other)
        view = look(viewer, other.userId)
        XCTAssertEqual(view.isFriend, true)
        XCTAssertEqual(view.mobile, other.mobile, "a friend's mobile is shown in full")
        XCTAssertEqual(look(other, viewer.userId).isFriend, true, "both sides")

        XCTAssertEqual(client.call(viewer, "/chat/updateRemark", ["destId": String(other.userId), "remark": "老同学"]).code, 1)
        XCTAssertEqual(look(viewer, other.userId).remark, "老同学")

        XCTAssertEqual(client.call(viewer, "/chat/setBlock", ["blockId": String(other.userId)]).code, 1)
        XCTAssertEqual(look(viewer, other.userId).blocked, true)
        XCTAssertEqual(client.call(viewer, "/chat/removeBlack", ["destId": String(other.userId)]).code, 1)
        XCTAssertEqual(look(viewer, other.userId).blocked, false)

        // The other side ends it: the viewer's copy of their own relations must go too.
        XCTAssertEqual(client.call(other, "/chat/delFriend", ["destId": String(viewer.userId)]).code, 1)
        view = look(viewer, other.userId)
        XCTAssertEqual(view.isFriend, false)
        XCTAssertEqual(view.remark, "")
        XCTAssertEqual(view.mobile.contains("****"), true, "masked again: \(view)")
    }

    // MARK: sessions: an ended one is refused at once

    func testALoginOnTheSameDeviceEndsTheOldSessionAtOnce() {
        let (viewer, other) = pair("UidRelogin")
        XCTAssertEqual(look(viewer, other.userId).code, 1)
        let login = client.login(mobile: viewer.mobile, password: viewer.password, device: 1)
        XCTAssertEqual(login.code, 1, login.text)
        XCTAssertEqual(look(viewer, other.userId).status, 401, "the replaced token")
        let renewed = Account(mobile: viewer.mobile, password: viewer.password, userId: viewer.userId,
                              token: login.dataObject["token"] as? String ?? "")
        XCTAssertEqual(look(renewed, other.userId).code, 1)
    }

    func testAPasswordResetEndsEverySessionAtOnce() throws {
        let (viewer, other) = pair("UidReset")
        XCTAssertEqual(look(viewer, other.userId).code, 1)
        // The registration's code was sent moments ago; one a minute is allowed.
        try StackDB.query(stack, "UPDATE sms_sends SET sent_at = sent_at - interval '2 minutes' WHERE mobile = '\(viewer.mobile)'")
        let code = client.requestCode(for: viewer.mobile)
        let reset = client.post("/chat/findPwd", ["mobile": viewer.mobile, "pwd": StackClient.md5Hex("another"), "validateNum": code])
        XCTAssertEqual(reset.code, 1, reset.text)
        XCTAssertEqual(look(viewer, other.userId).status, 401)
    }

    // MARK: changes made in PostgreSQL directly: within moments

    func testChangesMadeInTheDatabaseShowWithinMoments() throws {
        let (viewer, other) = pair("UidSQL")
        client.befriend(viewer, other)
        XCTAssertEqual(look(viewer, other.userId).isFriend, true)

        try StackDB.query(stack, "UPDATE users SET nick_name = 'set in SQL' WHERE id = \(other.userId)")
        eventually(viewer, other.userId, "nick_name set in SQL") { $0.nickName == "set in SQL" }

        try StackDB.query(stack, "UPDATE friendships SET remark = 'sql remark' WHERE user_id = \(viewer.userId) AND friend_id = \(other.userId)")
        eventually(viewer, other.userId, "remark set in SQL") { $0.remark == "sql remark" }

        try StackDB.query(stack, "INSERT INTO blocks (user_id, blocked_id) VALUES (\(viewer.userId), \(other.userId))")
        eventually(viewer, other.userId, "block inserted in SQL") { $0.blocked == true }

        try StackDB.query(stack, "DELETE FROM friendships WHERE user_id IN (\(viewer.userId), \(other.userId))")
        eventually(viewer, other.userId, "friendship deleted in SQL") { $0.isFriend == false }

        try StackDB.query(stack, "DELETE FROM sessions WHERE user_id = \(viewer.userId)")
        eventually(viewer, other.userId, "session deleted in SQL") { $0.status == 401 }
    }

    func testAnOperatorsVerificationDecisionShowsWithinMoments() throws {
        let (viewer, other) = pair("UidAuth")
        XCTAssertEqual(look(viewer, other.userId).isAuth, "0")
        try StackDB.query(stack, "UPDATE users SET auth_status = 1 WHERE id = \(other.userId)")
        eventually(viewer, other.userId, "under review") { $0.isAuth == "1" }
        let decided = try runOperatorCommand(stack, ["admin", "auth", "approve", String(other.userId)])
        XCTAssertEqual(decided.status, 0, decided.output)
        eventually(viewer, other.userId, "approved by the admin command") { $0.isAuth == "2" }
    }
}
