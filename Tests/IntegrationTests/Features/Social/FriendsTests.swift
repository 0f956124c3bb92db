import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// API.md §3 over HTTP: friend requests and their outcomes, accepting, unfriending, remarks,
/// blocks, muted and pinned conversations, and what `ready` / `getUserById` / `queryUser` show.
final class FriendsTests: StackTestCase {
    typealias Account = StackClient.Account


    static let friendKeys = ["userId", "mobile", "name", "nickName", "headUrl", "sex", "sign", "province", "city",
                             "isAuth", "remark", "friendGroupId"]

    // MARK: requestFriend

    func testARequestWaitsForApprovalByDefaultAndReachesTheTargetsReady() {
        let users = client.newAccounts(2, name: "Req")
        let (a, b) = (users[0], users[1])
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let asked = client.requestFriend(a, b.userId, message: "你好, it's A")
        assertReply(asked, status: 200, code: 1, "requestFriend with needAuth 1 (the default)")

        let bReady = client.readyView(b)
        let requests = bReady.requests(from: a.userId)
        XCTAssertEqual(requests.count, 1, "B's ready.requests: \(bReady.requests)")
        if let request = requests.first {
            XCTAssertNotNil(int64(request["requestId"]), "requestId: \(request)")
            XCTAssertEqual(int64(request["destType"]), 1)
            XCTAssertTrue(request["groupId"] == nil || request["groupId"] is NSNull, "a user request has no groupId: \(request)")
            XCTAssertEqual(request["message"] as? String, "你好, it's A")
            let createTime = int64(request["createTime"]) ?? 0
            XCTAssertTrue(createTime >= before - 60_000 && createTime <= before + 60_000,
                          "createTime \(createTime) is milliseconds since the epoch, near \(before)")
            let from = request["from"] as? [String: Any] ?? [:]
            XCTAssertEqual(int64(from["userId"]), a.userId, "from is A's Profile: \(from)")
            XCTAssertEqual(from["name"] as? String, "Req0")
            XCTAssertTrue(isMasked(from["mobile"] as? String, of: a.mobile),
                          "a stranger's mobile is masked in a request: \(from["mobile"] ?? "nil")")
        }
        // The request is not addressed to A, and nobody is friends yet.
        let aReady = client.readyView(a)
        XCTAssertTrue(aReady.requests.isEmpty, "A's own request is not in A's ready.requests: \(aReady.requests)")
        XCTAssertNil(aReady.friend(b.userId))
        XCTAssertNil(bReady.friend(a.userId))
        XCTAssertEqual(jsonBoolean(client.userById(a, b.userId), key: "isFriend"), false)

        // Asking again does not create a second pending request.
        assertReply(client.requestFriend(a, b.userId, message: "again"), status: 200, code: 1, "asking twice")
        XCTAssertEqual(client.readyView(b).requests(from: a.userId).count, 1, "one pending request per pair")
    }

    func testNeedAuthZeroMakesFriendsAtOnce() {
        let users = client.newAccounts(2, name: "Open")
        let (a, b) = (users[0], users[1])
        assertOK(client.call(b, "/chat/updatePrivateSetting", ["needAuth": "0"]))
        assertReply(client.requestFriend(a, b.userId), status: 200, code: 2, "target has needAuth 0")
        let aReady = client.readyView(a), bReady = client.readyView(b)
        XCTAssertNotNil(aReady.friend(b.userId), "A sees B: \(aReady.friends)")
        XCTAssertNotNil(bReady.friend(a.userId), "B sees A: \(bReady.friends)")
        XCTAssertTrue(bReady.requests(from: a.userId).isEmpty, "nothing left pending: \(bReady.requests)")
        XCTAssertEqual(jsonBoolean(client.userById(b, a.userId), key: "isFriend"), true)
    }

