import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

// Helpers for the friends, groups, events and race tests (API.md §3, §4), on top of
// StackClient.swift and TestFixtures.swift.

// MARK: - PostgreSQL through psql

/// Direct access to the stack's database with `psql`, for what the API cannot show (user_events,
/// real member counts) and for seeding many users cheaply (the 500-member cap). The connection
/// string is the `database = …` line of `$CHAT_TEST_CONFIG`.
enum StackDB {
    static func conninfo(_ stack: Stack) throws -> String {
        guard let path = stack.configPath, !path.isEmpty else { throw XCTSkip("CHAT_TEST_CONFIG is not set") }
        for line in readWholeFile(path).split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("database"), let equals = trimmed.firstIndex(of: "=") else { continue }
            guard trimmed[..<equals].trimmingCharacters(in: .whitespaces) == "database" else { continue }
            return String(trimmed[trimmed.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
        }
        throw XCTSkip("no `database =` line in \(path)")
    }

    static var psqlPath: String {
        for candidate in ["/usr/bin/psql", "/usr/local/bin/psql", "/usr/lib/postgresql/15/bin/psql"]
        where FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        return "/usr/bin/psql"
    }

    static let fieldSeparator = "\u{1F}"

    /// Runs one SQL text (which may hold several statements; the rows of the last one are
    /// returned), each row as its fields. Fails the test on a psql error.
    @discardableResult
    static func query(_ stack: Stack, _ sql: String, file: StaticString = #filePath, line: UInt = #line) throws -> [[String]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: psqlPath)
        process.arguments = [try conninfo(stack), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                             "-F", fieldSeparator, "-c", sql]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            XCTFail("psql failed (\(process.terminationStatus)): \(String(decoding: errors, as: UTF8.self)) for: \(sql.prefix(300))",
                    file: file, line: line)
            return []
        }
        return String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
            .map { $0.components(separatedBy: fieldSeparator) }
    }

    /// The first field of the first row.
    static func scalar(_ stack: Stack, _ sql: String, file: StaticString = #filePath, line: UInt = #line) throws -> String? {
        try query(stack, sql, file: file, line: line).first?.first
    }

    static func int(_ stack: Stack, _ sql: String, file: StaticString = #filePath, line: UInt = #line) throws -> Int64? {
        try scalar(stack, sql, file: file, line: line).flatMap { Int64($0) }
    }

    static func idArray(_ ids: [Int64]) -> String { "'{" + ids.map(String.init).joined(separator: ",") + "}'::bigint[]" }

    /// Inserts `count` users that cannot log in (the password hash is not a hash), and returns
    /// their ids in order. Their numbers are `+999` and 12 digits, unused by the API tests.
    static func seedUsers(_ stack: Stack, count: Int, name: String = "Seed") throws -> [Int64] {
        let prefix = "+999" + String(format: "%08d", Int.random(in: 0..<100_000_000))
        let rows = try query(stack, """
            INSERT INTO users (mobile, pwd_hash, name)
            SELECT '\(prefix)' || lpad(g::text, 4, '0'), 'seeded: no login', '\(name)' || g
            FROM generate_series(1, \(count)) AS g ORDER BY g
            RETURNING id
            """)
        return rows.compactMap { Int64($0[0]) }.sorted()
    }

    /// Makes `userId` a friend of each of `friends`, both directions.
    static func seedFriendships(_ stack: Stack, _ userId: Int64, _ friends: [Int64]) throws {
        try query(stack, """
            INSERT INTO friendships (user_id, friend_id)
            SELECT \(userId), f FROM unnest(\(idArray(friends))) AS f
            UNION ALL SELECT f, \(userId) FROM unnest(\(idArray(friends))) AS f
            ON CONFLICT DO NOTHING
            """)
    }

    /// (member_count column, real number of group_members rows, dissolved?) of a group.
    static func groupCounts(_ stack: Stack, _ groupId: Int64) throws -> (memberCount: Int64, real: Int64, dissolved: Bool)? {
        guard let row = try query(stack, """
            SELECT g.member_count, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id), g.dissolved_at IS NOT NULL
            FROM groups g WHERE g.id = \(groupId)
            """).first, row.count == 3 else { return nil }
        return (Int64(row[0]) ?? -1, Int64(row[1]) ?? -1, row[2] == "t")
    }

