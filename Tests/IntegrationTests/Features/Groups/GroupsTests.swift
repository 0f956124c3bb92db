import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// API.md §4 over HTTP: creating groups (friends only, 2 to 500 members), renaming (owner only),
/// cards, invitations, the 500-member cap (with users seeded in PostgreSQL), leaving and owner
/// hand-over, dissolution, lookup, member lists, name search, and join requests.
final class GroupsTests: StackTestCase {
    typealias Account = StackClient.Account


    static let groupKeys = ["groupId", "name", "ownerId", "memberCount", "headUrls", "myCard"]

    /// A hub with `count` friends.
    func hubWithFriends(_ count: Int, name: String) -> (hub: Account, friends: [Account]) {
        let users = client.newAccounts(count + 1, name: name)
        client.befriendAll(users[0], Array(users.dropFirst()))
        return (users[0], Array(users.dropFirst()))
    }

    func groupCount(named name: String) throws -> Int64 {
        let escaped = name.replacingOccurrences(of: "'", with: "''")
        return try StackDB.int(stack, "SELECT count(*) FROM groups WHERE name = '\(escaped)'") ?? -1
    }

    // MARK: createGroup

    func testCreateGroupOnlyWithFriends() throws {
        let users = client.newAccounts(3, name: "OnlyFriends")
        let (a, b, stranger) = (users[0], users[1], users[2])
        client.befriend(a, b)
        // The stranger asked A once and A did not answer: still not a friend.
        assertReply(client.requestFriend(stranger, a.userId), status: 200, code: 1)
        let name = "NF" + uniqueToken()
        assertReply(client.createGroup(a, ids: [b.userId, stranger.userId], name: name), status: 200, code: -1,
                    "a non-friend among the ids")
        assertReply(client.createGroup(a, ids: [stranger.userId], name: name), status: 200, code: -1, "only a non-friend")
        assertReply(client.createGroup(a, ids: [b.userId, 9_000_000_000_000_000], name: name), status: 200, code: -1,
                    "an unknown user among the ids")
        XCTAssertEqual(try groupCount(named: name), 0, "no group was created")
        XCTAssertTrue(client.readyView(a).groups.isEmpty)
        XCTAssertTrue(client.readyView(b).groups.isEmpty)
        XCTAssertTrue(client.readyView(stranger).groups.isEmpty)
    }

    func testCreateGroupNeedsTwoMembers() throws {
        let users = client.newAccounts(2, name: "Two")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        let name = "Solo" + uniqueToken()
        assertReply(client.createGroup(a, ids: [a.userId], name: name), status: 200, code: -1, "only the caller: 1 member")
        XCTAssertEqual(try groupCount(named: name), 0)
        let reply = client.createGroup(a, ids: [b.userId, b.userId, a.userId], name: name)
        assertOK(reply, "the caller and one friend (repeated ids count once)")
        let groupId = int64(reply.dataObject["groupId"]) ?? 0
        XCTAssertGreaterThan(groupId, 0, "data.groupId: \(reply.text)")
        XCTAssertEqual(client.readyView(a).group(groupId).flatMap { int64($0["memberCount"]) }, 2)
        XCTAssertEqual(try StackDB.groupCounts(stack, groupId)?.real, 2)
    }

    func testEveryMemberSeesTheNewGroupInReady() {
        let (a, friends) = hubWithFriends(2, name: "Ready")
        let (b, c) = (friends[0], friends[1])
        let name = "读书会 " + uniqueToken(4)
        let groupId = client.makeGroup(a, [b, c], name: name)
        for member in [a, b, c] {
            guard let group = client.readyView(member).group(groupId) else {
                XCTFail("\(member.userId) does not see group \(groupId) in ready.groups")
                continue
            }
            for key in GroupsTests.groupKeys { XCTAssertNotNil(group[key], "Group has \(key): \(group)") }
            XCTAssertEqual(group["name"] as? String, name)
            XCTAssertEqual(int64(group["ownerId"]), a.userId, "the creator is the owner")
            XCTAssertEqual(int64(group["memberCount"]), 3)
            XCTAssertEqual(group["myCard"] as? String, "")
            XCTAssertEqual((group["headUrls"] as? [Any])?.count, 0, "nobody has an avatar yet")
        }
        let members = client.groupMembers(b, groupId)
        assertOK(members)
        let list = members.dataArray.compactMap { $0 as? [String: Any] }
        XCTAssertEqual(list.first.flatMap { int64($0["userId"]) }, a.userId, "the creator joined first")
        XCTAssertEqual(Set(idsOf(members.dataArray, key: "userId")), Set([a.userId, b.userId, c.userId]))
        XCTAssertEqual(list.filter { $0["role"] as? String == "owner" }.compactMap { int64($0["userId"]) }, [a.userId])
        XCTAssertEqual(list.filter { $0["role"] as? String == "member" }.count, 2)
    }