    func testAskingSomeoneWhoAlreadyAskedYouMakesFriends() {
        let users = client.newAccounts(2, name: "Cross")
        let (a, b) = (users[0], users[1])
        assertReply(client.requestFriend(a, b.userId), status: 200, code: 1)
        assertReply(client.requestFriend(b, a.userId), status: 200, code: 2, "B asks A, who had already asked B")
        let aReady = client.readyView(a), bReady = client.readyView(b)
        XCTAssertEqual(aReady.friendIds, [b.userId])
        XCTAssertEqual(bReady.friendIds, [a.userId])
        XCTAssertTrue(aReady.requests.isEmpty, "no pending request left for A: \(aReady.requests)")
        XCTAssertTrue(bReady.requests.isEmpty, "no pending request left for B: \(bReady.requests)")
        assertReply(client.acceptFriend(b, from: a.userId), status: 200, code: -1, "the request is settled")
        assertReply(client.acceptFriend(a, from: b.userId), status: 200, code: -1, "and so is the other way")
    }

    func testRequestFriendRefusals() {
        let users = client.newAccounts(3, name: "Refuse")
        let (a, b, c) = (users[0], users[1], users[2])
        assertReply(client.requestFriend(a, a.userId), status: 200, code: -1, "asking yourself")
        assertReply(client.requestFriend(a, 9_000_000_000_000_000), status: 200, code: -1, "no such user")
        XCTAssertTrue(client.readyView(a).requests.isEmpty)

        client.befriend(a, b)
        assertReply(client.requestFriend(a, b.userId), status: 200, code: -1, "already friends")
        assertReply(client.requestFriend(b, a.userId), status: 200, code: -1, "already friends, the other way")
        XCTAssertTrue(client.readyView(b).requests.isEmpty, "no new pending request between friends")

        // C blocks A: A's request is refused and nothing reaches C.
        assertOK(client.call(c, "/chat/setBlock", ["blockId": String(a.userId)]))
        assertReply(client.requestFriend(a, c.userId), status: 200, code: -1, "the target blocks you")
        XCTAssertTrue(client.readyView(c).requests(from: a.userId).isEmpty, "a blocked user's request never arrives")
        // Even when C accepts everyone at once.
        assertOK(client.call(c, "/chat/updatePrivateSetting", ["needAuth": "0"]))
        assertReply(client.requestFriend(a, c.userId), status: 200, code: -1, "the target blocks you (needAuth 0)")
        XCTAssertNil(client.readyView(c).friend(a.userId))
    }

    // MARK: acceptRequest

    func testAcceptRequestOnlyForRequestsAddressedToYouAndFriendshipIsMutual() {
        let users = client.newAccounts(3, name: "Acc")
        let (a, b, c) = (users[0], users[1], users[2])
        assertReply(client.acceptFriend(b, from: a.userId), status: 200, code: -1, "nothing pending yet")
        assertReply(client.requestFriend(a, b.userId), status: 200, code: 1)

        assertReply(client.acceptFriend(c, from: a.userId), status: 200, code: -1, "C accepts A's request to B")
        assertReply(client.acceptFriend(a, from: b.userId), status: 200, code: -1, "A accepts its own request")
        assertReply(client.acceptFriend(b, from: c.userId), status: 200, code: -1, "C never asked B")
        XCTAssertNil(client.readyView(c).friend(a.userId), "C did not become A's friend")

        assertOK(client.acceptFriend(b, from: a.userId, friendGroupId: 7), "B accepts into friend group 7")
        assertReply(client.acceptFriend(b, from: a.userId), status: 200, code: -1, "already accepted")

        let aReady = client.readyView(a), bReady = client.readyView(b)
        guard let aSeenByB = bReady.friend(a.userId), let bSeenByA = aReady.friend(b.userId) else {
            return XCTFail("friendship is mutual: A's friends \(aReady.friendIds), B's friends \(bReady.friendIds)")
        }
        for key in FriendsTests.friendKeys {
            XCTAssertNotNil(aSeenByB[key], "Friend has \(key): \(aSeenByB)")
            XCTAssertNotNil(bSeenByA[key], "Friend has \(key): \(bSeenByA)")
        }
        XCTAssertEqual(aSeenByB["mobile"] as? String, a.mobile, "a friend's full mobile")
        XCTAssertEqual(bSeenByA["mobile"] as? String, b.mobile, "a friend's full mobile")
        XCTAssertEqual(int64(aSeenByB["friendGroupId"]), 7, "the acceptor's friendGroupId")
        XCTAssertEqual(int64(bSeenByA["friendGroupId"]), 0, "the requester's side: the default friend group")
        XCTAssertEqual(aSeenByB["remark"] as? String, "")
        XCTAssertEqual(aSeenByB["name"] as? String, "Acc0")
        XCTAssertTrue(bReady.requests.isEmpty, "the accepted request is no longer pending: \(bReady.requests)")
        XCTAssertEqual(jsonBoolean(client.userById(a, b.userId), key: "isFriend"), true)
        XCTAssertEqual(jsonBoolean(client.userById(b, a.userId), key: "isFriend"), true)
    }

