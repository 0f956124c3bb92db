import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// Races on the social graph, each repeated: crossed friend requests end as one friendship;
/// concurrent invites never pass the 500-member cap; a member quitting while being invited leaves
/// a consistent group; concurrent quits by everyone dissolve the group once, without errors.
/// The real state is read from PostgreSQL.
final class SocialRaceTests: StackTestCase {
    typealias Account = StackClient.Account

    override func setUpWithError() throws {
        try super.setUpWithError()
        _ = try StackDB.conninfo(stack)
    }

    func assertNoServerError(_ replies: [Reply], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for reply in replies {
            XCTAssertTrue(reply.status > 0 && reply.status < 500, "\(what): HTTP \(reply.status) \(reply.text.prefix(200))",
                          file: file, line: line)
            assertIsEnvelope(reply, what, file: file, line: line)
        }
    }

    func assertConsistent(_ groupId: Int64, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws
        -> (memberCount: Int64, real: Int64, dissolved: Bool)? {
        let counts = try StackDB.groupCounts(stack, groupId)
        XCTAssertNotNil(counts, "\(what): group \(groupId) exists", file: file, line: line)
        if let counts {
            XCTAssertEqual(counts.memberCount, counts.real, "\(what): member_count equals the real member count",
                           file: file, line: line)
        }
        return counts
    }

    // MARK: crossed friend requests

    func testCrossedFriendRequestsEndAsOneFriendship() throws {
        let rounds = 12
        let users = client.newAccounts(rounds * 2, name: "Crossed")
        for round in 0..<rounds {
            let (a, b) = (users[2 * round], users[2 * round + 1])
            let replies = raceThreads(2) { index in
                index == 0 ? self.client.requestFriend(a, b.userId) : self.client.requestFriend(b, a.userId)
            }
            assertNoServerError(replies, "round \(round)")
            XCTAssertEqual(replies.compactMap(\.code).sorted(), [1, 2],
                           "round \(round): one request waits, the other makes the friendship: \(replies.map(\.text))")
            let rows = try StackDB.query(stack, """
                SELECT (SELECT count(*) FROM friendships WHERE (user_id = \(a.userId) AND friend_id = \(b.userId))
                                                        OR (user_id = \(b.userId) AND friend_id = \(a.userId))),
                       (SELECT count(*) FROM friend_requests WHERE status = 0 AND dest_type = 1
                          AND ((from_id = \(a.userId) AND to_user_id = \(b.userId)) OR (from_id = \(b.userId) AND to_user_id = \(a.userId))))
                """)
            XCTAssertEqual(rows.first, ["2", "0"], "round \(round): both directions of one friendship, nothing pending")
            XCTAssertEqual(client.readyView(a).friendIds, [b.userId], "round \(round)")
            XCTAssertEqual(client.readyView(b).friendIds, [a.userId], "round \(round)")
            XCTAssertTrue(client.readyView(a).requests.isEmpty && client.readyView(b).requests.isEmpty, "round \(round)")
        }
    }

    // MARK: the cap under concurrent invites

    func testConcurrentInvitesNeverPassTheCap() throws {
        let owner = client.newAccount(name: "CapRace")
        let seeded = try StackDB.seedUsers(stack, count: 489 + 30, name: "CapRaceSeed")
        XCTAssertEqual(seeded.count, 519)
        try StackDB.seedFriendships(stack, owner.userId, seeded)
        let base = Array(seeded.prefix(489)), extra = Array(seeded.suffix(30))

        for round in 0..<10 {
            let groupId = client.makeGroup(owner, [], name: nil, ids: base) // 490 members: room for 10
            XCTAssertEqual(try StackDB.groupCounts(stack, groupId)?.real, 490, "round \(round)")
            // Rounds 0-7: one newcomer per invite; rounds 8-9: three per invite.
            let perInvite = round < 8 ? 1 : 3
            let invites = round < 8 ? 30 : 10
            let replies = raceThreads(invites) { index in
                self.client.addMembers(owner, groupId, Array(extra[(index * perInvite)..<((index + 1) * perInvite)]))
            }
            assertNoServerError(replies, "round \(round)")
            for reply in replies {
                XCTAssertTrue(reply.status == 200 && (reply.code == 1 || reply.code == -1), "round \(round): \(reply.text)")
            }
            let counts = try assertConsistent(groupId, "round \(round)")
            if perInvite == 1 {
                XCTAssertEqual(replies.filter { $0.code == 1 }.count, 10, "round \(round): exactly ten invites fit")
                XCTAssertEqual(counts?.real, 500, "round \(round): the group is exactly full")
            } else {
                XCTAssertLessThanOrEqual(counts?.real ?? 501, 500, "round \(round)")
                XCTAssertGreaterThanOrEqual(counts?.real ?? 0, 499, "round \(round): three invites of three fit")
            }
            XCTAssertEqual(int64(client.getGroup(owner, groupId).dataObject["memberCount"]), counts?.real, "round \(round)")
        }
    }

    func testConcurrentJoinsNeverPassTheCap() throws {
        let owner = client.newAccount(name: "JoinRace")
        let joiners = client.newAccounts(6, name: "JoinRacer")
        let seeded = try StackDB.seedUsers(stack, count: 497, name: "JoinRaceSeed")
        try StackDB.seedFriendships(stack, owner.userId, seeded)
        for round in 0..<10 {
            let groupId = client.makeGroup(owner, [], name: nil, ids: seeded) // 498 members: room for 2
            assertOK(client.setNeedApproval(owner, groupId, false))
            let replies = raceThreads(joiners.count) { index in self.client.requestFriend(joiners[index], groupId, destType: 2) }
            assertNoServerError(replies, "round \(round)")
            XCTAssertEqual(replies.filter { $0.code == 2 }.count, 2, "round \(round): two join: \(replies.map(\.text))")
            XCTAssertEqual(replies.filter { $0.code == -1 }.count, 4, "round \(round): four are refused")
            let counts = try assertConsistent(groupId, "round \(round)")
            XCTAssertEqual(counts?.real, 500, "round \(round)")
        }
    }

    // MARK: quitting while being invited

    func testAMemberQuittingWhileBeingInvitedLeavesAConsistentGroup() throws {
        let users = client.newAccounts(5, name: "QuitInvite")
        let (owner, stayer, quitter, other, newcomer) = (users[0], users[1], users[2], users[3], users[4])
        client.befriendAll(owner, [stayer, quitter, other, newcomer])
        var outcomes: [Bool] = []
        for round in 0..<12 {
            let groupId = client.makeGroup(owner, [stayer, quitter, other])
            // The quitter leaves while the owner invites them back (and a newcomer), and another member leaves too.
            let replies = raceThreads(3) { index -> Reply in
                switch index {
                case 0: return self.client.quitGroup(quitter, groupId)
                case 1: return self.client.addMembers(owner, groupId, [quitter.userId, newcomer.userId])
                default: return self.client.quitGroup(other, groupId)
                }
            }
            assertNoServerError(replies, "round \(round)")
            for reply in replies { assertOK(reply, "round \(round)") }
            let counts = try assertConsistent(groupId, "round \(round)")
            let quitterIn = try StackDB.isMember(stack, groupId, quitter.userId)
            outcomes.append(quitterIn)
            XCTAssertEqual(counts?.real, quitterIn ? 4 : 3, "round \(round): owner, stayer, newcomer, and perhaps the quitter")
            XCTAssertTrue(try StackDB.isMember(stack, groupId, newcomer.userId), "round \(round)")
            XCTAssertFalse(try StackDB.isMember(stack, groupId, other.userId), "round \(round)")
            // Every view agrees on the quitter.
            XCTAssertEqual(client.readyView(quitter).group(groupId) != nil, quitterIn, "round \(round): the quitter's ready")
            XCTAssertEqual(jsonBoolean(client.getGroup(quitter, groupId), key: "isMember"), quitterIn, "round \(round)")
            let listed = idsOf(client.groupMembers(owner, groupId).dataArray, key: "userId")
            XCTAssertEqual(listed.contains(quitter.userId), quitterIn, "round \(round): getGroupMember")
            XCTAssertEqual(Int64(listed.count), counts?.real, "round \(round)")
            XCTAssertEqual(client.readyView(owner).group(groupId).flatMap { int64($0["memberCount"]) }, counts?.real,
                           "round \(round): memberCount in ready")
        }
        print("quitter ended inside the group in \(outcomes.filter { $0 }.count) of \(outcomes.count) rounds")
    }

    // MARK: everyone quits at once

    func testConcurrentQuitsByAllMembersDissolveTheGroupOnce() throws {
        let users = client.newAccounts(8, name: "AllQuit")
        let owner = users[0], members = Array(users.dropFirst())
        client.befriendAll(owner, members)
        for round in 0..<10 {
            let name = "AllQuit" + uniqueToken()
            let groupId = client.makeGroup(owner, members, name: name)
            let replies = raceThreads(users.count) { index in self.client.quitGroup(users[index], groupId) }
            assertNoServerError(replies, "round \(round)")
            for reply in replies { assertOK(reply, "round \(round): every member leaves") }
            let dissolvedFlags = replies.compactMap { ($0.dataObject["dissolved"] as? NSNumber)?.boolValue }
            if dissolvedFlags.count == replies.count {
                XCTAssertEqual(dissolvedFlags.filter { $0 }.count, 1, "round \(round): exactly one quit dissolves the group")
            }
            let counts = try StackDB.groupCounts(stack, groupId)
            XCTAssertEqual(counts?.real, 0, "round \(round)")
            XCTAssertEqual(counts?.memberCount, 0, "round \(round)")
            XCTAssertEqual(counts?.dissolved, true, "round \(round): dissolved")
            assertReply(client.getGroup(owner, groupId), status: 200, code: -1, "round \(round): gone")
            XCTAssertFalse(idsOf(client.queryGroup(owner, name).dataArray, key: "groupId").contains(groupId))
            let again = raceThreads(2) { index in self.client.quitGroup(users[index], groupId) }
            assertNoServerError(again, "round \(round): quitting a dissolved group")
            XCTAssertEqual(again.map(\.code), [-1, -1], "round \(round)")
        }
    }

    /// Crossed changes: A leaves a group where B stays while B leaves a group where A stays, and A
    /// accepts B's friend request while B leaves a group where A stays. Each records events for the
    /// other user. No error, consistent groups.
    func testCrossedChangesNeverFail() throws {
        let stats = try runCrossedChanges(rounds: 3)
        XCTAssertEqual(stats.rounds, 3, "every round of crossed changes ran")
        print("crossed changes: slowest round \(String(format: "%.3f", stats.slowest)) s")
    }

    /// Beyond the contract, when the stack's PostgreSQL log is at hand: the crossed changes above
    /// must not deadlock. PostgreSQL breaks a deadlock only after `deadlock_timeout` (1 s by
    /// default), stalling both requests, and the server then retries the victim (a few times).
    func testCrossedChangesDoNotDeadlock() throws {
        // scripts/stack.sh keeps it at pg/postgresql.log.
        guard let pgLog = stack.stackDir.map({ $0 + "/pg/postgresql.log" }), FileManager.default.fileExists(atPath: pgLog)
        else { throw XCTSkip("no PostgreSQL log under $CHAT_TEST_STACK_DIR") }
        func deadlocks() -> Int { readWholeFile(pgLog).components(separatedBy: "deadlock detected").count - 1 }
        let before = deadlocks()
        // Up to 8 rounds, stopping at the first deadlock (each costs a second).
        let stats = try runCrossedChanges(rounds: 8, until: { deadlocks() > before })
        let broken = deadlocks() - before
        XCTAssertEqual(broken, 0, """
            PostgreSQL broke \(broken) deadlock(s) in \(stats.rounds) rounds of crossed changes (slowest round \(String(format: "%.3f", stats.slowest)) s): \
            a transaction that appends events to one user and then, in a second EventLog.append, to another \
            locks user_event_cursors rows in its own order (quitGroup: the quitter, then the rest; makeFriends: me, then them)
            """)
    }

    func runCrossedChanges(rounds: Int, until stop: () -> Bool = { false },
                           file: StaticString = #filePath, line: UInt = #line) throws -> (rounds: Int, slowest: Double) {
        let users = client.newAccounts(3, name: "Crossing")
        let (a, b, c) = (users[0], users[1], users[2])
        client.befriendAll(a, [b, c])
        client.befriend(b, c)
        var slowest = 0.0
        var played = 0
        for round in 0..<rounds {
            if stop() { break }
            played += 1
            let first = client.makeGroup(a, [b, c])
            let second = client.makeGroup(b, [a, c])
            var started = Date()
            let quits = raceThreads(2) { index in
                index == 0 ? self.client.quitGroup(a, second) : self.client.quitGroup(b, first)
            }
            slowest = max(slowest, Date().timeIntervalSince(started))
            assertNoServerError(quits, "round \(round): crossed quits", file: file, line: line)
            for reply in quits { assertOK(reply, "round \(round): crossed quits", file: file, line: line) }
            _ = try assertConsistent(first, "round \(round)", file: file, line: line)
            _ = try assertConsistent(second, "round \(round)", file: file, line: line)

            // A accepts a new friend's request while that friend leaves a group A stays in.
            let newcomer = client.newAccount(name: "Crossing\(round)")
            client.befriend(a, newcomer)
            let third = client.makeGroup(a, [newcomer])
            assertOK(client.call(a, "/chat/delFriend", ["destId": String(newcomer.userId)]))
            assertReply(client.requestFriend(newcomer, a.userId), status: 200, code: 1, file: file, line: line)
            started = Date()
            let crossed = raceThreads(2) { index in
                index == 0 ? self.client.acceptFriend(a, from: newcomer.userId) : self.client.quitGroup(newcomer, third)
            }
            slowest = max(slowest, Date().timeIntervalSince(started))
            assertNoServerError(crossed, "round \(round): accept while quitting", file: file, line: line)
            for reply in crossed { assertOK(reply, "round \(round): accept while quitting", file: file, line: line) }
            _ = try assertConsistent(third, "round \(round)", file: file, line: line)
        }
        return (played, slowest)
    }
}
