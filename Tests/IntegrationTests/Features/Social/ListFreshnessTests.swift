import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// The lists a client renders (`ready`'s friends and groups, `getGroupMember`) show every change a
/// user can make in the very next response. Each test first reads the list as every viewer
/// concerned (a read is what would fill a cache of rendered lists), then makes one change, then
/// reads again and expects exact values: the changed fields changed, the rest stayed, and each
/// viewer got their own variant (the full mobile only for friends and oneself).
final class ListFreshnessTests: StackTestCase {
    typealias Account = StackClient.Account

    /// Every look reads this many times in a row and expects the same answer each time: the stack
    /// runs several worker processes, and a process-local copy of a list could live in any of them.
    static let readsPerLook = 4

    // MARK: the lists, flattened into comparable values

    /// A Profile as the lists show it: each of its fields as text (numbers too), by its JSON name.
    struct ProfileLine: Equatable, CustomStringConvertible {
        static let keys = ["userId", "mobile", "name", "nickName", "headUrl", "sex", "sign", "province", "city", "isAuth"]
        var fields: [String: String]

        init(_ object: [String: Any]) {
            fields = [:]
            for key in ProfileLine.keys { fields[key] = object[key].map { "\($0)" } ?? "<no \(key)>" }
        }

        subscript(key: String) -> String {
            get { fields[key] ?? "<no \(key)>" }
            set { fields[key] = newValue }
        }

        var userId: Int64 { Int64(self["userId"]) ?? -1 }
        var description: String { ProfileLine.keys.map { "\($0)=\(self[$0])" }.joined(separator: " ") }
    }

    /// One entry of getGroupMember.
    struct Member: Equatable, CustomStringConvertible {
        var userId, joinTime: Int64
        var role, card: String
        var user: ProfileLine

        init(_ object: [String: Any]) {
            userId = int64(object["userId"]) ?? -1
            role = object["role"] as? String ?? "<no role>"
            card = object["card"] as? String ?? "<no card>"
            joinTime = int64(object["joinTime"]) ?? -1
            user = ProfileLine(object["user"] as? [String: Any] ?? [:])
        }

        var description: String { "[\(role) card=\(card) joined=\(joinTime) \(user)]" }
    }

    /// One entry of ready.friends.
    struct FriendLine: Equatable, CustomStringConvertible {
        var user: ProfileLine
        var remark: String
        var friendGroupId: Int64

        init(_ object: [String: Any]) {
            user = ProfileLine(object)
            remark = object["remark"] as? String ?? "<no remark>"
            friendGroupId = int64(object["friendGroupId"]) ?? -1
        }

        var description: String { "[\(user) remark=\(remark) friendGroup=\(friendGroupId)]" }
    }

    /// One entry of ready.groups.
    struct GroupLine: Equatable, CustomStringConvertible {
        var name: String
        var ownerId: Int64
        var memberCount: Int64
        var headUrls: [String]
        var myCard: String

        init(name: String, ownerId: Int64, memberCount: Int64, headUrls: [String], myCard: String) {
            (self.name, self.ownerId, self.memberCount, self.headUrls, self.myCard) = (name, ownerId, memberCount, headUrls, myCard)
        }

        init(_ object: [String: Any]) {
            self.init(name: object["name"] as? String ?? "<no name>", ownerId: int64(object["ownerId"]) ?? -1,
                      memberCount: int64(object["memberCount"]) ?? -1,
                      headUrls: (object["headUrls"] as? [Any] ?? []).map { $0 as? String ?? "<not a string>" },
                      myCard: object["myCard"] as? String ?? "<no myCard>")
        }

        var description: String { "[\(name) owner=\(ownerId) count=\(memberCount) heads=\(headUrls) myCard=\(myCard)]" }
    }

    // MARK: reading

    /// `viewer` is refused the member list (403) by every read of a look.
    func assertNotAMember(_ viewer: Account, _ groupId: Int64, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        for round in 1...2 {
            for reply in raceThreads(concurrentLookWidth, { _ in self.client.groupMembers(viewer, groupId) }) {
                assertReply(reply, status: 403, code: -1, "\(context) (round \(round))", file: file, line: line)
            }
        }
    }

    /// `viewer`'s member list of the group: with `reads` > 1, `concurrentLookWidth` reads at
    /// once, twice (each read must succeed and agree with the first); with `reads` 1, one read.
    func members(_ viewer: Account, _ groupId: Int64, reads: Int = ListFreshnessTests.readsPerLook,
                 file: StaticString = #filePath, line: UInt = #line) -> [Member] {
        let rounds = reads > 1 ? 2 : 1, width = reads > 1 ? concurrentLookWidth : 1
        var first: [Member]?
        for round in 1...rounds {
            let replies = raceThreads(width) { _ in self.client.groupMembers(viewer, groupId) }
            for (index, reply) in replies.enumerated() {
                assertOK(reply, "getGroupMember of \(groupId) by \(viewer.userId), round \(round), read \(index)", file: file, line: line)
                let list = reply.dataArray.map { Member($0 as? [String: Any] ?? [:]) }
                if let first {
                    XCTAssertEqual(list, first, "getGroupMember by \(viewer.userId): round \(round), read \(index) differs from the first",
                                   file: file, line: line)
                } else {
                    first = list
                }
            }
        }
        return first ?? []
    }

