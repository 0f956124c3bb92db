import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// Repeated requests, text that escapes badly by grapheme, and groups whose owner row is gone.
final class RequestAndGroupEdgeTests: StackTestCase {

    func friendRequestEvents(_ account: StackClient.Account, from: Int64, groupId: Int64? = nil) -> [MsgSyncEvent] {
        client.msgDrain(account).events.filter { event in
            guard event.type == "friend_request", int64(event.data?["fromId"]) == from else { return false }
            return groupId == nil || int64(event.data?["groupId"]) == groupId
        }
    }

    func testRepeatedFriendRequestsWhilePendingMakeOneEvent() {
        let alice = client.newAccount(name: "Asker")
        let bob = client.newAccount(name: "Asked")  // needAuth is 1 by default: requests wait
        var requestIds = Set<Int64>()
        for index in 0..<4 {
            let reply = client.requestFriend(alice, bob.userId, message: "hi \(index)")
            assertReply(reply, status: 200, code: 1)
            if let id = int64(reply.dataObject["requestId"]) { requestIds.insert(id) }
        }
        XCTAssertEqual(requestIds.count, 1, "one pending request, updated")
        let events = friendRequestEvents(bob, from: alice.userId)
        XCTAssertEqual(events.count, 1, "one friend_request event for four requests: \(events)")
        // The request shows the latest message.
        let requests = client.readyView(bob).requests(from: alice.userId)
        XCTAssertEqual(requests.count, 1)
        XCTAssertEqual(requests.first?["message"] as? String, "hi 3")
    }

    func testRepeatedJoinRequestsWhilePendingMakeOneEvent() {
        let owner = client.newAccount(name: "Owner")
        let member = client.newAccount(name: "Member")
        client.befriend(owner, member)
        let groupId = client.makeGroup(owner, [member])
        let stranger = client.newAccount(name: "Joiner")
        for index in 0..<4 {
            assertReply(client.requestFriend(stranger, groupId, destType: 2, message: "let me in \(index)"), status: 200, code: 1)
        }
        let events = friendRequestEvents(owner, from: stranger.userId, groupId: groupId)
        XCTAssertEqual(events.count, 1, "one join request event for four requests: \(events)")
    }

    // MARK: escaping by scalar

    func testACombiningMarkAfterAQuoteOrPercentIsNoFault() {
        let alice = client.newAccount(name: "Mark")
        let bob = client.newAccount(name: "Marked")
        // The event's JSON holds `"` followed by U+0301: one grapheme in Swift, two scalars in PostgreSQL.
        for message in ["\u{301}hi", "\"\u{301}", "\\\u{301}x"] {
            let reply = client.requestFriend(alice, bob.userId, message: message)
            assertReply(reply, status: 200, code: 1, "message \(message.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        assertOK(client.acceptFriend(bob, from: alice.userId))
        for name in ["\u{301}x", "%\u{301}x", "_\u{301}y\"\u{301}"] {
            let reply = client.createGroup(alice, ids: [bob.userId], name: name)
            assertReply(reply, status: 200, code: 1, "group name \(name.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        for text in ["%\u{301}x", "\u{301}x", "ab%\u{301}", "_\u{301}y\"\u{301}"] {
            let reply = client.call(alice, "/chat/queryGroup", ["groupName": text])
            assertReply(reply, status: 200, code: 1, "queryGroup \(text.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }

    // MARK: a group whose owner row is gone

    func testAGroupWhoseOwnerRowIsGoneHandsOverOrEnds() throws {
        let accounts = client.newAccounts(4, name: "Orphan")
        let (owner, b, c, d) = (accounts[0], accounts[1], accounts[2], accounts[3])
        client.befriendAll(owner, [b, c])
        let groupId = client.makeGroup(owner, [b, c])
        try StackDB.query(stack, "DELETE FROM group_members WHERE group_id = \(groupId) AND user_id = \(owner.userId)")

        // c leaves: the longest-standing member left (b) becomes owner.
        assertReply(client.call(c, "/chat/quitGroup", ["groupId": String(groupId)]), status: 200, code: 1)
        let group = client.call(b, "/chat/getGroupById", ["groupId": String(groupId)])
        assertOK(group)
        XCTAssertEqual(int64(group.dataObject["ownerId"]), b.userId, group.text)
        XCTAssertEqual(int64(group.dataObject["memberCount"]), 1, group.text)
        XCTAssertTrue(client.msgDrain(b).events.contains { $0.type == "group_owner_changed" && $0.dataMentions(b.userId) })

        // d asks to join: the request goes to the new owner, who can let d in.
        assertReply(client.requestFriend(d, groupId, destType: 2), status: 200, code: 1)
        XCTAssertEqual(friendRequestEventsCount(b, from: d.userId), 1)
        assertOK(client.acceptJoin(b, requester: d.userId, groupId: groupId))
        let counts = try StackDB.groupCounts(stack, groupId)
        XCTAssertEqual(counts?.memberCount, 2)
        XCTAssertEqual(counts?.real, 2)

        // Every member row gone: the group has ended, and joining or leaving says so.
        try StackDB.query(stack, "DELETE FROM group_members WHERE group_id = \(groupId)")
        assertReply(client.requestFriend(owner, groupId, destType: 2), status: 200, code: -1)
        assertReply(client.call(b, "/chat/quitGroup", ["groupId": String(groupId)]), status: 200, code: -1)
        XCTAssertEqual(try StackDB.groupCounts(stack, groupId)?.dissolved, true)
    }

    func friendRequestEventsCount(_ account: StackClient.Account, from: Int64) -> Int {
        friendRequestEvents(account, from: from).count
    }
}