    func testHeadUrlsHoldAtMostNineMemberAvatars() {
        let (a, friends) = hubWithFriends(10, name: "Heads")
        let everyone = [a] + friends
        var avatars = Set<String>()
        _ = raceThreads(everyone.count) { index in
            assertOK(self.client.call(everyone[index], "/chat/updateHead", ["headUrl": "https://example.com/a\(index).png"]))
        }
        for index in everyone.indices { avatars.insert("https://example.com/a\(index).png") }
        let groupId = client.makeGroup(a, friends)
        for member in [a, friends[9]] {
            let heads = (client.readyView(member).group(groupId)?["headUrls"] as? [Any] ?? []).compactMap { $0 as? String }
            XCTAssertEqual(heads.count, 9, "11 members with avatars: nine of them in ready.groups[].headUrls: \(heads)")
            XCTAssertEqual(Set(heads).count, heads.count, "no avatar twice")
            XCTAssertTrue(Set(heads).isSubset(of: avatars), "only member avatars: \(heads)")
        }
        let viaGet = (client.getGroup(a, groupId).dataObject["headUrls"] as? [Any] ?? []).compactMap { $0 as? String }
        XCTAssertEqual(viaGet.count, 9, "getGroupById for a member: \(viaGet)")
        XCTAssertEqual(int64(client.getGroup(a, groupId).dataObject["memberCount"]), 11)
    }

    // MARK: updateGroup

    func testOnlyTheOwnerRenames() {
        let users = client.newAccounts(3, name: "Rename")
        let (a, b, outsider) = (users[0], users[1], users[2])
        client.befriend(a, b)
        let original = "Orig" + uniqueToken()
        let groupId = client.makeGroup(a, [b], name: original)
        let renamed = "新名字" + uniqueToken()
        assertReply(client.call(b, "/chat/updateGroup", ["groupId": String(groupId), "name": renamed]),
                    status: 403, code: -1, "a member renames")
        assertReply(client.call(outsider, "/chat/updateGroup", ["groupId": String(groupId), "name": renamed]),
                    status: 403, code: -1, "a non-member renames")
        XCTAssertEqual(client.getGroup(a, groupId).dataObject["name"] as? String, original, "unchanged")

        assertOK(client.call(a, "/chat/updateGroup", ["groupId": String(groupId), "name": renamed]), "the owner renames")
        XCTAssertEqual(client.getGroup(a, groupId).dataObject["name"] as? String, renamed)
        XCTAssertEqual(client.readyView(b).group(groupId)?["name"] as? String, renamed, "members see the new name")
        XCTAssertEqual(client.getGroup(outsider, groupId).dataObject["name"] as? String, renamed)
        let longest = String(repeating: "名", count: 64)
        assertOK(client.call(a, "/chat/updateGroup", ["groupId": String(groupId), "name": longest]), "64 characters")
        XCTAssertEqual(client.getGroup(b, groupId).dataObject["name"] as? String, longest)
    }

    func testOnlyTheOwnerChangesNeedApproval() {
        let users = client.newAccounts(3, name: "Approval")
        let (a, b, joiner) = (users[0], users[1], users[2])
        client.befriend(a, b)
        let groupId = client.makeGroup(a, [b])
        assertReply(client.setNeedApproval(b, groupId, false), status: 403, code: -1, "a member turns approval off")
        assertReply(client.requestFriend(joiner, groupId, destType: 2), status: 200, code: 1, "approval needed by default")
        assertOK(client.setNeedApproval(a, groupId, false), "the owner turns approval off")
        let joiner2 = client.newAccount(name: "Approval3")
        assertReply(client.requestFriend(joiner2, groupId, destType: 2), status: 200, code: 2, "joins at once")
        XCTAssertNotNil(client.readyView(joiner2).group(groupId))
        assertOK(client.setNeedApproval(a, groupId, true), "and back on")
        let joiner3 = client.newAccount(name: "Approval4")
        assertReply(client.requestFriend(joiner3, groupId, destType: 2), status: 200, code: 1, "waits again")
        XCTAssertNil(client.readyView(joiner3).group(groupId))
    }

    // MARK: updateGroupMemberMark

    func testUpdateGroupMemberMarkSetsYourOwnCard() {
        let users = client.newAccounts(3, name: "Card")
        let (a, b, outsider) = (users[0], users[1], users[2])
        client.befriend(a, b)
        let groupId = client.makeGroup(a, [b])
        assertOK(client.call(b, "/chat/updateGroupMemberMark", ["groupId": String(groupId), "name": "小B 🐱"]))
        XCTAssertEqual(client.readyView(b).group(groupId)?["myCard"] as? String, "小B 🐱")
        XCTAssertEqual(client.readyView(a).group(groupId)?["myCard"] as? String, "", "A's card is A's own")
        XCTAssertEqual(client.getGroup(b, groupId).dataObject["myCard"] as? String, "小B 🐱")
        let list = client.groupMembers(a, groupId).dataArray.compactMap { $0 as? [String: Any] }
        XCTAssertEqual(list.first { int64($0["userId"]) == b.userId }?["card"] as? String, "小B 🐱", "others see the card")
        XCTAssertEqual(list.first { int64($0["userId"]) == a.userId }?["card"] as? String, "")
        assertReply(client.call(outsider, "/chat/updateGroupMemberMark", ["groupId": String(groupId), "name": "x"]),
                    status: 403, code: -1, "a non-member's card")
    }