    /// `viewer`'s ready, read `readsPerLook` times in a row (friends and groups must agree).
    func ready(_ viewer: Account, file: StaticString = #filePath, line: UInt = #line) -> ReadyView {
        let first = client.readyView(viewer, file: file, line: line)
        for read in 2...Self.readsPerLook {
            let again = client.readyView(viewer, file: file, line: line)
            XCTAssertEqual(again.friends.map(FriendLine.init), first.friends.map(FriendLine.init),
                           "ready.friends of \(viewer.userId): read \(read) differs from read 1", file: file, line: line)
            XCTAssertEqual(again.groups.map(GroupLine.init), first.groups.map(GroupLine.init),
                           "ready.groups of \(viewer.userId): read \(read) differs from read 1", file: file, line: line)
        }
        return first
    }

    func friends(_ viewer: Account, file: StaticString = #filePath, line: UInt = #line) -> [FriendLine] {
        ready(viewer, file: file, line: line).friends.map(FriendLine.init)
    }

    /// The group as it stands in `viewer`'s ready.groups; nil when it is not there.
    func groupLine(_ viewer: Account, _ groupId: Int64, file: StaticString = #filePath, line: UInt = #line) -> GroupLine? {
        ready(viewer, file: file, line: line).group(groupId).map(GroupLine.init)
    }

    /// Each viewer's member list: the looks before a change.
    func memberLists(_ viewers: [Account], _ groupId: Int64, file: StaticString = #filePath, line: UInt = #line) -> [[Member]] {
        viewers.map { members($0, groupId, file: file, line: line) }
    }

    /// After a change: each viewer's member list is exactly `expected[i]`.
    func assertMemberLists(_ viewers: [Account], _ groupId: Int64, _ expected: [[Member]], _ context: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        for (viewer, list) in zip(viewers, expected) {
            XCTAssertEqual(members(viewer, groupId, file: file, line: line), list,
                           "\(context): getGroupMember as seen by \(viewer.userId)", file: file, line: line)
        }
    }

    /// After a change: each viewer's ready.friends is exactly `expected[i]`.
    func assertFriendLists(_ viewers: [Account], _ expected: [[FriendLine]], _ context: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        for (viewer, list) in zip(viewers, expected) {
            XCTAssertEqual(friends(viewer, file: file, line: line), list,
                           "\(context): ready.friends of \(viewer.userId)", file: file, line: line)
        }
    }

    /// After a change: the group stands as `expected` in each viewer's ready.groups.
    func assertGroupLine(_ viewers: [Account], _ groupId: Int64, _ expected: GroupLine, _ context: String,
                         file: StaticString = #filePath, line: UInt = #line) {
        for viewer in viewers {
            XCTAssertEqual(groupLine(viewer, groupId, file: file, line: line), expected,
                           "\(context): ready.groups of \(viewer.userId)", file: file, line: line)
        }
    }

    /// `lists` with `edit` applied to every entry of user `userId`.
    func edited<Line>(_ lists: [[Line]], _ userId: Int64, key: (Line) -> Int64, _ edit: (inout Line) -> Void) -> [[Line]] {
        lists.map { list in
            list.map { entry in
                var entry = entry
                if key(entry) == userId { edit(&entry) }
                return entry
            }
        }
    }

    func edited(_ lists: [[Member]], _ userId: Int64, _ edit: (inout Member) -> Void) -> [[Member]] {
        edited(lists, userId, key: \.userId, edit)
    }

    func edited(_ lists: [[FriendLine]], _ userId: Int64, _ edit: (inout FriendLine) -> Void) -> [[FriendLine]] {
        edited(lists, userId, key: \.user.userId, edit)
    }

    /// For each member, "full" when the list shows their whole mobile, "masked" when it shows a
    /// masked one (anything else verbatim).
    func mobiles(_ list: [Member], _ people: [Account]) -> [String] {
        list.map { member in
            guard let person = people.first(where: { $0.userId == member.userId }) else { return "unknown \(member.userId)" }
            if member.user["mobile"] == person.mobile { return "full" }
            return isMasked(member.user["mobile"], of: person.mobile) ? "masked" : member.user["mobile"]
        }
    }

    /// `viewer`'s member list shows the members `people` in this order with these mobiles.
    func assertMobiles(_ viewer: Account, _ groupId: Int64, _ people: [Account], _ expected: [String], _ context: String,
                       reads: Int = ListFreshnessTests.readsPerLook, file: StaticString = #filePath, line: UInt = #line) {
        let list = members(viewer, groupId, reads: reads, file: file, line: line)
        XCTAssertEqual(list.map(\.userId), people.map(\.userId), "\(context): members seen by \(viewer.userId)", file: file, line: line)
        XCTAssertEqual(mobiles(list, people), expected, "\(context): mobiles seen by \(viewer.userId)", file: file, line: line)
    }