    // MARK: delFriend

    func testDelFriendEndsItForBothSides() {
        let users = client.newAccounts(2, name: "Del")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        assertOK(client.call(a, "/chat/delFriend", ["destId": String(b.userId)]))
        XCTAssertNil(client.readyView(a).friend(b.userId), "A no longer has B")
        XCTAssertNil(client.readyView(b).friend(a.userId), "B no longer has A")
        let bSeenByA = client.userById(a, b.userId)
        XCTAssertEqual(jsonBoolean(bSeenByA, key: "isFriend"), false)
        XCTAssertTrue(isMasked((bSeenByA.dataObject["user"] as? [String: Any])?["mobile"] as? String, of: b.mobile),
                      "masked again: \(bSeenByA.text)")
        XCTAssertEqual(jsonBoolean(client.userById(b, a.userId), key: "isFriend"), false)
        // They can become friends again through a new request.
        assertReply(client.requestFriend(b, a.userId), status: 200, code: 1, "a new request after unfriending")
    }

    // MARK: updateRemark

    func testUpdateRemarkOnlyForFriendsAndVisibleOnlyToYou() {
        let users = client.newAccounts(3, name: "Remark")
        let (a, b, c) = (users[0], users[1], users[2])
        assertReply(client.call(a, "/chat/updateRemark", ["destId": String(c.userId), "remark": "stranger"]),
                    status: 200, code: -1, "a remark for someone who is not your friend")
        XCTAssertEqual(client.userById(a, c.userId).dataObject["remark"] as? String, "")

        client.befriend(a, b)
        assertOK(client.call(a, "/chat/updateRemark", ["destId": String(b.userId), "remark": "老王 🍜"]))
        XCTAssertEqual(client.readyView(a).friend(b.userId)?["remark"] as? String, "老王 🍜")
        XCTAssertEqual(client.userById(a, b.userId).dataObject["remark"] as? String, "老王 🍜")
        // B's side is B's own.
        XCTAssertEqual(client.readyView(b).friend(a.userId)?["remark"] as? String, "")
        XCTAssertEqual(client.userById(b, a.userId).dataObject["remark"] as? String, "")
        // 32 characters is the limit, and an empty remark clears it.
        let longest = String(repeating: "备", count: 32)
        assertOK(client.call(a, "/chat/updateRemark", ["destId": String(b.userId), "remark": longest]))
        XCTAssertEqual(client.readyView(a).friend(b.userId)?["remark"] as? String, longest)
        assertOK(client.call(a, "/chat/updateRemark", ["destId": String(b.userId), "remark": ""]))
        XCTAssertEqual(client.readyView(a).friend(b.userId)?["remark"] as? String, "")
    }

    // MARK: blocks