    // MARK: addGroupMember

    func testAddGroupMember() throws {
        let users = client.newAccounts(6, name: "Invite")
        let (a, b, d, e, outsider, bStranger) = (users[0], users[1], users[2], users[3], users[4], users[5])
        client.befriend(a, b)
        client.befriend(b, d)
        client.befriend(b, e)
        client.befriend(outsider, d)
        let groupId = client.makeGroup(a, [b])

        // Any member invites their own friends (D is B's friend, not A's).
        let added = client.addMembers(b, groupId, [d.userId])
        assertOK(added, "a member invites a friend")
        XCTAssertEqual(int64(client.getGroup(a, groupId).dataObject["memberCount"]), 3)
        XCTAssertNotNil(client.readyView(d).group(groupId), "D is in")

        // Members already in are skipped.
        assertOK(client.addMembers(b, groupId, [a.userId, d.userId, e.userId]), "two already in, one new")
        XCTAssertEqual(int64(client.getGroup(a, groupId).dataObject["memberCount"]), 4)
        assertOK(client.addMembers(b, groupId, [a.userId, d.userId]), "all already in")
        let members = idsOf(client.groupMembers(a, groupId).dataArray, key: "userId")
        XCTAssertEqual(members.count, 4, "nobody twice: \(members)")
        XCTAssertEqual(Set(members), Set([a.userId, b.userId, d.userId, e.userId]))
        XCTAssertEqual(Array(members.suffix(2)), [d.userId, e.userId], "ordered by join")

        // Only friends; only members.
        assertReply(client.addMembers(a, groupId, [bStranger.userId]), status: 200, code: -1, "inviting a non-friend")
        XCTAssertNil(client.readyView(bStranger).group(groupId))
        assertReply(client.addMembers(outsider, groupId, [d.userId]), status: 403, code: -1, "a non-member invites")
        let counts = try StackDB.groupCounts(stack, groupId)
        XCTAssertEqual(counts?.memberCount, 4)
        XCTAssertEqual(counts?.real, 4)
    }

    // MARK: the 500-member cap, with users seeded in PostgreSQL

    func testTheFiveHundredMemberCap() throws {
        let users = client.newAccounts(2, name: "Cap")
        let (owner, outsider) = (users[0], users[1])
        let seeded = try StackDB.seedUsers(stack, count: 501, name: "CapSeed")
        XCTAssertEqual(seeded.count, 501)
        try StackDB.seedFriendships(stack, owner.userId, seeded)
        XCTAssertEqual(client.readyView(owner).friends.count, 501, "the seeded friendships are visible")

        let name = "Cap" + uniqueToken()
        assertReply(client.createGroup(owner, ids: Array(seeded.prefix(500)), name: name), status: 200, code: -1,
                    "501 members in all")
        XCTAssertEqual(try groupCount(named: name), 0, "no group")

        let created = client.createGroup(owner, ids: Array(seeded.prefix(499)), name: name)
        assertOK(created, "500 members in all")
        let groupId = int64(created.dataObject["groupId"]) ?? 0
        XCTAssertEqual(int64(client.getGroup(owner, groupId).dataObject["memberCount"]), 500)
        XCTAssertEqual(client.groupMembers(owner, groupId).dataArray.count, 500, "getGroupMember lists all 500")

        assertReply(client.addMembers(owner, groupId, [seeded[499]]), status: 200, code: -1, "a 501st member")
        assertReply(client.addMembers(owner, groupId, [seeded[499], seeded[500]]), status: 200, code: -1, "two more")
        assertOK(client.addMembers(owner, groupId, [seeded[0], seeded[1]]), "only members already in: nothing to add")

        // Joining a full group: at once (no approval) or by an accepted request.
        assertOK(client.setNeedApproval(owner, groupId, false))
        assertReply(client.requestFriend(outsider, groupId, destType: 2), status: 200, code: -1, "joining a full group")
        assertOK(client.setNeedApproval(owner, groupId, true))
        let asked = client.requestFriend(outsider, groupId, destType: 2)
        XCTAssertEqual(asked.status, 200, asked.text)
        if asked.code == 1 {
            let accepted = client.acceptJoin(owner, requester: outsider.userId, groupId: groupId)
            assertReply(accepted, status: 200, code: -1, "accepting a request into a full group")
        } else {
            XCTAssertEqual(asked.code, -1, "a join request to a full group is either pending (1) or refused (-1): \(asked.text)")
        }
        XCTAssertNil(client.readyView(outsider).group(groupId))
        let counts = try StackDB.groupCounts(stack, groupId)
        XCTAssertEqual(counts?.memberCount, 500)
        XCTAssertEqual(counts?.real, 500)

        // Room for one: the owner leaves, the outsider gets in, and then the former owner cannot.
        assertOK(client.setNeedApproval(owner, groupId, false))
        assertOK(client.quitGroup(owner, groupId))
        XCTAssertEqual(int64(client.getGroup(owner, groupId).dataObject["ownerId"]), seeded[0], "the longest-standing member")
        XCTAssertEqual(int64(client.getGroup(owner, groupId).dataObject["memberCount"]), 499)
        assertReply(client.setNeedApproval(owner, groupId, true), status: 403, code: -1, "no longer the owner")
        assertReply(client.requestFriend(outsider, groupId, destType: 2), status: 200, code: 2, "the 500th member")
        assertReply(client.requestFriend(owner, groupId, destType: 2), status: 200, code: -1, "a 501st member")
        let final = try StackDB.groupCounts(stack, groupId)
        XCTAssertEqual(final?.memberCount, 500)
        XCTAssertEqual(final?.real, 500)
        XCTAssertFalse(try StackDB.isMember(stack, groupId, owner.userId))
    }

