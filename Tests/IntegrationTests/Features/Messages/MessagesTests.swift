import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// Sending, history, read positions and `ready.unread` (API.md §5, §2): who may message whom,
/// the per-conversation gapless sequence, safe retries by `clientMsgId`, content limits, history
/// paging, group history from the time of joining.
final class MessagesTests: StackTestCase {
    typealias Account = StackClient.Account


    /// Two new accounts that are friends.
    func friends(_ name: String) -> (Account, Account) {
        let users = client.newAccounts(2, name: name)
        client.msgMakeFriends(users[0], users[1])
        return (users[0], users[1])
    }

    // MARK: sending between friends

    func testFriendsSendAndEachConversationCountsFromOne() throws {
        let users = client.newAccounts(3, name: "MsgSend")
        let (a, b, c) = (users[0], users[1], users[2])
        client.msgMakeFriends(a, b)
        client.msgMakeFriends(a, c)

        let before = msgWallMillis()
        let s1 = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "hello B"))
        let s2 = try XCTUnwrap(client.msgSend(b, to: a.userId, content: "hello A"))
        let s3 = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "how are you"))
        let after = msgWallMillis()
        XCTAssertEqual([s1.seq, s2.seq, s3.seq], [1, 2, 3], "one sequence for the pair, whoever sends")
        XCTAssertEqual(Set([s1.msgId, s2.msgId, s3.msgId]).count, 3, "every message has its own msgId")
        for sent in [s1, s2, s3] {
            XCTAssertGreaterThan(sent.msgId, 0)
            // The stack runs on this host: sendTime is "now" in ms since the epoch.
            XCTAssertTrue(sent.sendTime >= before - 2000 && sent.sendTime <= after + 2000,
                          "sendTime \(sent.sendTime) is not ms since the epoch around [\(before), \(after)]")
        }
        XCTAssertLessThanOrEqual(s1.sendTime, s2.sendTime)
        XCTAssertLessThanOrEqual(s2.sendTime, s3.sendTime)

        // Another conversation of A's has its own sequence.
        let other = try XCTUnwrap(client.msgSend(a, to: c.userId, content: "hi C"))
        XCTAssertEqual(other.seq, 1, "A↔C counts on its own")

        // History shows exactly these, oldest first, with every field, from both sides.
        for (viewer, peer) in [(a, b.userId), (b, a.userId)] {
            let history = client.msgHistory(viewer, peer)
            XCTAssertEqual(history.map(\.seq), [1, 2, 3], "history of \(viewer.userId) with \(peer)")
            XCTAssertEqual(history.map(\.msgId), [s1.msgId, s2.msgId, s3.msgId])
            XCTAssertEqual(history.map(\.content), ["hello B", "hello A", "how are you"])
            XCTAssertEqual(history.map(\.fromId), [a.userId, b.userId, a.userId])
            XCTAssertEqual(history.map(\.destId), [b.userId, a.userId, b.userId], "destId is the recipient")
            XCTAssertEqual(history.map(\.destType), [1, 1, 1])
            XCTAssertEqual(history.map(\.msgType), [1, 1, 1])
            XCTAssertEqual(history.map(\.sendTime), [s1.sendTime, s2.sendTime, s3.sendTime])
        }
        XCTAssertEqual(client.msgHistory(c, a.userId).map(\.msgId), [other.msgId])
    }

    func testOnlyFriendsMayMessageAndNeverThemselves() throws {
        let users = client.newAccounts(3, name: "MsgWho")
        let (a, b, stranger) = (users[0], users[1], users[2])
        client.msgMakeFriends(a, b)

        assertReply(client.msgSendReply(stranger, to: a.userId, content: "hi"), status: 200, code: -1, "a non-friend → -1")
        assertReply(client.msgSendReply(a, to: stranger.userId, content: "hi"), status: 200, code: -1, "to a non-friend → -1")
        assertReply(client.msgSendReply(a, to: a.userId, content: "note to self"), status: 200, code: -1, "yourself → -1")
        assertReply(client.msgSendReply(a, to: 9_000_000_000_000, content: "hi"), status: 200, code: -1, "no such user → -1")
        XCTAssertEqual(client.msgHistory(stranger, a.userId), [], "nothing was stored")

        // A request that is still pending is not a friendship.
        assertReply(client.call(stranger, "/chat/requestFriend", ["destId": String(a.userId), "destType": "1"]), status: 200, code: 1)
        assertReply(client.msgSendReply(stranger, to: a.userId, content: "hi"), status: 200, code: -1, "a pending request is not enough")

        // Ending the friendship ends messaging.
        XCTAssertNotNil(client.msgSend(a, to: b.userId, content: "while friends"))
        assertOK(client.call(b, "/chat/delFriend", ["destId": String(a.userId)]))
        assertReply(client.msgSendReply(a, to: b.userId, content: "after delFriend"), status: 200, code: -1, "after delFriend")
        assertReply(client.msgSendReply(b, to: a.userId, content: "after delFriend"), status: 200, code: -1, "after delFriend, other side")
    }

    func testABlockRefusesMessagesInBothDirections() throws {
        let (a, b) = friends("MsgBlock")
        let first = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "before the block"))
        XCTAssertEqual(first.seq, 1)

        assertOK(client.call(b, "/chat/setBlock", ["blockId": String(a.userId)]))
        assertReply(client.msgSendReply(a, to: b.userId, content: "blocked"), status: 200, code: -1, "the blocked user sends → -1")
        assertReply(client.msgSendReply(b, to: a.userId, content: "blocking"), status: 200, code: -1, "the blocker sends → -1")

        // A refused message leaves no trace and takes no number.
        assertOK(client.call(b, "/chat/removeBlack", ["destId": String(a.userId)]))
        let next = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "after the unblock"))
        XCTAssertEqual(next.seq, 2, "refused messages must not consume seq numbers")
        XCTAssertEqual(client.msgHistory(b, a.userId).map(\.content), ["before the block", "after the unblock"])
    }

    // MARK: groups

    func testGroupMembersSendAndNonMembersAreRefused() throws {
        let users = client.newAccounts(4, name: "MsgGrp")
        let (owner, m1, m2, outsider) = (users[0], users[1], users[2], users[3])
        client.msgMakeFriends(hub: owner, [m1, m2, outsider])
        let groupId = client.msgGroup(owner, [m1, m2])

        let g1 = try XCTUnwrap(client.msgSend(m1, to: groupId, destType: 2, content: "大家好"))
        let g2 = try XCTUnwrap(client.msgSend(owner, to: groupId, destType: 2, content: "welcome"))
        let g3 = try XCTUnwrap(client.msgSend(m2, to: groupId, destType: 2, content: "hi all"))
        XCTAssertEqual([g1.seq, g2.seq, g3.seq], [1, 2, 3], "one sequence per group")

        assertReply(client.msgSendReply(outsider, to: groupId, destType: 2, content: "let me in"), status: 200, code: -1,
                    "a non-member → -1")
        assertReply(client.msgSendReply(owner, to: 9_000_000_000_000, destType: 2, content: "x"), status: 200, code: -1,
                    "no such group → -1")

        for member in [owner, m1, m2] {
            let history = client.msgHistory(member, groupId, destType: 2)
            XCTAssertEqual(history.map(\.msgId), [g1.msgId, g2.msgId, g3.msgId], "member \(member.userId)")
            XCTAssertEqual(history.map(\.fromId), [m1.userId, owner.userId, m2.userId])
            XCTAssertEqual(history.map(\.destId), [groupId, groupId, groupId], "a group message's destId is the group")
            XCTAssertEqual(history.map(\.destType), [2, 2, 2])
        }
        let refused = client.msgHistoryReply(outsider, groupId, destType: 2)
        XCTAssertTrue((refused.status == 403 && refused.code == -1) || (refused.status == 200 && refused.code == -1),
                      "a non-member's group history: expected 403 or -1, got \(refused.status) \(refused.text.prefix(300))")
        XCTAssertFalse(refused.text.contains("大家好"), "a non-member must not see the messages")

        // Leaving the group ends sending; the sequence goes on for the others.
        assertOK(client.call(m2, "/chat/quitGroup", ["groupId": String(groupId)]))
        assertReply(client.msgSendReply(m2, to: groupId, destType: 2, content: "after leaving"), status: 200, code: -1,
                    "a former member → -1")
        XCTAssertEqual(client.msgSend(owner, to: groupId, destType: 2, content: "still here")?.seq, 4)
    }

    func testGroupHistoryStartsWhenTheMemberJoined() throws {
        let users = client.newAccounts(3, name: "MsgJoin")
        let (owner, early, late) = (users[0], users[1], users[2])
        client.msgMakeFriends(hub: owner, [early, late])
        let groupId = client.msgGroup(owner, [early])

        let b1 = try XCTUnwrap(client.msgSend(owner, to: groupId, destType: 2, content: "before 1"))
        let b2 = try XCTUnwrap(client.msgSend(early, to: groupId, destType: 2, content: "before 2"))
        Thread.sleep(forTimeInterval: 0.05) // join strictly after, even at ms resolution
        assertOK(client.call(owner, "/chat/addGroupMember", ["groupId": String(groupId), "inviteIds": String(late.userId)]))
        Thread.sleep(forTimeInterval: 0.05)
        let a1 = try XCTUnwrap(client.msgSend(owner, to: groupId, destType: 2, content: "after 1"))
        let a2 = try XCTUnwrap(client.msgSend(late, to: groupId, destType: 2, content: "after 2 (from the newcomer)"))
        XCTAssertEqual([b1.seq, b2.seq, a1.seq, a2.seq], [1, 2, 3, 4])

        let lateView = client.msgHistory(late, groupId, destType: 2)
        XCTAssertEqual(lateView.map(\.msgId), [a1.msgId, a2.msgId], "a later member sees only what came after joining")
        XCTAssertEqual(lateView.map(\.seq), [3, 4], "seqs are the conversation's, not renumbered per viewer")
        // Even when asking explicitly for older messages.
        XCTAssertEqual(client.msgHistory(late, groupId, destType: 2, sendTime: a1.sendTime, size: 100), [],
                       "paging back past the join time shows nothing older")
        XCTAssertEqual(client.msgHistory(early, groupId, destType: 2).map(\.msgId), [b1.msgId, b2.msgId, a1.msgId, a2.msgId])

        // The newcomer's unread counts only what they can see (from others): after 1.
        let unread = client.msgUnread(late)[MsgConversationKey(destId: groupId, destType: 2)]
        XCTAssertEqual(unread?.count, 1, "late member's unread for the group: \(String(describing: unread))")
        XCTAssertEqual(unread?.lastSeq, 4)
        // Their sync stream holds no message from before they joined.
        let events = client.msgDrain(late).events.filter(\.isMessage).compactMap(\.message)
        XCTAssertFalse(events.contains { $0.msgId == b1.msgId || $0.msgId == b2.msgId },
                       "sync delivered messages from before joining: \(events)")
        XCTAssertTrue(events.contains { $0.msgId == a1.msgId }, "sync must deliver what came after joining: \(events)")
    }

    /// Each worker remembers which conversation a session's history requests resolved to, to read
    /// the page in the same round trip as the access check: leaving, coming back, and a replaced
    /// session must all still be decided by the check. (Every read is repeated so that both
    /// workers have seen it.)
    func testHistoryAfterLeavingRejoiningAndAReplacedSessionFollowsTheCheck() throws {
        let users = client.newAccounts(2, name: "MsgHint")
        let (owner, member) = (users[0], users[1])
        client.msgMakeFriends(hub: owner, [member])
        let groupId = client.msgGroup(owner, [member])
        let first = try XCTUnwrap(client.msgSend(owner, to: groupId, destType: 2, content: "first stay"))
        for _ in 0..<4 {
            XCTAssertEqual(client.msgHistory(member, groupId, destType: 2).map(\.msgId), [first.msgId])
        }

        // Leave and come back without reading in between: the hints still name the first stay.
        assertOK(client.call(member, "/chat/quitGroup", ["groupId": String(groupId)]))
        let whileAway = try XCTUnwrap(client.msgSend(owner, to: groupId, destType: 2, content: "while away"))
        Thread.sleep(forTimeInterval: 0.05) // the new join time is strictly later, even in ms
        assertOK(client.call(owner, "/chat/addGroupMember", ["groupId": String(groupId), "inviteIds": String(member.userId)]))
        Thread.sleep(forTimeInterval: 0.05)
        let back = try XCTUnwrap(client.msgSend(owner, to: groupId, destType: 2, content: "welcome back"))
        for _ in 0..<4 {
            XCTAssertEqual(client.msgHistory(member, groupId, destType: 2).map(\.msgId), [back.msgId],
                           "after coming back, history starts at the new join time (not \(first.msgId), \(whileAway.msgId))")
        }
        assertOK(client.call(member, "/chat/quitGroup", ["groupId": String(groupId)]))
        for _ in 0..<4 {
            assertReply(client.msgHistoryReply(member, groupId, destType: 2), status: 403, code: -1, "a former member")
        }

        // A direct chat read through hints, then the session is replaced by a new login on the
        // same device: the old token gets 401, the new one the same page.
        let direct = try XCTUnwrap(client.msgSend(owner, to: member.userId, content: "direct"))
        for _ in 0..<4 { XCTAssertEqual(client.msgHistory(member, owner.userId).map(\.msgId), [direct.msgId]) }
        let login = client.login(mobile: member.mobile, password: member.password)
        let newToken = try XCTUnwrap(login.dataObject["token"] as? String)
        for _ in 0..<4 {
            assertReply(client.msgHistoryReply(member, owner.userId), status: 401, code: -1, "the replaced session")
            let renewed = StackClient.Account(mobile: member.mobile, password: member.password, userId: member.userId, token: newToken)
            XCTAssertEqual(client.msgHistory(renewed, owner.userId).map(\.msgId), [direct.msgId])
        }
    }


    func testARetryWithTheSameClientMsgIdReturnsTheFirstMessage() throws {
        let (a, b) = friends("MsgRetry")
        let clientId = msgClientId("retry")
        let first = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "first attempt", clientMsgId: clientId))
        let again = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "first attempt", clientMsgId: clientId))
        XCTAssertEqual(again, first, "a retry returns the first message: msgId, seq and sendTime")
        // Even when the retry's content differs (the first one is what was stored).
        let changed = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "edited retry", clientMsgId: clientId))
        XCTAssertEqual(changed, first)

        let history = client.msgHistory(b, a.userId)
        XCTAssertEqual(history.map(\.msgId), [first.msgId], "one message, not three")
        XCTAssertEqual(history.first?.content, "first attempt")

        // The retries took no numbers.
        let next = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "second", clientMsgId: msgClientId()))
        XCTAssertEqual(next.seq, first.seq + 1, "the next message gets the next number")
        XCTAssertNotEqual(next.msgId, first.msgId)

        // The same id from the other sender is a different message.
        let fromB = try XCTUnwrap(client.msgSend(b, to: a.userId, content: "B uses the same id", clientMsgId: clientId))
        XCTAssertNotEqual(fromB.msgId, first.msgId, "clientMsgId is per sender")
        XCTAssertEqual(fromB.seq, 3)

        // And the recipient's stream holds the first message once.
        let delivered = client.msgDrain(b).events.compactMap(\.message).filter { $0.msgId == first.msgId }
        XCTAssertEqual(delivered.count, 1, "the retried message is delivered exactly once")
    }

    // MARK: content

    func testContentLengthLimitsAndUnicodeRoundTrips() throws {
        let (a, b) = friends("MsgLen")
        let exactly = String(repeating: "a", count: 4000)
        let sentExact = try XCTUnwrap(client.msgSend(a, to: b.userId, content: exactly), "4,000 characters are allowed")
        assertReply(client.msgSendReply(a, to: b.userId, content: exactly + "a"), status: 400, code: -1, infoContains: "content",
                    "4,001 characters")
        // Characters, not bytes: 4,000 CJK characters (12,000 bytes) pass, 4,001 do not.
        let chinese = String(repeating: "汉", count: 4000)
        let sentChinese = try XCTUnwrap(client.msgSend(a, to: b.userId, content: chinese), "4,000 Chinese characters are allowed")
        assertReply(client.msgSendReply(a, to: b.userId, content: chinese + "字"), status: 400, code: -1, infoContains: "content",
                    "4,001 Chinese characters")
        // 4,000 emoji outside the BMP (16,000 bytes, 8,000 UTF-16 units) are 4,000 characters.
        let emoji = String(repeating: "😀", count: 4000)
        let sentEmoji = try XCTUnwrap(client.msgSend(a, to: b.userId, content: emoji), "4,000 emoji are allowed")

        let mixed = "你好，世界！🌏 Grüße 👋🏽 👨‍👩‍👧‍👦 🇨🇳 «ok» \"quoted\" & <tag> 100% a+b=c\nline two\ttab"
        let sentMixed = try XCTUnwrap(client.msgSend(a, to: b.userId, content: mixed))

        let history = client.msgHistory(b, a.userId)
        XCTAssertEqual(history.map(\.msgId), [sentExact.msgId, sentChinese.msgId, sentEmoji.msgId, sentMixed.msgId],
                       "the refused ones are not stored")
        XCTAssertEqual(history.map(\.seq), [1, 2, 3, 4], "refused ones take no numbers")
        XCTAssertEqual(history.count, 4)
        if history.count == 4 {
            XCTAssertEqual(history[0].content, exactly)
            XCTAssertEqual(history[1].content, chinese)
            XCTAssertEqual(history[2].content, emoji)
            XCTAssertEqual(history[3].content, mixed, "content comes back byte for byte")
        }
        // And through sync.
        let synced = client.msgDrain(b).events.compactMap(\.message).first { $0.msgId == sentMixed.msgId }
        XCTAssertEqual(synced?.content, mixed)
    }

    func testClientsSendTypes1To8AndNotTheServersTypes() throws {
        let (a, b) = friends("MsgType")
        var sent: [MsgSent] = []
        for type in 1...8 {
            if let message = client.msgSend(a, to: b.userId, content: "payload of type \(type)", msgType: type) { sent.append(message) }
        }
        XCTAssertEqual(sent.map(\.seq), Array(1...8))
        for type in [20, 21, 30, 0, 9, -1, 31] {
            assertReply(client.msgSendReply(a, to: b.userId, content: "forged type \(type)", msgType: type), status: 400, code: -1,
                        infoContains: "msgType", "msgType \(type) from a client")
        }
        let history = client.msgHistory(b, a.userId)
        XCTAssertEqual(history.map(\.msgType), Array(1...8), "only the client types were stored")
        XCTAssertEqual(client.msgSend(a, to: b.userId, content: "after the refusals")?.seq, 9)
    }

    // MARK: history

    func testHistoryIsOldestFirstHonoursSizeAndPagesBackwardsWithoutGapsOrOverlap() throws {
        let users = client.newAccounts(3, name: "MsgHist")
        let (a, b, unrelated) = (users[0], users[1], users[2])
        client.msgMakeFriends(a, b)
        client.msgMakeFriends(a, unrelated)
        var sent: [MsgSent] = []
        for index in 1...25 {
            let from = index % 3 == 0 ? b : a
            if let message = client.msgSend(from, to: from.userId == a.userId ? b.userId : a.userId, content: "m\(index)") {
                sent.append(message)
            }
        }
        XCTAssertEqual(sent.map(\.seq), Array(1...25))

        // Default size 20: the newest 20, oldest first.
        let latest = client.msgHistory(a, b.userId)
        XCTAssertEqual(latest.map(\.seq), Array(6...25), "default page: the 20 newest, oldest first")
        XCTAssertEqual(client.msgHistory(a, b.userId, size: 1).map(\.seq), [25], "size 1")
        XCTAssertEqual(client.msgHistory(a, b.userId, size: 100).map(\.seq), Array(1...25), "size 100 (all 25)")
        XCTAssertEqual(client.msgHistory(a, b.userId, size: 7).map(\.seq), Array(19...25), "size 7")

        // Paging backwards with the oldest sendTime of the page before.
        var pages: [[Int64]] = []
        var before: Int64? = nil
        for _ in 0..<10 {
            let page = client.msgHistory(b, a.userId, sendTime: before, size: 7)
            if page.isEmpty { break }
            pages.append(page.map(\.seq))
            before = page.first?.sendTime
        }
        XCTAssertEqual(pages, [Array(19...25), Array(12...18), Array(5...11), Array(1...4)],
                       "pages of 7 going back: no overlap, no gap")
        // sendTime is exclusive: asking before message 10's time starts at message 9.
        XCTAssertEqual(client.msgHistory(a, b.userId, sendTime: sent[9].sendTime, size: 3).map(\.seq), [7, 8, 9])
        XCTAssertEqual(client.msgHistory(a, b.userId, sendTime: sent[0].sendTime, size: 100), [], "nothing before the first")
        XCTAssertEqual(client.msgHistory(a, b.userId, sendTime: 1, size: 100), [])

        // Someone else sees nothing of A↔B: their own conversation with A or B is empty.
        XCTAssertEqual(client.msgHistory(unrelated, a.userId), [], "an unrelated user (a friend of A) sees no A↔B messages")
        XCTAssertEqual(client.msgHistory(unrelated, b.userId), [], "an unrelated user (not even a friend) gets an empty list")
    }

    // MARK: read positions and unread

    func testMarkReadAndReadyUnread() throws {
        let (a, b) = friends("MsgRead")
        let keyB = MsgConversationKey(destId: b.userId, destType: 1)
        let keyA = MsgConversationKey(destId: a.userId, destType: 1)
        XCTAssertNil(client.msgUnread(a)[keyB], "nothing sent yet")

        client.msgSend(b, to: a.userId, content: "1")
        client.msgSend(b, to: a.userId, content: "2")
        client.msgSend(a, to: b.userId, content: "3 (A's own)")
        client.msgSend(b, to: a.userId, content: "4")

        var unreadA = client.msgUnread(a)
        XCTAssertEqual(unreadA[keyB]?.count, 3, "three from B (A's own message does not count): \(String(describing: unreadA[keyB]))")
        XCTAssertEqual(unreadA[keyB]?.lastSeq, 4)
        var unreadB = client.msgUnread(b)
        XCTAssertEqual(unreadB[keyA]?.count, 1, "one from A: \(String(describing: unreadB[keyA]))")
        XCTAssertEqual(unreadB[keyA]?.lastSeq, 4)

        assertOK(client.msgMarkRead(a, b.userId, seq: 2))
        unreadA = client.msgUnread(a)
        XCTAssertEqual(unreadA[keyB]?.count, 1, "after reading up to 2: only 4 is unread (3 is A's own)")
        XCTAssertEqual(unreadA[keyB]?.lastSeq, 4)

        // Never backwards.
        assertOK(client.msgMarkRead(a, b.userId, seq: 1))
        XCTAssertEqual(client.msgUnread(a)[keyB]?.count, 1, "markRead to an older seq must not move the position back")
        assertOK(client.msgMarkRead(a, b.userId, seq: 0))
        XCTAssertEqual(client.msgUnread(a)[keyB]?.count, 1, "markRead 0 must not move the position back")

        // Up to the last: the entry goes away.
        assertOK(client.msgMarkRead(a, b.userId, seq: 4))
        XCTAssertNil(client.msgUnread(a)[keyB], "all read: no unread entry")
        // B's own read position is separate.
        XCTAssertEqual(client.msgUnread(b)[keyA]?.count, 1)

        // A new message brings it back with count 1 and the new lastSeq.
        client.msgSend(b, to: a.userId, content: "5")
        unreadA = client.msgUnread(a)
        XCTAssertEqual(unreadA[keyB]?.count, 1)
        XCTAssertEqual(unreadA[keyB]?.lastSeq, 5)
        assertOK(client.msgMarkRead(a, b.userId, seq: 3))
        XCTAssertEqual(client.msgUnread(a)[keyB]?.count, 1, "going back to 3 after 4 changes nothing")
        assertOK(client.msgMarkRead(a, b.userId, seq: 5))
        XCTAssertNil(client.msgUnread(a)[keyB])
        unreadB = client.msgUnread(b)
        XCTAssertEqual(unreadB[keyA]?.count, 1, "B still has A's message 3 unread")
    }

    func testGroupUnreadCountsOthersMessagesPerMember() throws {
        let users = client.newAccounts(3, name: "MsgGUnread")
        let (owner, m1, m2) = (users[0], users[1], users[2])
        client.msgMakeFriends(hub: owner, [m1, m2])
        let groupId = client.msgGroup(owner, [m1, m2])
        let key = MsgConversationKey(destId: groupId, destType: 2)
        client.msgSend(m1, to: groupId, destType: 2, content: "1")
        client.msgSend(m1, to: groupId, destType: 2, content: "2")
        client.msgSend(m2, to: groupId, destType: 2, content: "3")

        XCTAssertEqual(client.msgUnread(owner)[key]?.count, 3)
        XCTAssertEqual(client.msgUnread(owner)[key]?.lastSeq, 3)
        XCTAssertEqual(client.msgUnread(m1)[key]?.count, 1, "m1's own two do not count")
        XCTAssertEqual(client.msgUnread(m2)[key]?.count, 2)

        assertOK(client.msgMarkRead(owner, groupId, destType: 2, seq: 2))
        XCTAssertEqual(client.msgUnread(owner)[key]?.count, 1)
        assertOK(client.msgMarkRead(m1, groupId, destType: 2, seq: 3))
        XCTAssertNil(client.msgUnread(m1)[key])
        XCTAssertEqual(client.msgUnread(m2)[key]?.count, 2, "one member's read position is theirs alone")

        // Not a member: no read position to store.
        let outsider = client.newAccounts(1, name: "MsgGUnreadX")[0]
        let refused = client.msgMarkRead(outsider, groupId, destType: 2, seq: 1)
        XCTAssertTrue((refused.status == 403 || refused.status == 200) && refused.code == -1,
                      "markRead on a group you are not in: expected 403 or -1, got \(refused.status) \(refused.text.prefix(200))")
    }
}
