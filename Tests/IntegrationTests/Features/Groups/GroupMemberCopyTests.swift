import Foundation
import XCTest

/// `getGroupMember` is answered from each worker's copies of the session, the group (its owner and
/// member list) and the caller's friends when all are current (docs/caching.md). The changes made
/// through the API are in ListFreshnessTests (every look there reads concurrently, twice); these
/// tests cover what only the copies could get wrong:
/// - a change made in PostgreSQL directly shows within moments;
/// - the end of a group, the end of a membership and the end of a session are refused at once.
///
/// Every look is an `agreeingLook`: many requests at once, twice, so that both worker processes
/// (and several threads of each) answer, and the same answer from all.
final class GroupMemberCopyTests: StackTestCase {
    typealias Account = StackClient.Account

    /// One answer: status, code, and the members as "userId role card nickName mobile" lines.
    struct View: Equatable, CustomStringConvertible {
        var status: Int
        var code: Int?
        var members: [String]

        init(_ reply: Reply) {
            status = reply.status
            code = reply.code
            members = reply.dataArray.map { entry in
                let member = entry as? [String: Any] ?? [:]
                let user = member["user"] as? [String: Any] ?? [:]
                func text(_ value: Any?) -> String { value.map { "\($0)" } ?? "-" }
                return [text(member["userId"]), text(member["role"]), text(member["card"]), text(user["nickName"]),
                        text(user["mobile"])].joined(separator: " ")
            }
        }

        var description: String { "[\(status)/\(code.map(String.init) ?? "-") \(members)]" }
        var userIds: [String] { members.map { String($0.prefix { $0 != " " }) } }
        func line(of account: Account) -> String? { members.first { $0.hasPrefix("\(account.userId) ") } }
    }

    func view(_ viewer: Account, _ groupId: Int64) -> () -> View {
        { View(self.client.groupMembers(viewer, groupId)) }
    }

    /// `viewer`'s answer (`agreeingLook`).
    func look(_ viewer: Account, _ groupId: Int64, file: StaticString = #filePath, line: UInt = #line) -> View {
        agreeingLook(file: file, line: line, view(viewer, groupId))
    }

    func eventually(_ viewer: Account, _ groupId: Int64, _ context: String, file: StaticString = #filePath, line: UInt = #line,
                    _ accept: (View) -> Bool) {
        eventuallyEvery(context, file: file, line: line, view(viewer, groupId), accept: accept)
    }

    /// A (the owner) with friends B and C in a new group, every member's copies filled.
    func group(_ name: String) -> (a: Account, b: Account, c: Account, groupId: Int64) {
        let users = client.newAccounts(3, name: name)
        client.befriendAll(users[0], [users[1], users[2]])
        let groupId = client.makeGroup(users[0], [users[1], users[2]])
        for viewer in users { XCTAssertEqual(look(viewer, groupId).members.count, 3, "as seen by \(viewer.userId)") }
        return (users[0], users[1], users[2], groupId)
    }

    // MARK: changes made in PostgreSQL directly: within moments

    func testChangesMadeInTheDatabaseShowWithinMoments() throws {
        let (a, b, c, groupId) = group("GmcSQL")
        let d = client.newAccounts(1, name: "GmcSQLd")[0]

        try StackDB.query(stack, "UPDATE group_members SET card = 'sql card' WHERE group_id = \(groupId) AND user_id = \(b.userId)")
        eventually(a, groupId, "a card set in SQL") { $0.line(of: b)?.contains(" sql card ") == true }

        try StackDB.query(stack, "UPDATE users SET nick_name = 'sqlnick' WHERE id = \(c.userId)")
        eventually(b, groupId, "a member's nickName set in SQL") { $0.line(of: c)?.contains(" sqlnick ") == true }

        try StackDB.query(stack, "INSERT INTO group_members (group_id, user_id) VALUES (\(groupId), \(d.userId))")
        eventually(a, groupId, "a member inserted in SQL") { $0.userIds == [a, b, c, d].map { String($0.userId) } }
        eventually(d, groupId, "the new member's own look") { $0.code == 1 && $0.members.count == 4 }

        try StackDB.query(stack, "DELETE FROM group_members WHERE group_id = \(groupId) AND user_id = \(c.userId)")
        eventually(a, groupId, "a member deleted in SQL") { $0.userIds == [a, b, d].map { String($0.userId) } }
        eventually(c, groupId, "the removed member's look") { $0.status == 403 }

        try StackDB.query(stack, "UPDATE groups SET owner_id = \(b.userId) WHERE id = \(groupId)")
        eventually(d, groupId, "an owner set in SQL") {
            $0.line(of: b)?.contains(" owner ") == true && $0.line(of: a)?.contains(" member ") == true
        }

        try StackDB.query(stack, "UPDATE groups SET dissolved_at = now() WHERE id = \(groupId)")
        eventually(b, groupId, "a group dissolved in SQL") { $0.status == 200 && $0.code == -1 }
    }

    // MARK: what ends is refused at once

    func testTheEndOfAMembershipAndOfTheGroupAreRefusedAtOnce() {
        let (a, b, c, groupId) = group("GmcEnd")
        assertOK(client.quitGroup(c, groupId))
        XCTAssertEqual(look(c, groupId).status, 403, "C left")
        XCTAssertEqual(look(a, groupId).userIds, [a, b].map { String($0.userId) })
        assertOK(client.quitGroup(a, groupId))
        XCTAssertEqual(look(a, groupId).status, 403, "A left")
        XCTAssertTrue(look(b, groupId).line(of: b)?.contains(" owner ") == true, "B owns the group now")
        assertOK(client.quitGroup(b, groupId))
        let last = look(b, groupId)
        XCTAssertEqual([last.status, last.code ?? 0], [200, -1], "the last one out dissolved the group: \(last)")
    }

    func testAnEndedSessionIsRefusedAtOnce() {
        let (a, _, _, groupId) = group("GmcSession")
        let login = client.login(mobile: a.mobile, password: a.password, device: 1)
        XCTAssertEqual(login.code, 1, login.text)
        XCTAssertEqual(look(a, groupId).status, 401, "the replaced token")
        let renewed = Account(mobile: a.mobile, password: a.password, userId: a.userId, token: login.dataObject["token"] as? String ?? "")
        XCTAssertEqual(look(renewed, groupId).members.count, 3)
    }
}
