import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// Every change another user sees is recorded, in the same transaction, as an event in that
/// user's stream (`user_events`), whose cursors run 1, 2, 3 … without gaps. The contract does
/// not name the event types, so these tests check that the affected user got new rows that
/// mention what changed (the other user's id, the group's id, the new name), read straight from
/// PostgreSQL.
final class SocialEventsTests: StackTestCase {
    typealias Account = StackClient.Account
    typealias Event = StackDB.Event

    override func setUpWithError() throws {
        try super.setUpWithError()
        _ = try StackDB.conninfo(stack)
    }

    func events(_ account: Account, file: StaticString = #filePath, line: UInt = #line) throws -> [Event] {
        try StackDB.events(stack, account.userId, file: file, line: line)
    }

    /// Runs `action` and returns the events each of `accounts` gained meanwhile.
    func newEvents(_ accounts: [Account], during action: () -> Void,
                   file: StaticString = #filePath, line: UInt = #line) throws -> [[Event]] {
        let ids = accounts.map(\.userId)
        let before = try StackDB.events(stack, ids, file: file, line: line)
        action()
        let after = try StackDB.events(stack, ids, file: file, line: line)
        return accounts.map { account in
            Array((after[account.userId] ?? []).dropFirst(before[account.userId]?.count ?? 0))
        }
    }

    /// The user's cursors are exactly 1…n.
    func assertGapless(_ accounts: [Account], file: StaticString = #filePath, line: UInt = #line) throws {
        let all = try StackDB.events(stack, accounts.map(\.userId), file: file, line: line)
        for account in accounts {
            let cursors = (all[account.userId] ?? []).map(\.cursor)
            XCTAssertEqual(cursors, cursors.isEmpty ? [] : Array(1...Int64(cursors.count)),
                           "user \(account.userId)'s cursors are 1…n without gaps", file: file, line: line)
        }
    }

    func assertSomeEvent(_ events: [Event], mentions ids: [Int64], text: String? = nil, _ what: String,
                         file: StaticString = #filePath, line: UInt = #line) {
        let found = events.contains { event in
            !event.type.isEmpty && ids.allSatisfy { event.mentions($0) } && (text.map { event.mentions(text: $0) } ?? true)
        }
        XCTAssertTrue(found, "\(what): expected an event mentioning \(ids)\(text.map { " and '\($0)'" } ?? ""); got \(events.map { "\($0.type) \($0.payloadText)" })",
                      file: file, line: line)
    }

    // MARK: friends

    func testAFriendRequestAndItsAcceptanceAreEvents() throws {
        let users = client.newAccounts(2, name: "EvReq")
        let (a, b) = (users[0], users[1])
        let arrived = try newEvents([a, b]) {
            assertReply(client.requestFriend(a, b.userId, message: "hello"), status: 200, code: 1)
        }
        assertSomeEvent(arrived[1], mentions: [a.userId], "B, when A's request arrives")

        let accepted = try newEvents([a, b]) { assertOK(client.acceptFriend(b, from: a.userId)) }
        assertSomeEvent(accepted[0], mentions: [b.userId], "A, when B accepts")
        try assertGapless([a, b])
    }

    func testAnImmediateFriendshipAndUnfriendingAreEvents() throws {
        let users = client.newAccounts(2, name: "EvNow")
        let (a, b) = (users[0], users[1])
        assertOK(client.call(b, "/chat/updatePrivateSetting", ["needAuth": "0"]))
        let befriended = try newEvents([a, b]) { assertReply(client.requestFriend(a, b.userId), status: 200, code: 2) }
        assertSomeEvent(befriended[1], mentions: [a.userId], "B, when A becomes a friend at once")

        let removed = try newEvents([a, b]) { assertOK(client.call(a, "/chat/delFriend", ["destId": String(b.userId)])) }
        assertSomeEvent(removed[1], mentions: [a.userId], "B, when A ends the friendship")
        try assertGapless([a, b])
    }