    // MARK: quitGroup

    func testQuittingPassesOwnershipToTheLongestStandingMemberAndTheLastOneOutDissolves() throws {
        // Registered A, C, B: C's id is lower than B's, but B joins first.
        let users = client.newAccounts(3, name: "Quit")
        let (a, c, b) = (users[0], users[1], users[2])
        client.befriend(a, b)
        client.befriend(a, c)
        let name = "Quit" + uniqueToken()
        let groupId = client.makeGroup(a, [b], name: name)
        assertOK(client.addMembers(a, groupId, [c.userId]))

        assertOK(client.quitGroup(a, groupId), "the owner leaves")
        let afterA = client.getGroup(b, groupId).dataObject
        XCTAssertEqual(int64(afterA["ownerId"]), b.userId, "B has been in longest: \(afterA)")
        XCTAssertEqual(int64(afterA["memberCount"]), 2)
        let roles = client.groupMembers(c, groupId).dataArray.compactMap { $0 as? [String: Any] }
        XCTAssertEqual(roles.first { int64($0["userId"]) == b.userId }?["role"] as? String, "owner")
        XCTAssertEqual(roles.first { int64($0["userId"]) == c.userId }?["role"] as? String, "member")
        XCTAssertEqual(roles.count, 2)
        XCTAssertNil(client.readyView(a).group(groupId), "A left")
        XCTAssertEqual(client.readyView(c).group(groupId).flatMap { int64($0["ownerId"]) }, b.userId)
        assertReply(client.groupMembers(a, groupId), status: 403, code: -1, "A is no longer a member")
        XCTAssertEqual(jsonBoolean(client.getGroup(a, groupId), key: "isMember"), false)
        assertReply(client.call(a, "/chat/updateGroup", ["groupId": String(groupId), "name": "x"]), status: 403, code: -1,
                    "the former owner cannot rename")
        assertOK(client.call(b, "/chat/updateGroup", ["groupId": String(groupId), "name": name + "B"]), "the new owner can")

        assertOK(client.quitGroup(b, groupId), "the second owner leaves")
        XCTAssertEqual(int64(client.getGroup(c, groupId).dataObject["ownerId"]), c.userId)
        XCTAssertEqual(int64(client.getGroup(c, groupId).dataObject["memberCount"]), 1)
        XCTAssertTrue(idsOf(client.queryGroup(c, name + "B").dataArray, key: "groupId").contains(groupId),
                      "queryGroup finds the live group")

        assertOK(client.quitGroup(c, groupId), "the last member leaves")
        assertReply(client.getGroup(c, groupId), status: 200, code: -1, "a dissolved group")
        assertReply(client.getGroup(a, groupId), status: 200, code: -1, "a dissolved group, for anyone")
        XCTAssertFalse(idsOf(client.queryGroup(a, name + "B").dataArray, key: "groupId").contains(groupId),
                       "queryGroup no longer finds it")
        XCTAssertNil(client.readyView(c).group(groupId))
        let counts = try StackDB.groupCounts(stack, groupId)
        XCTAssertEqual(counts?.real, 0)
        XCTAssertEqual(counts?.memberCount, 0)
        assertReply(client.quitGroup(c, groupId), status: 200, code: -1, "nothing left to quit")
        assertReply(client.addMembers(c, groupId, [a.userId]), status: 200, code: -1, "nobody can be added to a dissolved group")
        assertReply(client.requestFriend(a, groupId, destType: 2), status: 200, code: -1, "nor join it (no such group)")
        XCTAssertEqual(try StackDB.groupCounts(stack, groupId)?.real, 0)
    }

    func testAMemberWhoLeavesAndComesBackLosesTheirStanding() {
        let (a, friends) = hubWithFriends(3, name: "Rejoin")
        let (b, c, d) = (friends[0], friends[1], friends[2])
        let groupId = client.makeGroup(a, [b])
        assertOK(client.addMembers(a, groupId, [c.userId]))
        assertOK(client.quitGroup(b, groupId))
        assertOK(client.addMembers(a, groupId, [b.userId, d.userId]), "B comes back, D joins")
        assertOK(client.quitGroup(a, groupId))
        XCTAssertEqual(int64(client.getGroup(c, groupId).dataObject["ownerId"]), c.userId,
                       "C has been in longest since B left and came back")
        XCTAssertEqual(idsOf(client.groupMembers(c, groupId).dataArray, key: "userId").first, c.userId)
    }