    /// Changes of one Profile field each (`updateProfile` with that parameter alone, which is also
    /// the field's name in a Profile), in this order; the nickName changes twice.
    let profileChanges: [(param: String, value: String)] = [
        ("nickName", "阿B"), ("sign", "今天也要加油"), ("city", "杭州"), ("province", "浙江"), ("sex", "女"), ("name", "Bee"),
        ("nickName", "阿B 2"),
    ]

    func avatar() -> String { "https://example.com/fresh/\(uniqueToken(12)).png" }

    func setHead(_ account: Account, _ url: String, file: StaticString = #filePath, line: UInt = #line) {
        assertOK(client.call(account, "/chat/updateHead", ["headUrl": url]), "updateHead by \(account.userId)", file: file, line: line)
    }

    func setCard(_ account: Account, _ groupId: Int64, _ card: String, file: StaticString = #filePath, line: UInt = #line) {
        assertOK(client.call(account, "/chat/updateGroupMemberMark", ["groupId": String(groupId), "name": card]),
                 "updateGroupMemberMark by \(account.userId)", file: file, line: line)
    }

    /// A hub and `count` of its friends (befriended a few at a time, so in no defined order), the
    /// others strangers to each other.
    func hubWithFriends(_ count: Int, name: String) -> [Account] {
        let users = client.newAccounts(count + 1, name: name)
        client.befriendAll(users[0], Array(users.dropFirst()))
        return users
    }

    // MARK: getGroupMember

    func testMemberListShowsProfileChangesAtOnce() {
        let users = hubWithFriends(2, name: "MProf")
        let (a, b) = (users[0], users[1])
        let groupId = client.makeGroup(a, Array(users.dropFirst()))
        var expected = memberLists(users, groupId)
        let bEntry = expected[0].first { $0.userId == b.userId }
        XCTAssertEqual(bEntry?.user["name"], "MProf1")
        XCTAssertEqual(bEntry.map { [$0.user["nickName"], $0.user["sign"], $0.user["city"], $0.user["province"], $0.user["sex"]] },
                       ["", "", "", "", ""], "a new user's profile is empty")

        // One field at a time, so that each field is seen to change on its own; then several at once.
        for change in profileChanges {
            assertOK(client.call(b, "/chat/updateProfile", [change.param: change.value]))
            expected = edited(expected, b.userId) { $0.user[change.param] = change.value }
            assertMemberLists(users, groupId, expected, "after B's updateProfile of \(change.param)")
        }
        assertOK(client.call(b, "/chat/updateProfile", ["nickName": "阿B 3", "city": "苏州"]))
        expected = edited(expected, b.userId) { ($0.user["nickName"], $0.user["city"]) = ("阿B 3", "苏州") }
        assertMemberLists(users, groupId, expected, "after B's updateProfile of two fields")
        XCTAssertEqual(expected[2].first { $0.userId == b.userId }.map { [$0.user["name"], $0.user["nickName"], $0.user["sex"]] },
                       ["Bee", "阿B 3", "女"], "the fields not sent stay")

        // The viewer's own change, and the owner's.
        assertOK(client.call(a, "/chat/updateProfile", ["sign": "群主的签名"]))
        expected = edited(expected, a.userId) { $0.user["sign"] = "群主的签名" }
        assertMemberLists(users, groupId, expected, "after A's updateProfile")
    }

    func testMemberListShowsAvatarChangesAtOnce() {
        let users = hubWithFriends(2, name: "MHead")
        let (a, b) = (users[0], users[1])
        let groupId = client.makeGroup(a, Array(users.dropFirst()))
        var expected = memberLists(users, groupId)
        XCTAssertEqual(expected[0].map { $0.user["headUrl"] }, ["", "", ""], "nobody has an avatar yet")

        let first = avatar(), second = avatar(), owners = avatar()
        setHead(b, first)
        expected = edited(expected, b.userId) { $0.user["headUrl"] = first }
        assertMemberLists(users, groupId, expected, "after B's first updateHead")
        setHead(b, second)
        expected = edited(expected, b.userId) { $0.user["headUrl"] = second }
        assertMemberLists(users, groupId, expected, "after B's second updateHead")
        setHead(a, owners)
        expected = edited(expected, a.userId) { $0.user["headUrl"] = owners }
        assertMemberLists(users, groupId, expected, "after A's updateHead")
        XCTAssertEqual(expected[2].map { $0.user["headUrl"] }, [owners, second, ""])
    }