    func testCrossedRequestsAreOneFriendshipEventEach() throws {
        let users = client.newAccounts(2, name: "EvCross")
        let (a, b) = (users[0], users[1])
        assertReply(client.requestFriend(a, b.userId), status: 200, code: 1)
        let crossed = try newEvents([a, b]) { assertReply(client.requestFriend(b, a.userId), status: 200, code: 2) }
        assertSomeEvent(crossed[0], mentions: [b.userId], "A, when B's crossing request makes them friends")
        try assertGapless([a, b])
    }

    func testRefusedActionsRecordNothing() throws {
        let users = client.newAccounts(3, name: "EvNone")
        let (a, b, stranger) = (users[0], users[1], users[2])
        client.befriend(a, b)
        let groupId = client.makeGroup(a, [b])
        assertOK(client.call(b, "/chat/setBlock", ["blockId": String(stranger.userId)]))
        let nothing = try newEvents([a, b, stranger]) {
            assertReply(client.createGroup(a, ids: [b.userId, stranger.userId], name: "x"), status: 200, code: -1)
            assertReply(client.call(b, "/chat/updateGroup", ["groupId": String(groupId), "name": "y"]), status: 403, code: -1)
            assertReply(client.addMembers(a, groupId, [stranger.userId]), status: 200, code: -1)
            assertReply(client.requestFriend(stranger, b.userId), status: 200, code: -1)
            assertReply(client.requestFriend(a, b.userId), status: 200, code: -1)
        }
        XCTAssertEqual(nothing[0].map(\.type), [], "A: refused actions leave no event")
        XCTAssertEqual(nothing[1].map(\.type), [], "B: refused actions leave no event")
        XCTAssertEqual(nothing[2].map(\.type), [], "the stranger: refused actions leave no event")
        try assertGapless([a, b, stranger])
    }

    // MARK: groups

    func testJoiningLeavingRenamingAndOwnershipAreEventsForTheMembers() throws {
        let users = client.newAccounts(5, name: "EvGroup")
        let (a, b, c, d, e) = (users[0], users[1], users[2], users[3], users[4])
        client.befriendAll(a, [b, c, d])
        client.befriend(b, e)

        var groupId: Int64 = 0
        let created = try newEvents([a, b, c]) { groupId = client.makeGroup(a, [b, c]) }
        assertSomeEvent(created[1], mentions: [groupId], "B, put into a new group")
        assertSomeEvent(created[2], mentions: [groupId], "C, put into a new group")

        let added = try newEvents([a, b, c, d]) { assertOK(client.addMembers(a, groupId, [d.userId])) }
        assertSomeEvent(added[3], mentions: [groupId], "D, added to the group")
        assertSomeEvent(added[1], mentions: [groupId, d.userId], "B, when D is added")
        assertSomeEvent(added[2], mentions: [groupId, d.userId], "C, when D is added")

        let newName = "改名" + uniqueToken()
        let renamed = try newEvents([b, c, d]) {
            assertOK(client.call(a, "/chat/updateGroup", ["groupId": String(groupId), "name": newName]))
        }
        for (index, who) in ["B", "C", "D"].enumerated() {
            assertSomeEvent(renamed[index], mentions: [groupId], text: newName, "\(who), when the group is renamed")
        }

        let left = try newEvents([a, b, d]) { assertOK(client.quitGroup(c, groupId)) }
        for (index, who) in ["A", "B", "D"].enumerated() {
            assertSomeEvent(left[index], mentions: [groupId, c.userId], "\(who), when C leaves")
        }

        // The owner leaves: B, the longest-standing member, becomes the owner.
        let handedOver = try newEvents([b, d]) { assertOK(client.quitGroup(a, groupId)) }
        assertSomeEvent(handedOver[0], mentions: [groupId, a.userId], "B, when A leaves")
        assertSomeEvent(handedOver[1], mentions: [groupId, a.userId], "D, when A leaves")
        let ownerEvents = { (events: [Event]) in events.filter { $0.mentions(groupId) && $0.mentions(b.userId) } }
        XCTAssertFalse(ownerEvents(handedOver[0]).isEmpty, "B learns it is the owner now: \(handedOver[0].map(\.payloadText))")
        XCTAssertFalse(ownerEvents(handedOver[1]).isEmpty, "D learns that B owns the group: \(handedOver[1].map(\.payloadText))")

        // A join request reaches the (new) owner; its acceptance reaches the requester.
        let asked = try newEvents([b, e]) { assertReply(client.requestFriend(e, groupId, destType: 2), status: 200, code: 1) }
        assertSomeEvent(asked[0], mentions: [groupId, e.userId], "B (the owner), when E asks to join")
        let joined = try newEvents([b, d, e]) { assertOK(client.acceptJoin(b, requester: e.userId, groupId: groupId)) }
        assertSomeEvent(joined[2], mentions: [groupId], "E, when the owner accepts")
        assertSomeEvent(joined[1], mentions: [groupId, e.userId], "D, when E joins")

        try assertGapless([a, b, c, d, e])
    }