    // MARK: getGroupById, getGroupMember

    func testGetGroupByIdForMembersAndNonMembers() {
        let users = client.newAccounts(3, name: "Look")
        let (a, b, outsider) = (users[0], users[1], users[2])
        client.befriend(a, b)
        assertOK(client.call(b, "/chat/updateHead", ["headUrl": "https://example.com/b.png"]))
        let name = "Look" + uniqueToken()
        let groupId = client.makeGroup(a, [b], name: name)

        let asMember = client.getGroup(b, groupId)
        assertOK(asMember)
        XCTAssertEqual(jsonBoolean(asMember, key: "isMember"), true)
        XCTAssertEqual(asMember.dataObject["name"] as? String, name)
        XCTAssertEqual(int64(asMember.dataObject["memberCount"]), 2)
        XCTAssertEqual(int64(asMember.dataObject["ownerId"]), a.userId)
        XCTAssertEqual(asMember.dataObject["headUrls"] as? [String], ["https://example.com/b.png"])

        let asOutsider = client.getGroup(outsider, groupId)
        assertOK(asOutsider, "non-members see the group too")
        XCTAssertEqual(jsonBoolean(asOutsider, key: "isMember"), false)
        XCTAssertEqual(asOutsider.dataObject["name"] as? String, name)
        XCTAssertEqual(int64(asOutsider.dataObject["memberCount"]), 2)
        XCTAssertEqual(int64(asOutsider.dataObject["groupId"]), groupId)
        let heads = asOutsider.dataObject["headUrls"]
        XCTAssertTrue(heads == nil || heads is NSNull || (heads as? [Any])?.isEmpty == true,
                      "no member details for a non-member: \(asOutsider.text)")
        XCTAssertFalse(asOutsider.text.contains("example.com/b.png"), "no member avatar leaks: \(asOutsider.text)")

        assertReply(client.getGroup(a, 9_000_000_000_000_000), status: 200, code: -1, "no such group")
    }

    func testGetGroupMemberIsForMembersOnly() {
        let (a, friends) = hubWithFriends(3, name: "Members")
        let (b, c, outsider) = (friends[0], friends[1], friends[2])
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let groupId = client.makeGroup(a, [b])
        Thread.sleep(forTimeInterval: 0.01)
        assertOK(client.addMembers(a, groupId, [c.userId]))
        assertReply(client.groupMembers(outsider, groupId), status: 403, code: -1, "a non-member")
        assertReply(client.call(outsider, "/chat/getGroupMember", ["groupId": String(groupId), "version": "17"]),
                    status: 403, code: -1, "a non-member, with version")
        assertReply(client.call(b, "/chat/getGroupMember", ["groupId": "9000000000000000000"]),
                    status: 200, code: -1, "no such group")

        let reply = client.call(b, "/chat/getGroupMember", ["groupId": String(groupId), "version": "whatever-1"])
        assertOK(reply, "version is accepted and ignored")
        let list = reply.dataArray.compactMap { $0 as? [String: Any] }
        XCTAssertEqual(list.compactMap { int64($0["userId"]) }, [a.userId, b.userId, c.userId], "ordered by join")
        XCTAssertEqual(list.map { $0["role"] as? String ?? "?" }, ["owner", "member", "member"])
        for member in list {
            for key in ["userId", "card", "role", "joinTime", "user"] { XCTAssertNotNil(member[key], "\(key) in \(member)") }
            let joinTime = int64(member["joinTime"]) ?? 0
            XCTAssertTrue(joinTime >= before - 60_000 && joinTime <= before + 60_000, "joinTime in ms: \(joinTime)")
            let user = member["user"] as? [String: Any] ?? [:]
            XCTAssertEqual(int64(user["userId"]), int64(member["userId"]), "user is the member's Profile")
        }
        // B and C are not friends: C's mobile is masked for B, A's is not.
        let cProfile = list.first { int64($0["userId"]) == c.userId }?["user"] as? [String: Any]
        XCTAssertTrue(isMasked(cProfile?["mobile"] as? String, of: c.mobile), "a non-friend member's mobile is masked")
        let aProfile = list.first { int64($0["userId"]) == a.userId }?["user"] as? [String: Any]
        XCTAssertEqual(aProfile?["mobile"] as? String, a.mobile, "a friend's is not")
    }

    // MARK: queryGroup