    static func isMember(_ stack: Stack, _ groupId: Int64, _ userId: Int64) throws -> Bool {
        try int(stack, "SELECT count(*) FROM group_members WHERE group_id = \(groupId) AND user_id = \(userId)") == 1
    }

    struct Event {
        let cursor: Int64
        let type: String
        let payloadText: String
        var payload: Any? { try? JSONSerialization.jsonObject(with: Data(payloadText.utf8), options: [.fragmentsAllowed]) }

        /// True when some number anywhere in the payload equals `id`.
        func mentions(_ id: Int64) -> Bool { Event.contains(payload, id) }

        /// True when some string anywhere in the payload equals `text`.
        func mentions(text: String) -> Bool { Event.contains(payload, text) }

        static func contains(_ value: Any?, _ id: Int64) -> Bool {
            switch value {
            case let number as NSNumber: return number.int64Value == id
            case let array as [Any]: return array.contains { contains($0, id) }
            case let object as [String: Any]: return object.values.contains { contains($0, id) }
            default: return false
            }
        }

        static func contains(_ value: Any?, _ text: String) -> Bool {
            switch value {
            case let string as String: return string == text
            case let array as [Any]: return array.contains { contains($0, text) }
            case let object as [String: Any]: return object.values.contains { contains($0, text) }
            default: return false
            }
        }
    }

    /// A user's events in cursor order.
    static func events(_ stack: Stack, _ userId: Int64, file: StaticString = #filePath, line: UInt = #line) throws -> [Event] {
        try events(stack, [userId], file: file, line: line)[userId] ?? []
    }

    /// Several users' events (one psql run), each user's in cursor order.
    static func events(_ stack: Stack, _ userIds: [Int64], file: StaticString = #filePath, line: UInt = #line) throws -> [Int64: [Event]] {
        var result: [Int64: [Event]] = [:]
        for id in userIds { result[id] = [] }
        let rows = try query(stack, """
            SELECT user_id, cursor, type, payload::text FROM user_events
            WHERE user_id = ANY(\(idArray(userIds))) ORDER BY user_id, cursor
            """, file: file, line: line)
        for row in rows where row.count >= 4 {
            guard let userId = Int64(row[0]) else { continue }
            result[userId, default: []].append(Event(cursor: Int64(row[1]) ?? -1, type: row[2],
                                                     payloadText: row[3...].joined(separator: fieldSeparator)))
        }
        return result
    }
}

// MARK: - Racing threads

final class RaceResults<T>: @unchecked Sendable {
    var results: [T?]
    let lock = NSLock()
    init(_ count: Int) { results = [T?](repeating: nil, count: count) }
}