    func testJoiningWithoutApprovalIsAnEventForTheMembers() throws {
        let users = client.newAccounts(3, name: "EvOpen")
        let (a, b, joiner) = (users[0], users[1], users[2])
        client.befriend(a, b)
        let groupId = client.makeGroup(a, [b])
        assertOK(client.setNeedApproval(a, groupId, false))
        let joined = try newEvents([a, b]) { assertReply(client.requestFriend(joiner, groupId, destType: 2), status: 200, code: 2) }
        assertSomeEvent(joined[0], mentions: [groupId, joiner.userId], "the owner, when someone joins")
        assertSomeEvent(joined[1], mentions: [groupId, joiner.userId], "a member, when someone joins")
        try assertGapless([a, b, joiner])
    }

    /// The contract's rule, "every change another user sees is recorded as an event": a member's
    /// card is shown to the other members by getGroupMember.
    func testACardChangeIsAnEventForTheOtherMembers() throws {
        let users = client.newAccounts(2, name: "EvCard")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        let groupId = client.makeGroup(a, [b])
        let changed = try newEvents([a]) {
            assertOK(client.call(b, "/chat/updateGroupMemberMark", ["groupId": String(groupId), "name": "卡片"]))
        }
        assertSomeEvent(changed[0], mentions: [groupId, b.userId], "A, when B changes the card A sees in getGroupMember")
    }

    // MARK: gapless under concurrency

    func testCursorsStayGaplessUnderConcurrentEvents() throws {
        let hub = client.newAccount(name: "EvHub")
        let askers = client.newAccounts(16, name: "EvAsker")
        let replies = raceThreads(askers.count) { index in self.client.requestFriend(askers[index], hub.userId) }
        for reply in replies { assertReply(reply, status: 200, code: 1, "concurrent requests to one user") }
        let hubEvents = try events(hub)
        for asker in askers {
            XCTAssertEqual(hubEvents.filter { $0.mentions(asker.userId) }.count, 1, "one event per request, from \(asker.userId)")
        }
        // Accept them all at once too: each asker gets its event; the hub's stream stays gapless.
        let accepted = raceThreads(askers.count) { index in self.client.acceptFriend(hub, from: askers[index].userId) }
        for reply in accepted { assertOK(reply, "concurrent accepts") }
        // And a group with all of them, with concurrent departures.
        let groupId = client.makeGroup(hub, askers)
        let quits = raceThreads(askers.count) { index in self.client.quitGroup(askers[index], groupId) }
        for reply in quits { assertOK(reply, "concurrent quits") }
        try assertGapless([hub] + askers)
        let last = try StackDB.int(stack, "SELECT last_cursor FROM user_event_cursors WHERE user_id = \(hub.userId)")
        XCTAssertEqual(last, Int64(try events(hub).count), "the hub's last cursor is its number of events")
    }
}