    func testMemberListShowsCardChangesAtOnce() {
        let users = hubWithFriends(2, name: "MCard")
        let (a, b) = (users[0], users[1])
        let groupId = client.makeGroup(a, Array(users.dropFirst()))
        var expected = memberLists(users, groupId)
        XCTAssertEqual(expected[1].map(\.card), ["", "", ""], "nobody has a card yet")

        for card in ["小B 🐱", "阿宝", ""] {
            setCard(b, groupId, card)
            expected = edited(expected, b.userId) { $0.card = card }
            assertMemberLists(users, groupId, expected, "after B's card became '\(card)'")
        }
        setCard(a, groupId, "群主")
        expected = edited(expected, a.userId) { $0.card = "群主" }
        assertMemberLists(users, groupId, expected, "after A's card change")
        XCTAssertEqual(expected[2].map(\.card), ["群主", "", ""])
    }

    func testMemberListShowsJoinsAtOnce() {
        let users = client.newAccounts(5, name: "MJoin")
        let (a, b, c, d, e) = (users[0], users[1], users[2], users[3], users[4])
        client.befriendAll(a, [b, c])
        let groupId = client.makeGroup(a, [b])
        assertMobiles(a, groupId, [a, b], ["full", "full"], "before anyone joins")
        assertMobiles(b, groupId, [a, b], ["full", "full"], "before anyone joins")

        // Invited by a member.
        assertOK(client.addMembers(a, groupId, [c.userId]))
        assertMobiles(a, groupId, [a, b, c], ["full", "full", "full"], "after addGroupMember")
        assertMobiles(b, groupId, [a, b, c], ["full", "full", "masked"], "after addGroupMember")
        assertMobiles(c, groupId, [a, b, c], ["full", "masked", "full"], "the new member's first look")

        // A join request changes nothing until the owner accepts it.
        assertReply(client.requestFriend(d, groupId, destType: 2), status: 200, code: 1, "D asks to join")
        assertMobiles(b, groupId, [a, b, c], ["full", "full", "masked"], "while D's request waits")
        assertNotAMember(d, groupId, "D is not a member yet")
        assertOK(client.acceptJoin(a, requester: d.userId, groupId: groupId))
        assertMobiles(b, groupId, [a, b, c, d], ["full", "full", "masked", "masked"], "after the owner let D in")
        assertMobiles(d, groupId, [a, b, c, d], ["masked", "masked", "masked", "full"], "D's first look")

        // Joining a group that needs no approval.
        assertOK(client.setNeedApproval(a, groupId, false))
        assertReply(client.requestFriend(e, groupId, destType: 2), status: 200, code: 2, "E joins at once")
        for viewer in [a, b, c, d] {
            let list = members(viewer, groupId)
            XCTAssertEqual(list.map(\.userId), users.map(\.userId), "after E joined, as seen by \(viewer.userId)")
            XCTAssertEqual(list.map(\.role), ["owner", "member", "member", "member", "member"])
            XCTAssertEqual(list.last?.user["name"], "MJoin4")
            XCTAssertEqual(list.last?.card, "")
        }
    }

    func testMemberListShowsQuitsAtOnce() {
        let users = hubWithFriends(3, name: "MQuit")
        let (a, b, c, d) = (users[0], users[1], users[2], users[3])
        let groupId = client.makeGroup(a, [b])
        assertOK(client.addMembers(a, groupId, [c.userId, d.userId]))
        for viewer in users { XCTAssertEqual(members(viewer, groupId).map(\.userId), users.map(\.userId)) }

        assertOK(client.quitGroup(c, groupId))
        for viewer in [a, b, d] {
            XCTAssertEqual(members(viewer, groupId).map(\.userId), [a, b, d].map(\.userId), "after C quit, as seen by \(viewer.userId)")
        }
        assertNotAMember(c, groupId, "C, who read the list before, is no longer a member")

        assertOK(client.quitGroup(b, groupId))
        for viewer in [a, d] {
            XCTAssertEqual(members(viewer, groupId).map(\.userId), [a, d].map(\.userId), "after B quit, as seen by \(viewer.userId)")
        }
        assertNotAMember(b, groupId, "B is no longer a member")

        // Invited back: at the end of the list.
        assertOK(client.addMembers(a, groupId, [c.userId]))
        for viewer in [a, d, c] {
            let list = members(viewer, groupId)
            XCTAssertEqual(list.map(\.userId), [a, d, c].map(\.userId), "after C came back, as seen by \(viewer.userId)")
            XCTAssertEqual(list.map(\.role), ["owner", "member", "member"])
        }
    }