    func testQueryGroupFindsSubstrings() {
        let users = client.newAccounts(2, name: "Search")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        let token = uniqueToken(8)
        let latin = client.makeGroup(a, [b], name: "Hiking \(token) Club")
        let other = client.makeGroup(a, [b], name: "Chess \(token)X")
        for (query, expected) in [(token, [latin, other]), ("\(token) Cl", [latin]), ("g \(token)", [latin]),
                                  ("\(token)X", [other]), (String(token.dropFirst(2).prefix(4)), [latin, other])] {
            let reply = client.queryGroup(b, query)
            assertOK(reply, "queryGroup \(query)")
            let found = idsOf(reply.dataArray, key: "groupId")
            XCTAssertEqual(Set(found), Set(expected), "queryGroup '\(query)': \(reply.text.prefix(300))")
        }
        let one = client.queryGroup(b, "\(token) Cl").dataArray.first as? [String: Any] ?? [:]
        XCTAssertEqual(one["name"] as? String, "Hiking \(token) Club")
        XCTAssertEqual(int64(one["memberCount"]), 2)
        XCTAssertEqual(int64(one["ownerId"]), a.userId)
        XCTAssertTrue(client.queryGroup(b, token + "zz9").dataArray.isEmpty, "no match")
    }

    func testQueryGroupWithChineseNamesOfOneTwoAndMoreCharacters() {
        let users = client.newAccounts(2, name: "Chinese")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        var r = (0..<4).map { _ in rareIdeograph() }
        while Set(r).count < 4 { r = (0..<4).map { _ in rareIdeograph() } }
        let first = client.makeGroup(a, [b], name: "中文\(r[0])\(r[1])\(r[2])群")
        let second = client.makeGroup(a, [b], name: "\(r[1])\(r[2])俱乐部")
        let third = client.makeGroup(a, [b], name: "\(r[0])和\(r[3])")
        let cases: [(String, Set<Int64>, String)] = [
            (r[0], [first, third], "one character"),
            (r[3], [third], "one character, at the end"),
            ("\(r[1])\(r[2])", [first, second], "two characters"),
            ("\(r[0])\(r[1])", [first], "two characters"),
            ("\(r[0])\(r[3])", [], "two characters that are not adjacent in any name"),
            ("\(r[0])\(r[1])\(r[2])", [first], "three characters"),
            ("文\(r[0])\(r[1])\(r[2])群", [first], "five characters"),
            ("\(r[2])俱乐部", [second], "four characters"),
            ("\(r[0])和\(r[3])", [third], "the whole name"),
            ("\(r[0])和\(r[3])了", [], "longer than the name"),
        ]
        // Earlier runs may have used the same rare ideographs: only this run's groups count.
        let mine: Set<Int64> = [first, second, third]
        for (query, expected, note) in cases {
            let reply = client.queryGroup(b, query)
            assertOK(reply, "queryGroup \(query) (\(note))")
            XCTAssertEqual(Set(idsOf(reply.dataArray, key: "groupId")).intersection(mine), expected,
                           "queryGroup '\(query)' (\(note)): \(reply.text.prefix(300))")
        }
    }

    func testQueryGroupMatchesPercentAndUnderscoreLiterally() {
        let users = client.newAccounts(2, name: "Wild")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        let token = uniqueToken(8)
        let percent = client.makeGroup(a, [b], name: "\(token)100%off")
        let plain = client.makeGroup(a, [b], name: "\(token)100Xoff")
        let underscore = client.makeGroup(a, [b], name: "\(token)a_b")
        let letter = client.makeGroup(a, [b], name: "\(token)aXb")
        let backslash = client.makeGroup(a, [b], name: "\(token)c\\d")
        let rare = rareIdeograph()
        let shortPercent = client.makeGroup(a, [b], name: "\(rare)%")
        let shortLetter = client.makeGroup(a, [b], name: "\(rare)X")
        let cases: [(String, Set<Int64>)] = [
            ("\(token)100%", [percent]), ("\(token)100%off", [percent]), ("%off", [percent]),
            ("\(token)a_b", [underscore]), ("a_b", [underscore]), ("\(token)%", []), ("\(token)_", []),
            ("\(token)c\\d", [backslash]), ("\(token)c\\", [backslash]),
            ("\(rare)%", [shortPercent]), ("\(rare)_", []),
        ]
        for (query, expected) in cases {
            let reply = client.queryGroup(b, query)
            assertOK(reply, "queryGroup \(query)")
            let found = Set(idsOf(reply.dataArray, key: "groupId"))
            // Names of earlier runs may also contain "%off" or "a_b": only this run's groups count.
            let mine: Set<Int64> = [percent, plain, underscore, letter, backslash, shortPercent, shortLetter]
            XCTAssertEqual(found.intersection(mine), expected, "queryGroup '\(query)' matches literally: \(reply.text.prefix(400))")
        }
        for wildcard in ["%", "_", "%%", "__"] {
            let reply = client.queryGroup(b, wildcard)
            assertOK(reply, "queryGroup \(wildcard)")
            for item in reply.dataArray {
                let name = (item as? [String: Any])?["name"] as? String ?? ""
                XCTAssertTrue(name.contains(wildcard), "'\(wildcard)' found '\(name)'")
            }
            XCTAssertLessThanOrEqual(reply.dataArray.count, 20)
            if wildcard.count == 1 { XCTAssertFalse(reply.dataArray.isEmpty, "this run has names with '\(wildcard)'") }
        }
    }