/// Starts `count` threads, lets them all go at once, and returns their results in index order.
/// (DispatchQueue.concurrentPerform only runs as many at a time as there are CPUs.)
func raceThreads<T>(_ count: Int, _ body: @escaping (Int) -> T) -> [T] {
    let box = RaceResults<T>(count)
    let ready = DispatchSemaphore(value: 0)
    let go = DispatchSemaphore(value: 0)
    let done = DispatchGroup()
    for index in 0..<count {
        done.enter()
        let thread = Thread {
            ready.signal()
            go.wait()
            let result = body(index)
            box.lock.lock()
            box.results[index] = result
            box.lock.unlock()
            done.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    for _ in 0..<count { ready.wait() }
    for _ in 0..<count { go.signal() }
    done.wait()
    return box.results.map { $0! }
}

/// `body` for every item, `size` items at a time on racing threads, batch after batch; the
/// results in the items' order.
@discardableResult
func inBatches<Item, T>(_ items: [Item], of size: Int, _ body: @escaping (Item) -> T) -> [T] {
    var results: [T] = []
    var next = 0
    while next < items.count {
        let batch = Array(items[next..<min(next + size, items.count)])
        results += raceThreads(batch.count) { index in body(batch[index]) }
        next += batch.count
    }
    return results
}

// MARK: - The API, as the social tests use it

/// `ready`'s social parts.
struct ReadyView {
    let reply: Reply
    var data: [String: Any] { reply.dataObject }

    var friends: [[String: Any]] { data["friends"] as? [[String: Any]] ?? [] }
    var groups: [[String: Any]] { data["groups"] as? [[String: Any]] ?? [] }
    var requests: [[String: Any]] { data["requests"] as? [[String: Any]] ?? [] }
    var blocks: [Int64] { (data["blocks"] as? [Any] ?? []).compactMap(int64) }
    var tops: [Conversation] { conversations("tops") }
    var ignores: [Conversation] { conversations("ignores") }

    struct Conversation: Equatable, CustomStringConvertible {
        let destId: Int64
        let destType: Int64
        var description: String { "{\(destId), \(destType)}" }
    }

    func conversations(_ key: String) -> [Conversation] {
        (data[key] as? [[String: Any]] ?? []).map { Conversation(destId: int64($0["destId"]) ?? -1, destType: int64($0["destType"]) ?? -1) }
    }

    func friend(_ userId: Int64) -> [String: Any]? { friends.first { int64($0["userId"]) == userId } }
    func group(_ groupId: Int64) -> [String: Any]? { groups.first { int64($0["groupId"]) == groupId } }
    var friendIds: [Int64] { friends.compactMap { int64($0["userId"]) } }
    var groupIds: [Int64] { groups.compactMap { int64($0["groupId"]) } }

    /// Pending requests from `fromId` (to you, or to a group you own when `groupId` is given).
    func requests(from fromId: Int64, groupId: Int64? = nil) -> [[String: Any]] {
        requests.filter { request in
            guard int64(request["fromId"]) == fromId else { return false }
            if let groupId { return int64(request["groupId"]) == groupId }
            return true
        }
    }
}

extension StackClient {
    /// An authenticated POST as `account`.
    func call(_ account: Account, _ path: String, _ params: [String: String] = [:]) -> Reply {
        authed(path, account.token, params)
    }

    /// `count` new accounts, registered a few at a time (in index order, so ids grow with it).
    func newAccounts(_ count: Int, name: String = "Social", file: StaticString = #filePath, line: UInt = #line) -> [Account] {
        guard count > 0 else { return [] }
        return inBatches(Array(0..<count), of: 8) { index in self.newAccount(name: "\(name)\(index)", file: file, line: line) }
    }

    func readyView(_ account: Account, file: StaticString = #filePath, line: UInt = #line) -> ReadyView {
        let reply = call(account, "/chat/ready")
        XCTAssertEqual(reply.status, 200, "ready: \(reply.text.prefix(300))", file: file, line: line)
        XCTAssertEqual(reply.code, 1, "ready: \(reply.text.prefix(300))", file: file, line: line)
        return ReadyView(reply: reply)
    }

    func requestFriend(_ from: Account, _ to: Int64, destType: Int = 1, message: String? = nil) -> Reply {
        var params = ["destId": String(to), "destType": String(destType)]
        if let message { params["message"] = message }
        return call(from, "/chat/requestFriend", params)
    }

    func acceptFriend(_ account: Account, from: Int64, friendGroupId: Int64? = nil) -> Reply {
        var params = ["destId": String(from), "destType": "1"]
        if let friendGroupId { params["friendGroupId"] = String(friendGroupId) }
        return call(account, "/chat/acceptRequest", params)
    }

    func acceptJoin(_ owner: Account, requester: Int64, groupId: Int64) -> Reply {
        call(owner, "/chat/acceptRequest", ["destId": String(requester), "destType": "2", "groupId": String(groupId)])
    }

    /// a asks b, b accepts: friends (asserted).
    func befriend(_ a: Account, _ b: Account, file: StaticString = #filePath, line: UInt = #line) {
        let asked = requestFriend(a, b.userId)
        XCTAssertEqual(asked.status, 200, asked.text, file: file, line: line)
        XCTAssertEqual(asked.code, 1, "befriend: request \(asked.text)", file: file, line: line)
        let accepted = acceptFriend(b, from: a.userId)
        XCTAssertEqual(accepted.status, 200, accepted.text, file: file, line: line)
        XCTAssertEqual(accepted.code, 1, "befriend: accept \(accepted.text)", file: file, line: line)
    }

    /// `hub` befriends each of `others` (in parallel, a few at a time).
    func befriendAll(_ hub: Account, _ others: [Account], file: StaticString = #filePath, line: UInt = #line) {
        inBatches(others, of: 4) { other in self.befriend(hub, other, file: file, line: line) }
    }

    func createGroup(_ owner: Account, ids: [Int64], name: String) -> Reply {
        call(owner, "/chat/createGroup", ["ids": ids.map(String.init).joined(separator: ","), "name": name])
    }

    /// Creates a group (asserted) and returns its id.
    func makeGroup(_ owner: Account, _ members: [Account], name: String? = nil,
                   file: StaticString = #filePath, line: UInt = #line) -> Int64 {
        let reply = createGroup(owner, ids: members.map(\.userId), name: name ?? "群" + uniqueToken(6))
        XCTAssertEqual(reply.status, 200, reply.text, file: file, line: line)
        XCTAssertEqual(reply.code, 1, "createGroup: \(reply.text)", file: file, line: line)
        return int64(reply.dataObject["groupId"]) ?? 0
    }

    /// createGroup with explicit ids (for seeded users without accounts).
    func makeGroup(_ owner: Account, _ members: [Account], name: String?, ids: [Int64],
                   file: StaticString = #filePath, line: UInt = #line) -> Int64 {
        let reply = createGroup(owner, ids: members.map(\.userId) + ids, name: name ?? "Race" + uniqueToken(6))
        XCTAssertEqual(reply.status, 200, reply.text, file: file, line: line)
        XCTAssertEqual(reply.code, 1, "createGroup: \(reply.text)", file: file, line: line)
        return int64(reply.dataObject["groupId"]) ?? 0
    }

    func addMembers(_ account: Account, _ groupId: Int64, _ ids: [Int64]) -> Reply {
        call(account, "/chat/addGroupMember", ["groupId": String(groupId), "inviteIds": ids.map(String.init).joined(separator: ",")])
    }

    func quitGroup(_ account: Account, _ groupId: Int64) -> Reply {
        call(account, "/chat/quitGroup", ["groupId": String(groupId)])
    }

    func getGroup(_ account: Account, _ groupId: Int64) -> Reply {
        call(account, "/chat/getGroupById", ["groupId": String(groupId)])
    }

    func groupMembers(_ account: Account, _ groupId: Int64) -> Reply {
        call(account, "/chat/getGroupMember", ["groupId": String(groupId)])
    }

    func queryGroup(_ account: Account, _ text: String) -> Reply {
        call(account, "/chat/queryGroup", ["groupName": text])
    }

    func setNeedApproval(_ owner: Account, _ groupId: Int64, _ needed: Bool) -> Reply {
        call(owner, "/chat/updateGroup", ["groupId": String(groupId), "needApproval": needed ? "1" : "0"])
    }

    func userById(_ account: Account, _ destId: Int64) -> Reply {
        call(account, "/chat/getUserById", ["destId": String(destId)])
    }
}

/// Random lower-case letters and digits, for names no other test (or earlier run) uses.
func uniqueToken(_ length: Int = 10) -> String {
    let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
    return String((0..<length).map { _ in alphabet.randomElement()! })
}

/// A random, rarely used CJK ideograph (Extension A), so that short searches for it find only
/// the groups of this run.
func rareIdeograph() -> String {
    String(UnicodeScalar(UInt32.random(in: 0x3400...0x4DB5))!)
}

/// The ids in a getGroupMember / queryGroup answer.
func idsOf(_ items: [Any], key: String) -> [Int64] {
    items.compactMap { ($0 as? [String: Any]).flatMap { int64($0[key]) } }
}

func isMasked(_ mobile: String?, of full: String) -> Bool {
    guard let mobile else { return false }
    return mobile != full && !mobile.isEmpty && mobile.contains("*")
}