    func testMemberListShowsTheNewOwnerAtOnce() {
        let users = hubWithFriends(2, name: "MOwner")
        let (a, b, c) = (users[0], users[1], users[2])
        let groupId = client.makeGroup(a, [b])
        assertOK(client.addMembers(a, groupId, [c.userId]))
        for viewer in users {
            XCTAssertEqual(members(viewer, groupId).map(\.role), ["owner", "member", "member"], "as seen by \(viewer.userId)")
            XCTAssertEqual(groupLine(viewer, groupId)?.ownerId, a.userId)
        }

        assertOK(client.quitGroup(a, groupId), "the owner leaves")
        for viewer in [b, c] {
            let list = members(viewer, groupId)
            XCTAssertEqual(list.map(\.userId), [b, c].map(\.userId), "after A left, as seen by \(viewer.userId)")
            XCTAssertEqual(list.map(\.role), ["owner", "member"], "B has been in longest, as seen by \(viewer.userId)")
            let group = groupLine(viewer, groupId)
            XCTAssertEqual(group?.ownerId, b.userId, "ready.groups[].ownerId of \(viewer.userId)")
            XCTAssertEqual(group?.memberCount, 2)
        }

        assertOK(client.quitGroup(b, groupId), "the second owner leaves")
        let list = members(c, groupId)
        XCTAssertEqual(list.map(\.userId), [c.userId])
        XCTAssertEqual(list.map(\.role), ["owner"], "the last member owns the group")
        XCTAssertEqual(groupLine(c, groupId)?.ownerId, c.userId)
        XCTAssertNil(groupLine(b, groupId), "B left")
    }

    func testMemberListShowsAViewerBecomingAndEndingAFriendshipAtOnce() {
        // A is friends with B and C; B and C are strangers to each other.
        let users = hubWithFriends(2, name: "MMask")
        let (a, b, c) = (users[0], users[1], users[2])
        let groupId = client.makeGroup(a, [b, c])
        let strangers = (b: ["full", "full", "masked"], c: ["full", "masked", "full"])
        let everyoneFull = ["full", "full", "full"]
        assertMobiles(a, groupId, users, everyoneFull, "A is everyone's friend")
        for (round, first) in [b, c].enumerated() {
            let second = first.userId == b.userId ? c : b
            for viewer in [first, second, first] {
                assertMobiles(viewer, groupId, users, viewer.userId == b.userId ? strangers.b : strangers.c,
                              "strangers, round \(round)")
            }
        }

        // A pending request reveals nothing.
        assertReply(client.requestFriend(b, c.userId), status: 200, code: 1)
        assertMobiles(c, groupId, users, strangers.c, "while B's request waits")
        assertMobiles(b, groupId, users, strangers.b, "while B's request waits")

        assertOK(client.acceptFriend(c, from: b.userId))
        for viewer in [b, c, c, b] { assertMobiles(viewer, groupId, users, everyoneFull, "after C accepted B") }

        assertOK(client.call(b, "/chat/delFriend", ["destId": String(c.userId)]))
        for viewer in [c, b, b, c] {
            assertMobiles(viewer, groupId, users, viewer.userId == b.userId ? strangers.b : strangers.c, "after B unfriended C")
        }

        // Friends again, at once this time (C accepts everyone), and ended from the other side.
        assertOK(client.call(c, "/chat/updatePrivateSetting", ["needAuth": "0"]))
        assertReply(client.requestFriend(b, c.userId), status: 200, code: 2, "B and C are friends at once")
        for viewer in [b, c] { assertMobiles(viewer, groupId, users, everyoneFull, "after B and C became friends again") }
        assertOK(client.call(c, "/chat/delFriend", ["destId": String(b.userId)]))
        for viewer in [b, c] {
            assertMobiles(viewer, groupId, users, viewer.userId == b.userId ? strangers.b : strangers.c, "after C unfriended B")
        }
        assertMobiles(a, groupId, users, everyoneFull, "A's own view never changed")
    }

    func testViewersReadingOneMemberListAlternatelyEachGetTheirOwnMasking() {
        // A is friends with everyone, B with C; D only with A.
        let users = hubWithFriends(3, name: "MAlt")
        let (a, b, c, d) = (users[0], users[1], users[2], users[3])
        client.befriend(b, c)
        let groupId = client.makeGroup(a, [b, c, d])
        var expected: [Int64: [String]] = [
            a.userId: ["full", "full", "full", "full"],
            b.userId: ["full", "full", "full", "masked"],
            c.userId: ["full", "full", "full", "masked"],
            d.userId: ["full", "masked", "masked", "full"],
        ]
        // One read at a time, the viewers taking turns, in several orders.
        for order in [[b, d, c, a], [d, b, a, c], [c, d, b, a, d, b]] {
            for viewer in order {
                assertMobiles(viewer, groupId, users, expected[viewer.userId] ?? [], "viewers taking turns", reads: 1)
            }
        }

        // D befriends C: only D's and C's variants change.
        client.befriend(d, c)
        expected[c.userId] = ["full", "full", "full", "full"]
        expected[d.userId] = ["full", "masked", "full", "full"]
        for order in [[d, c, b, a], [b, c, d, a, c, d]] {
            for viewer in order {
                assertMobiles(viewer, groupId, users, expected[viewer.userId] ?? [], "after D befriended C", reads: 1)
            }
        }
        for viewer in users { assertMobiles(viewer, groupId, users, expected[viewer.userId] ?? [], "after D befriended C") }
    }