    func testQueryGroupReturnsAtMostTwenty() {
        let users = client.newAccounts(2, name: "Twenty")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        let token = uniqueToken(8)
        let rare = rareIdeograph()
        var created: Set<Int64> = []
        for index in 0..<22 { created.insert(client.makeGroup(a, [b], name: "\(token) \(rare) \(index)")) }
        for query in [token, rare, "\(token) \(rare)"] {
            let reply = client.queryGroup(b, query)
            assertOK(reply)
            let found = idsOf(reply.dataArray, key: "groupId")
            XCTAssertEqual(found.count, 20, "queryGroup '\(query)': at most 20 of 22")
            XCTAssertEqual(Set(found).count, 20, "no group twice")
            if query != rare { XCTAssertTrue(Set(found).isSubset(of: created)) }
        }
    }

    func testQueryGroupFollowsRenamesAndDissolution() {
        let users = client.newAccounts(2, name: "Follow")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        let old = uniqueToken(8), new = uniqueToken(8)
        let rareOld = rareIdeograph(), rareNew = rareIdeograph()
        let groupId = client.makeGroup(a, [b], name: "\(old)\(rareOld)")
        XCTAssertEqual(idsOf(client.queryGroup(b, old).dataArray, key: "groupId"), [groupId])
        XCTAssertEqual(idsOf(client.queryGroup(b, rareOld).dataArray, key: "groupId").contains(groupId), true)
        assertOK(client.call(a, "/chat/updateGroup", ["groupId": String(groupId), "name": "\(new)\(rareNew)"]))
        XCTAssertEqual(idsOf(client.queryGroup(b, old).dataArray, key: "groupId"), [], "the old name is gone")
        XCTAssertFalse(idsOf(client.queryGroup(b, rareOld).dataArray, key: "groupId").contains(groupId), "also for short queries")
        XCTAssertEqual(idsOf(client.queryGroup(b, new).dataArray, key: "groupId"), [groupId])
        XCTAssertTrue(idsOf(client.queryGroup(b, rareNew).dataArray, key: "groupId").contains(groupId))
        assertOK(client.quitGroup(a, groupId))
        assertOK(client.quitGroup(b, groupId))
        XCTAssertEqual(idsOf(client.queryGroup(b, new).dataArray, key: "groupId"), [], "dissolved")
        XCTAssertFalse(idsOf(client.queryGroup(b, rareNew).dataArray, key: "groupId").contains(groupId), "dissolved, short query")
    }

    // MARK: join requests (requestFriend / acceptRequest with destType 2)

    func testJoinRequestWaitsForTheOwnerWhoAcceptsIt() {
        let users = client.newAccounts(3, name: "Join")
        let (owner, member, joiner) = (users[0], users[1], users[2])
        client.befriend(owner, member)
        let groupId = client.makeGroup(owner, [member])

        assertReply(client.requestFriend(joiner, groupId, destType: 2, message: "让我进群"), status: 200, code: 1,
                    "approval is needed by default")
        XCTAssertNil(client.readyView(joiner).group(groupId), "not a member yet")
        XCTAssertEqual(int64(client.getGroup(owner, groupId).dataObject["memberCount"]), 2)

        let ownerRequests = client.readyView(owner).requests(from: joiner.userId, groupId: groupId)
        XCTAssertEqual(ownerRequests.count, 1, "the owner's ready.requests")
        if let request = ownerRequests.first {
            XCTAssertEqual(int64(request["destType"]), 2)
            XCTAssertEqual(int64(request["groupId"]), groupId)
            XCTAssertEqual(request["message"] as? String, "让我进群")
            XCTAssertEqual(int64((request["from"] as? [String: Any])?["userId"]), joiner.userId)
            XCTAssertNotNil(int64(request["requestId"]))
            XCTAssertNotNil(int64(request["createTime"]))
        }
        XCTAssertTrue(client.readyView(member).requests.isEmpty, "only the owner sees it")
        XCTAssertTrue(client.readyView(joiner).requests.isEmpty)

        // A member who is not the owner cannot let them in.
        let byMember = client.acceptJoin(member, requester: joiner.userId, groupId: groupId)
        XCTAssertTrue((byMember.status == 403 && byMember.code == -1) || (byMember.status == 200 && byMember.code == -1),
                      "a non-owner accepts: \(byMember.status) \(byMember.text)")
        assertReply(client.acceptJoin(owner, requester: member.userId, groupId: groupId), status: 200, code: -1,
                    "no such pending request")
        assertReply(client.acceptFriend(owner, from: joiner.userId), status: 200, code: -1,
                    "a join request is not a friend request")
        XCTAssertNil(client.readyView(joiner).group(groupId))

        assertOK(client.acceptJoin(owner, requester: joiner.userId, groupId: groupId), "the owner accepts")
        let group = client.readyView(joiner).group(groupId)
        XCTAssertNotNil(group, "the requester is a member")
        XCTAssertEqual(group.flatMap { int64($0["memberCount"]) }, 3)
        XCTAssertTrue(client.readyView(owner).requests.isEmpty, "no longer pending")
        XCTAssertEqual(idsOf(client.groupMembers(joiner, groupId).dataArray, key: "userId").last, joiner.userId)
        assertReply(client.acceptJoin(owner, requester: joiner.userId, groupId: groupId), status: 200, code: -1, "twice")
        assertReply(client.requestFriend(joiner, groupId, destType: 2), status: 200, code: -1, "already a member")
        assertReply(client.requestFriend(member, groupId, destType: 2), status: 200, code: -1, "already a member")
        assertReply(client.requestFriend(owner, groupId, destType: 2), status: 200, code: -1, "the owner")
    }