    func testSetBlockAndRemoveBlack() {
        let users = client.newAccounts(2, name: "Block")
        let (a, b) = (users[0], users[1])
        assertOK(client.call(a, "/chat/setBlock", ["blockId": String(b.userId)]))
        XCTAssertEqual(client.readyView(a).blocks, [b.userId], "ready.blocks")
        XCTAssertEqual(client.readyView(b).blocks, [], "B blocks nobody")
        XCTAssertEqual(jsonBoolean(client.userById(a, b.userId), key: "blocked"), true, "A blocks B")
        XCTAssertEqual(jsonBoolean(client.userById(b, a.userId), key: "blocked"), false, "B does not block A")
        assertReply(client.requestFriend(b, a.userId), status: 200, code: -1, "a blocked user's request")
        XCTAssertTrue(client.readyView(a).requests.isEmpty)
        assertOK(client.call(a, "/chat/setBlock", ["blockId": String(b.userId)]), "blocking twice")
        XCTAssertEqual(client.readyView(a).blocks, [b.userId], "still one entry")

        assertOK(client.call(a, "/chat/removeBlack", ["destId": String(b.userId)]))
        XCTAssertEqual(client.readyView(a).blocks, [])
        XCTAssertEqual(jsonBoolean(client.userById(a, b.userId), key: "blocked"), false)
        assertReply(client.requestFriend(b, a.userId), status: 200, code: 1, "unblocked: the request waits again")
        XCTAssertEqual(client.readyView(a).requests(from: b.userId).count, 1)
    }

    func testBlockingDoesNotUnfriend() {
        let users = client.newAccounts(2, name: "BlockFriend")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        assertOK(client.call(a, "/chat/setBlock", ["blockId": String(b.userId)]))
        XCTAssertNotNil(client.readyView(a).friend(b.userId), "A still has B")
        XCTAssertNotNil(client.readyView(b).friend(a.userId), "B still has A")
        let view = client.userById(a, b.userId)
        XCTAssertEqual(jsonBoolean(view, key: "isFriend"), true)
        XCTAssertEqual(jsonBoolean(view, key: "blocked"), true)
        XCTAssertEqual((view.dataObject["user"] as? [String: Any])?["mobile"] as? String, b.mobile, "still a friend: full mobile")
    }

    func testBlockingWithdrawsTheirPendingRequest() {
        let users = client.newAccounts(2, name: "Withdraw")
        let (a, b) = (users[0], users[1])
        assertReply(client.requestFriend(b, a.userId), status: 200, code: 1)
        XCTAssertEqual(client.readyView(a).requests(from: b.userId).count, 1)
        assertOK(client.call(a, "/chat/setBlock", ["blockId": String(b.userId)]))
        XCTAssertTrue(client.readyView(a).requests(from: b.userId).isEmpty, "the blocked user's request is withdrawn")
        assertReply(client.acceptFriend(a, from: b.userId), status: 200, code: -1, "nothing left to accept")
        XCTAssertNil(client.readyView(a).friend(b.userId))
        XCTAssertNil(client.readyView(b).friend(a.userId))
    }

    // MARK: setIgonre, setTop, cancelTop

    func testSetIgonreMutesAndUnmutes() {
        let users = client.newAccounts(2, name: "Mute")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        let groupId = client.makeGroup(a, [b])
        assertOK(client.call(a, "/chat/setIgonre", ["destId": String(b.userId), "destType": "1", "receiveTip": "0"]))
        assertOK(client.call(a, "/chat/setIgonre", ["destId": String(groupId), "destType": "2", "receiveTip": "0"]))
        let ignores = client.readyView(a).ignores
        XCTAssertEqual(Set(ignores.map(\.description)),
                       Set([ReadyView.Conversation(destId: b.userId, destType: 1), ReadyView.Conversation(destId: groupId, destType: 2)]
                        .map(\.description)), "ready.ignores")
        XCTAssertEqual(ignores.count, 2)
        XCTAssertTrue(client.readyView(b).ignores.isEmpty, "B's settings are B's own")
        XCTAssertTrue(client.readyView(a).tops.isEmpty, "muting does not pin")

        assertOK(client.call(a, "/chat/setIgonre", ["destId": String(b.userId), "destType": "1", "receiveTip": "1"]))
        XCTAssertEqual(client.readyView(a).ignores, [ReadyView.Conversation(destId: groupId, destType: 2)])
        assertOK(client.call(a, "/chat/setIgonre", ["destId": String(groupId), "destType": "2", "receiveTip": "1"]))
        XCTAssertEqual(client.readyView(a).ignores, [])
    }