    /// A profile change made in a transaction that is still open while the user joins a group and
    /// becomes someone's friend: the lists gain the user at new versions, and the change, once
    /// committed, must show in them (the joins wait for it: Profile.holdSteady).
    func testAProfileChangeInFlightWhileTheUserJoinsListsShowsInThemOnceCommitted() throws {
        let users = hubWithFriends(1, name: "MFlight")
        let (a, b) = (users[0], users[1])
        let c = client.newAccounts(1, name: "MFlightC")[0]
        client.befriend(a, c)
        let groupId = client.makeGroup(a, [b])
        XCTAssertEqual(members(b, groupId).map(\.userId), [a, b].map(\.userId))
        XCTAssertEqual(friends(b).map(\.user.userId), [a.userId])
        let committed = DispatchSemaphore(value: 0)
        let stack: Stack = self.stack
        Thread {
            _ = try? StackDB.query(stack, """
                BEGIN; UPDATE users SET nick_name = 'in flight' WHERE id = \(c.userId); SELECT pg_sleep(1.5); COMMIT;
                """)
            committed.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.5) // the UPDATE and its triggers have run; the commit has not
        assertOK(client.addMembers(a, groupId, [c.userId]))
        client.befriend(b, c)
        // Read at once: before the fix these reads stored C's old profile at the lists' new versions.
        _ = members(b, groupId)
        _ = friends(b)
        committed.wait()
        XCTAssertEqual(members(b, groupId).first { $0.userId == c.userId }?.user["nickName"], "in flight", "getGroupMember")
        XCTAssertEqual(friends(b).first { $0.user.userId == c.userId }?.user["nickName"], "in flight", "ready.friends")
    }

    // MARK: ready.friends

    func testReadyFriendsShowAFriendsProfileAndAvatarChangesAtOnce() {
        // B is friends with A and with C: both see B's changes.
        let users = hubWithFriends(2, name: "FProf")
        let (b, viewers) = (users[0], Array(users.dropFirst()))
        var expected = viewers.map { friends($0) }
        XCTAssertEqual(expected.map { $0.map(\.user.userId) }, [[b.userId], [b.userId]])
        XCTAssertEqual(expected[0].first?.user["nickName"], "")
        XCTAssertEqual(expected[0].first?.user["mobile"], b.mobile, "a friend's full mobile")

        for change in profileChanges {
            assertOK(client.call(b, "/chat/updateProfile", [change.param: change.value]))
            expected = edited(expected, b.userId) { $0.user[change.param] = change.value }
            assertFriendLists(viewers, expected, "after B's updateProfile of \(change.param)")
        }

        let first = avatar(), second = avatar()
        setHead(b, first)
        expected = edited(expected, b.userId) { $0.user["headUrl"] = first }
        assertFriendLists(viewers, expected, "after B's updateHead")
        setHead(b, second)
        expected = edited(expected, b.userId) { $0.user["headUrl"] = second }
        assertFriendLists(viewers, expected, "after B's second updateHead")
    }

    func testReadyFriendsShowRemarksAtOnce() {
        let users = hubWithFriends(2, name: "FRemark")
        let (a, b, c) = (users[0], users[1], users[2])
        var expected = [friends(a), friends(b)]
        XCTAssertEqual(Set(expected[0].map(\.user.userId)), [b.userId, c.userId], "befriended in parallel: in either order")
        XCTAssertEqual(expected[0].map(\.remark), ["", ""])

        for remark in ["老王 🍜", "王哥", ""] {
            assertOK(client.call(a, "/chat/updateRemark", ["destId": String(b.userId), "remark": remark]))
            expected[0] = edited([expected[0]], b.userId) { $0.remark = remark }[0]
            assertFriendLists([a, b], expected, "after A's remark for B became '\(remark)' (B's own list keeps no remark)")
        }
        assertOK(client.call(b, "/chat/updateRemark", ["destId": String(a.userId), "remark": "A 哥"]))
        expected[1] = edited([expected[1]], a.userId) { $0.remark = "A 哥" }[0]
        assertFriendLists([a, b], expected, "after B's remark for A")
        XCTAssertEqual(expected[1].map(\.remark), ["A 哥"])
    }