    func testJoiningAGroupWithoutApprovalAndRefusals() {
        let users = client.newAccounts(4, name: "OpenJoin")
        let (owner, member, joiner, blocked) = (users[0], users[1], users[2], users[3])
        client.befriend(owner, member)
        let groupId = client.makeGroup(owner, [member])
        assertOK(client.setNeedApproval(owner, groupId, false))
        assertReply(client.requestFriend(joiner, groupId, destType: 2), status: 200, code: 2, "joined at once")
        XCTAssertEqual(client.readyView(joiner).group(groupId).flatMap { int64($0["memberCount"]) }, 3)
        XCTAssertTrue(client.readyView(owner).requests.isEmpty, "nothing pending")
        assertReply(client.requestFriend(joiner, groupId, destType: 2), status: 200, code: -1, "already a member")
        assertReply(client.requestFriend(joiner, 9_000_000_000_000_000, destType: 2), status: 200, code: -1, "no such group")

        assertOK(client.call(owner, "/chat/setBlock", ["blockId": String(blocked.userId)]))
        assertReply(client.requestFriend(blocked, groupId, destType: 2), status: 200, code: -1, "the owner blocks you")
        XCTAssertNil(client.readyView(blocked).group(groupId))
        XCTAssertEqual(int64(client.getGroup(owner, groupId).dataObject["memberCount"]), 3)
    }

    /// "Blocking withdraws their pending request from your ready.requests" and "blocks stop
    /// requests": that holds for a request to join a group you own, which is in your ready.requests too.
    func testBlockingWithdrawsAPendingJoinRequestToYourGroup() {
        let users = client.newAccounts(3, name: "JoinBlock")
        let (owner, member, joiner) = (users[0], users[1], users[2])
        client.befriend(owner, member)
        let groupId = client.makeGroup(owner, [member])
        assertReply(client.requestFriend(joiner, groupId, destType: 2), status: 200, code: 1)
        XCTAssertEqual(client.readyView(owner).requests(from: joiner.userId, groupId: groupId).count, 1)
        assertOK(client.call(owner, "/chat/setBlock", ["blockId": String(joiner.userId)]))
        XCTAssertTrue(client.readyView(owner).requests(from: joiner.userId).isEmpty,
                      "the blocked user's join request is withdrawn from the owner's ready.requests: \(client.readyView(owner).requests)")
        let accepted = client.acceptJoin(owner, requester: joiner.userId, groupId: groupId)
        assertReply(accepted, status: 200, code: -1, "no pending request is left to accept")
        XCTAssertNil(client.readyView(joiner).group(groupId), "the blocked user did not get in")
    }

    func testAnInvitedRequesterNoLongerHasAPendingJoinRequest() {
        let users = client.newAccounts(3, name: "JoinInvite")
        let (owner, member, joiner) = (users[0], users[1], users[2])
        client.befriend(owner, member)
        client.befriend(member, joiner)
        let groupId = client.makeGroup(owner, [member])
        assertReply(client.requestFriend(joiner, groupId, destType: 2), status: 200, code: 1)
        assertOK(client.addMembers(member, groupId, [joiner.userId]), "a member invites the requester")
        XCTAssertTrue(client.readyView(owner).requests.isEmpty, "the request is moot: \(client.readyView(owner).requests)")
        assertReply(client.acceptJoin(owner, requester: joiner.userId, groupId: groupId), status: 200, code: -1)
        XCTAssertEqual(int64(client.getGroup(owner, groupId).dataObject["memberCount"]), 3)
    }

    func testAPendingJoinRequestFollowsOwnership() {
        let users = client.newAccounts(3, name: "Heir")
        let (owner, heir, joiner) = (users[0], users[1], users[2])
        client.befriend(owner, heir)
        let groupId = client.makeGroup(owner, [heir])
        assertReply(client.requestFriend(joiner, groupId, destType: 2), status: 200, code: 1)
        XCTAssertTrue(client.readyView(heir).requests.isEmpty, "not the owner yet")
        assertOK(client.quitGroup(owner, groupId))
        XCTAssertEqual(client.readyView(heir).requests(from: joiner.userId, groupId: groupId).count, 1,
                       "the new owner sees the pending request")
        XCTAssertTrue(client.readyView(owner).requests.isEmpty, "the former owner does not")
        let byFormer = client.acceptJoin(owner, requester: joiner.userId, groupId: groupId)
        XCTAssertNotEqual(byFormer.code, 1, "the former owner cannot accept: \(byFormer.text)")
        assertOK(client.acceptJoin(heir, requester: joiner.userId, groupId: groupId), "the new owner accepts")
        XCTAssertNotNil(client.readyView(joiner).group(groupId))
    }
}