    func testSetTopAndCancelTop() {
        let users = client.newAccounts(2, name: "Pin")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        let groupId = client.makeGroup(a, [b])
        assertOK(client.call(a, "/chat/setTop", ["destId": String(b.userId), "destType": "1"]))
        assertOK(client.call(a, "/chat/setTop", ["destId": String(groupId), "destType": "2"]))
        let tops = client.readyView(a).tops
        XCTAssertEqual(tops.count, 2, "ready.tops: \(tops)")
        XCTAssertTrue(tops.contains(ReadyView.Conversation(destId: b.userId, destType: 1)))
        XCTAssertTrue(tops.contains(ReadyView.Conversation(destId: groupId, destType: 2)))
        XCTAssertTrue(client.readyView(a).ignores.isEmpty, "pinning does not mute")
        XCTAssertTrue(client.readyView(b).tops.isEmpty)

        assertOK(client.call(a, "/chat/cancelTop", ["destId": String(b.userId), "destType": "1"]))
        XCTAssertEqual(client.readyView(a).tops, [ReadyView.Conversation(destId: groupId, destType: 2)])
        assertOK(client.call(a, "/chat/cancelTop", ["destId": String(groupId), "destType": "2"]))
        XCTAssertEqual(client.readyView(a).tops, [])
        // Muting and pinning are independent: mute, pin, unpin → still muted.
        assertOK(client.call(a, "/chat/setIgonre", ["destId": String(b.userId), "destType": "1", "receiveTip": "0"]))
        assertOK(client.call(a, "/chat/setTop", ["destId": String(b.userId), "destType": "1"]))
        assertOK(client.call(a, "/chat/cancelTop", ["destId": String(b.userId), "destType": "1"]))
        XCTAssertEqual(client.readyView(a).ignores, [ReadyView.Conversation(destId: b.userId, destType: 1)])
        XCTAssertEqual(client.readyView(a).tops, [])
    }

    // MARK: who sees the full mobile

    func testTheFullMobileOnlyForFriends() {
        let users = client.newAccounts(2, name: "Mobile")
        let (a, b) = (users[0], users[1])
        func seen(_ reply: Reply) -> String? { (reply.dataObject["user"] as? [String: Any])?["mobile"] as? String }
        func queried(_ reply: Reply) -> String? { reply.dataObject["mobile"] as? String }

        XCTAssertTrue(isMasked(seen(client.userById(a, b.userId)), of: b.mobile), "getUserById of a stranger")
        XCTAssertTrue(isMasked(queried(client.call(a, "/chat/queryUser", ["mobile": b.mobile])), of: b.mobile),
                      "queryUser of a stranger")
        XCTAssertEqual(seen(client.userById(a, a.userId)), a.mobile, "yourself")

        assertReply(client.requestFriend(a, b.userId), status: 200, code: 1)
        XCTAssertTrue(isMasked(seen(client.userById(b, a.userId)), of: a.mobile), "a pending request reveals nothing")

        assertOK(client.acceptFriend(b, from: a.userId))
        XCTAssertEqual(seen(client.userById(a, b.userId)), b.mobile, "getUserById of a friend")
        XCTAssertEqual(seen(client.userById(b, a.userId)), a.mobile, "getUserById of a friend, the other way")
        XCTAssertEqual(queried(client.call(a, "/chat/queryUser", ["mobile": b.mobile])), b.mobile, "queryUser of a friend")
        XCTAssertEqual(queried(client.call(b, "/chat/queryUser", ["mobile": a.mobile])), a.mobile)

        assertOK(client.call(b, "/chat/delFriend", ["destId": String(a.userId)]))
        XCTAssertTrue(isMasked(seen(client.userById(a, b.userId)), of: b.mobile), "no longer friends")
        XCTAssertTrue(isMasked(queried(client.call(a, "/chat/queryUser", ["mobile": b.mobile])), of: b.mobile))
    }
}