    func testReadyFriendsShowNewFriendshipsAtOnce() {
        let users = client.newAccounts(4, name: "FNew")
        let (a, b, c, d) = (users[0], users[1], users[2], users[3])
        client.befriend(a, b)
        XCTAssertEqual(friends(a).map(\.user.userId), [b.userId])
        XCTAssertEqual(friends(c).map(\.user.userId), [])
        XCTAssertEqual(friends(d).map(\.user.userId), [])

        // A request waits: nobody's friends change; accepted (into friend group 3): both sides.
        assertReply(client.requestFriend(c, a.userId), status: 200, code: 1)
        XCTAssertEqual(friends(a).map(\.user.userId), [b.userId], "while C's request waits")
        XCTAssertEqual(ready(a).requests(from: c.userId).count, 1)
        assertOK(client.acceptFriend(a, from: c.userId, friendGroupId: 3))
        let aFriends = friends(a)
        XCTAssertEqual(aFriends.map(\.user.userId), [b.userId, c.userId], "after A accepted C")
        XCTAssertEqual(aFriends.last?.user["mobile"], c.mobile, "the new friend's full mobile")
        XCTAssertEqual(aFriends.last?.friendGroupId, 3)
        XCTAssertEqual(aFriends.last?.user["name"], "FNew2")
        let cFriends = friends(c)
        XCTAssertEqual(cFriends.map(\.user.userId), [a.userId])
        XCTAssertEqual(cFriends.first?.user["mobile"], a.mobile)
        XCTAssertEqual(cFriends.first?.friendGroupId, 0)
        XCTAssertTrue(ready(a).requests(from: c.userId).isEmpty, "the request is settled")

        // At once (A accepts everyone now).
        assertOK(client.call(a, "/chat/updatePrivateSetting", ["needAuth": "0"]))
        assertReply(client.requestFriend(d, a.userId), status: 200, code: 2)
        XCTAssertEqual(friends(a).map(\.user.userId), [b.userId, c.userId, d.userId], "after D became A's friend at once")
        XCTAssertEqual(friends(d).map(\.user.userId), [a.userId])

        // Crossed requests: B asks C, C asks B.
        XCTAssertEqual(friends(b).map(\.user.userId), [a.userId])
        assertReply(client.requestFriend(b, c.userId), status: 200, code: 1)
        assertReply(client.requestFriend(c, b.userId), status: 200, code: 2)
        XCTAssertEqual(friends(b).map(\.user.userId), [a.userId, c.userId], "after the crossed requests")
        XCTAssertEqual(friends(c).map(\.user.userId), [a.userId, b.userId], "after the crossed requests")
    }

    func testReadyFriendsDropEndedFriendshipsAtOnce() {
        let users = hubWithFriends(2, name: "FDel")
        let (a, b, c) = (users[0], users[1], users[2])
        XCTAssertEqual(Set(friends(a).map(\.user.userId)), [b.userId, c.userId], "befriended in parallel: in either order")
        XCTAssertEqual(friends(b).map(\.user.userId), [a.userId])
        XCTAssertEqual(friends(c).map(\.user.userId), [a.userId])

        assertOK(client.call(a, "/chat/delFriend", ["destId": String(b.userId)]))
        XCTAssertEqual(friends(a).map(\.user.userId), [c.userId], "after A unfriended B")
        XCTAssertEqual(friends(b).map(\.user.userId), [], "after A unfriended B")

        assertOK(client.call(c, "/chat/delFriend", ["destId": String(a.userId)]))
        XCTAssertEqual(friends(a).map(\.user.userId), [], "after C unfriended A")
        XCTAssertEqual(friends(c).map(\.user.userId), [], "after C unfriended A")

        client.befriend(b, a)
        XCTAssertEqual(friends(a).map(\.user.userId), [b.userId], "friends again")
        XCTAssertEqual(friends(b).map(\.user.userId), [a.userId], "friends again")
    }

    // MARK: ready.groups

    func testReadyGroupsShowARenameAtOnce() {
        let users = hubWithFriends(2, name: "GName")
        let a = users[0]
        let original = "原名" + uniqueToken(6)
        let groupId = client.makeGroup(a, Array(users.dropFirst()), name: original)
        var expected = GroupLine(name: original, ownerId: a.userId, memberCount: 3, headUrls: [], myCard: "")
        for viewer in users { XCTAssertEqual(groupLine(viewer, groupId), expected, "before the rename") }

        for name in ["新名字 " + uniqueToken(6), String(repeating: "名", count: 64)] {
            assertOK(client.call(a, "/chat/updateGroup", ["groupId": String(groupId), "name": name]))
            expected.name = name
            assertGroupLine(users, groupId, expected, "after the rename to \(name)")
        }
    }

    func testReadyGroupsShowJoinsAndQuitsAtOnce() {
        let users = client.newAccounts(4, name: "GJoin")
        let (a, b, c, d) = (users[0], users[1], users[2], users[3])
        client.befriendAll(a, [b, c])
        // A, B and D have avatars; C has none yet.
        let heads = [a, b, d].map { _ in avatar() }
        setHead(a, heads[0])
        setHead(b, heads[1])
        setHead(d, heads[2])
        XCTAssertTrue(ready(b).groups.isEmpty)

        let name = "进出" + uniqueToken(6)
        let groupId = client.makeGroup(a, [b], name: name)
        var expected = GroupLine(name: name, ownerId: a.userId, memberCount: 2, headUrls: [heads[0], heads[1]], myCard: "")
        assertGroupLine([a, b], groupId, expected, "after createGroup")
        XCTAssertNil(groupLine(c, groupId))

        assertOK(client.addMembers(a, groupId, [c.userId]))
        expected.memberCount = 3
        assertGroupLine([a, b, c], groupId, expected, "after C joined (no avatar: the same headUrls)")

        let cHead = avatar()
        setHead(c, cHead)
        expected.headUrls = [heads[0], heads[1], cHead]
        assertGroupLine([a, b, c], groupId, expected, "after C set an avatar")

        assertReply(client.requestFriend(d, groupId, destType: 2), status: 200, code: 1)
        assertGroupLine([a, b, c], groupId, expected, "while D's join request waits")
        assertOK(client.acceptJoin(a, requester: d.userId, groupId: groupId))
        expected.memberCount = 4
        expected.headUrls = [heads[0], heads[1], cHead, heads[2]]
        assertGroupLine([a, b, c, d], groupId, expected, "after D was let in")

        assertOK(client.quitGroup(b, groupId))
        expected.memberCount = 3
        expected.headUrls = [heads[0], cHead, heads[2]]
        assertGroupLine([a, c, d], groupId, expected, "after B quit")
        XCTAssertNil(groupLine(b, groupId), "B left")
        XCTAssertTrue(ready(b).groups.isEmpty)
    }

    func testReadyGroupsHeadUrlsFollowTheFirstNineMembersAtOnce() {
        let users = hubWithFriends(9, name: "GNine")
        let heads = Dictionary(uniqueKeysWithValues: users.map { ($0.userId, avatar()) })
        _ = raceThreads(users.count) { index in self.setHead(users[index], heads[users[index].userId] ?? "") }
        let hub = users[0]
        let groupId = client.makeGroup(hub, Array(users.dropFirst()))
        var order = members(hub, groupId).map(\.userId)
        XCTAssertEqual(Set(order), Set(users.map(\.userId)))
        guard order.count == 10, order.first == hub.userId else { return XCTFail("the member list: \(order)") }
        let viewers = [hub, users[9]]
        var expected = GroupLine(name: groupLine(hub, groupId)?.name ?? "?", ownerId: hub.userId, memberCount: 10,
                                 headUrls: order.prefix(9).map { heads[$0] ?? "" }, myCard: "")
        assertGroupLine(viewers, groupId, expected, "ten members with avatars: the first nine")

        // The second member leaves: the tenth's avatar moves up into the nine.
        let quitter = users.first { $0.userId == order[1] }!
        assertOK(client.quitGroup(quitter, groupId))
        order.remove(at: 1)
        expected.memberCount = 9
        expected.headUrls = order.map { heads[$0] ?? "" }
        let remaining = users.filter { $0.userId != quitter.userId }
        assertGroupLine([remaining[0], remaining[8]], groupId, expected, "after the second member quit")

        // The last of the nine changes their avatar.
        let last = users.first { $0.userId == order[8] }!
        let newHead = avatar()
        setHead(last, newHead)
        expected.headUrls[8] = newHead
        assertGroupLine([remaining[0], last], groupId, expected, "after the ninth changed their avatar")

        // The quitter comes back as the tenth: counted, but not among the nine avatars.
        assertOK(client.addMembers(hub, groupId, [quitter.userId]))
        expected.memberCount = 10
        assertGroupLine([hub, quitter], groupId, expected, "after the quitter came back as the tenth")
    }

    func testReadyGroupsShowTheFirstMembersAvatarAtOnce() {
        let users = hubWithFriends(2, name: "GHead")
        let (a, b) = (users[0], users[1])
        let groupId = client.makeGroup(a, Array(users.dropFirst()))
        let getGroupHeads = { (self.client.getGroup(b, groupId).dataObject["headUrls"] as? [Any] ?? []).compactMap { $0 as? String } }
        var expected = GroupLine(name: groupLine(a, groupId)?.name ?? "?", ownerId: a.userId, memberCount: 3, headUrls: [], myCard: "")
        assertGroupLine(users, groupId, expected, "nobody has an avatar")

        let first = avatar(), bHead = avatar(), second = avatar()
        setHead(a, first)
        expected.headUrls = [first]
        assertGroupLine(users, groupId, expected, "after the first member set an avatar")
        setHead(b, bHead)
        expected.headUrls = [first, bHead]
        assertGroupLine(users, groupId, expected, "after the second member set an avatar")
        setHead(a, second)
        expected.headUrls = [second, bHead]
        assertGroupLine(users, groupId, expected, "after the first member changed their avatar")
        XCTAssertEqual(getGroupHeads(), [second, bHead], "getGroupById agrees")
    }

    func testReadyGroupsShowYourOwnCardAtOnce() {
        let users = hubWithFriends(1, name: "GCard")
        let (a, b) = (users[0], users[1])
        let groupId = client.makeGroup(a, [b])
        var mine = [a.userId: "", b.userId: ""]
        func assertCards(_ context: String, file: StaticString = #filePath, line: UInt = #line) {
            for viewer in users {
                XCTAssertEqual(groupLine(viewer, groupId, file: file, line: line)?.myCard, mine[viewer.userId],
                               "\(context): myCard of \(viewer.userId)", file: file, line: line)
            }
        }
        assertCards("no cards yet")
        for (who, card) in [(b, "B的名片"), (a, "群主"), (b, "阿宝 🐼"), (a, "")] {
            setCard(who, groupId, card)
            mine[who.userId] = card
            assertCards("after \(who.userId)'s card became '\(card)'")
        }
    }
}
