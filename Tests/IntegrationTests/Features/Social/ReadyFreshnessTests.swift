import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// `ready`'s `requests`, `groups` and `unread` (API.md §2.6) show every change in the very next
/// answer, whichever worker process serves it. The stack runs several worker processes, and each
/// may keep a process-local copy of these parts; so every look reads `ready` several times in a row
/// and expects the same answer each time, both BEFORE a change (which is what fills such copies in
/// the workers) and AFTER it (when exact values are expected: what changed changed, the rest stayed).
///
/// Most changes are made by somebody other than the viewer (a requester editing their profile, a
/// member joining the viewer's group, a friend sending a message): the viewer's own state did not
/// change, only what the lists are rendered from did.
final class ReadyFreshnessTests: StackTestCase {
    typealias Account = StackClient.Account

    /// Every look reads `ready` this many times in a row and expects the same answer each time.
    static let readsPerLook = 4

    // MARK: ready's three parts, as comparable values

    /// A Profile (a request's `from`): each field as text (numbers too), by its JSON name.
    typealias Person = ListFreshnessTests.ProfileLine

    /// One entry of ready.requests.
    struct RequestLine: Equatable, CustomStringConvertible {
        var requestId: Int64
        var fromId: Int64
        var destType: Int64
        /// nil when the answer has `"groupId": null` (a friend request); -1 when the key is missing.
        var groupId: Int64?
        var message: String
        var createTime: Int64
        var from: Person

        init(_ object: [String: Any]) {
            requestId = int64(object["requestId"]) ?? -1
            fromId = int64(object["fromId"]) ?? -1
            destType = int64(object["destType"]) ?? -1
            groupId = object.keys.contains("groupId") ? int64(object["groupId"]) : -1
            message = object["message"] as? String ?? "<no message>"
            createTime = int64(object["createTime"]) ?? -1
            from = Person(object["from"] as? [String: Any] ?? [:])
        }

        var description: String {
            "[request \(requestId) from \(fromId) type \(destType) group \(groupId.map(String.init) ?? "null") '\(message)' at \(createTime) {\(from)}]"
        }
    }

    /// One entry of ready.groups.
    struct GroupLine: Equatable, CustomStringConvertible {
        var groupId: Int64
        var name: String
        /// nil for `"ownerId": null`.
        var ownerId: Int64?
        var memberCount: Int64
        var headUrls: [String]
        var myCard: String

        init(groupId: Int64, name: String, ownerId: Int64?, memberCount: Int64, headUrls: [String] = [], myCard: String = "") {
            (self.groupId, self.name, self.ownerId, self.memberCount, self.headUrls, self.myCard) =
                (groupId, name, ownerId, memberCount, headUrls, myCard)
        }

        init(_ object: [String: Any]) {
            self.init(groupId: int64(object["groupId"]) ?? -1, name: object["name"] as? String ?? "<no name>",
                      ownerId: int64(object["ownerId"]), memberCount: int64(object["memberCount"]) ?? -1,
                      headUrls: (object["headUrls"] as? [Any] ?? []).map { $0 as? String ?? "<not a string>" },
                      myCard: object["myCard"] as? String ?? "<no myCard>")
        }

        var description: String {
            "[group \(groupId) '\(name)' owner=\(ownerId.map(String.init) ?? "null") count=\(memberCount) heads=\(headUrls) myCard='\(myCard)']"
        }
    }

    /// One entry of ready.unread.
    struct UnreadLine: Equatable, CustomStringConvertible {
        var destId: Int64
        var destType: Int64
        var count: Int64
        var lastSeq: Int64

        init(destId: Int64, destType: Int64, count: Int64, lastSeq: Int64) {
            (self.destId, self.destType, self.count, self.lastSeq) = (destId, destType, count, lastSeq)
        }

        init(_ object: [String: Any]) {
            self.init(destId: int64(object["destId"]) ?? -1, destType: int64(object["destType"]) ?? -1,
                      count: int64(object["count"]) ?? -1, lastSeq: int64(object["lastSeq"]) ?? -1)
        }

        /// A direct conversation with `userId`.
        static func user(_ userId: Int64, count: Int64, lastSeq: Int64) -> UnreadLine {
            UnreadLine(destId: userId, destType: 1, count: count, lastSeq: lastSeq)
        }

        static func group(_ groupId: Int64, count: Int64, lastSeq: Int64) -> UnreadLine {
            UnreadLine(destId: groupId, destType: 2, count: count, lastSeq: lastSeq)
        }

        var description: String { "[\(destType == 1 ? "user" : "group") \(destId): \(count) unread, last \(lastSeq)]" }
    }

    /// The three parts of one `ready` answer.
    struct Look: Equatable, CustomStringConvertible {
        var requests: [RequestLine]
        var groups: [GroupLine]
        var unread: [UnreadLine]

        var description: String {
            "\n  requests: \(requests)\n  groups: \(groups)\n  unread: \(unread)"
        }

        func request(from userId: Int64) -> RequestLine? { requests.first { $0.fromId == userId } }
        func group(_ groupId: Int64) -> GroupLine? { groups.first { $0.groupId == groupId } }

        mutating func editGroup(_ groupId: Int64, _ edit: (inout GroupLine) -> Void) {
            for index in groups.indices where groups[index].groupId == groupId { edit(&groups[index]) }
        }

        mutating func editRequests(from userId: Int64, _ edit: (inout RequestLine) -> Void) {
            for index in requests.indices where requests[index].fromId == userId { edit(&requests[index]) }
        }

        mutating func dropRequests(from userId: Int64) { requests.removeAll { $0.fromId == userId } }
        mutating func dropGroup(_ groupId: Int64) { groups.removeAll { $0.groupId == groupId } }
    }

    // MARK: reading

    /// One `ready` answer's three parts (each must be an array of readable entries).
    func readOnce(_ viewer: Account, file: StaticString, line: UInt) -> Look {
        let data = client.readyView(viewer, file: file, line: line).data
        func objects(_ key: String) -> [[String: Any]] {
            guard let items = data[key] as? [Any] else {
                XCTFail("ready of \(viewer.userId) has no \(key) array: \(data[key] ?? "nil")", file: file, line: line)
                return []
            }
            let objects = items.compactMap { $0 as? [String: Any] }
            XCTAssertEqual(objects.count, items.count, "ready.\(key) of \(viewer.userId) holds a non-object: \(items)", file: file, line: line)
            return objects
        }
        return Look(requests: objects("requests").map(RequestLine.init), groups: objects("groups").map(GroupLine.init),
                    unread: objects("unread").map(UnreadLine.init))
    }

    /// `viewer`'s ready, read `readsPerLook` times in a row: every read must agree with the first.
    func look(_ viewer: Account, file: StaticString = #filePath, line: UInt = #line) -> Look {
        let first = readOnce(viewer, file: file, line: line)
        for read in 2...Self.readsPerLook {
            let again = readOnce(viewer, file: file, line: line)
            XCTAssertEqual(again.requests, first.requests, "ready.requests of \(viewer.userId): read \(read) differs from read 1",
                           file: file, line: line)
            XCTAssertEqual(again.groups, first.groups, "ready.groups of \(viewer.userId): read \(read) differs from read 1",
                           file: file, line: line)
            XCTAssertEqual(again.unread, first.unread, "ready.unread of \(viewer.userId): read \(read) differs from read 1",
                           file: file, line: line)
        }
        // Documented orders: requests newest first; unread by destType, then destId.
        XCTAssertEqual(first.requests.map(\.createTime), first.requests.map(\.createTime).sorted(by: >),
                       "ready.requests of \(viewer.userId) must be newest first", file: file, line: line)
        XCTAssertEqual(first.unread.map { [$0.destType, $0.destId] },
                       first.unread.map { [$0.destType, $0.destId] }.sorted { ($0[0], $0[1]) < ($1[0], $1[1]) },
                       "ready.unread of \(viewer.userId) must be ordered by destType, then destId", file: file, line: line)
        return first
    }

    /// After a change: `viewer`'s ready is exactly `expected` (all three parts).
    func assertLook(_ viewer: Account, _ expected: Look, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(look(viewer, file: file, line: line), expected, "\(context): ready of \(viewer.userId)", file: file, line: line)
    }

    func assertRequests(_ viewer: Account, _ expected: [RequestLine], _ context: String,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(look(viewer, file: file, line: line).requests, expected, "\(context): ready.requests of \(viewer.userId)",
                       file: file, line: line)
    }

    func assertGroups(_ viewer: Account, _ expected: [GroupLine], _ context: String,
                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(look(viewer, file: file, line: line).groups, expected, "\(context): ready.groups of \(viewer.userId)",
                       file: file, line: line)
    }

    func assertUnread(_ viewer: Account, _ expected: [UnreadLine], _ context: String,
                      file: StaticString = #filePath, line: UInt = #line) {
        // In the documented order (user ids need not grow with the order the users were made in).
        let ordered = expected.sorted { ($0.destType, $0.destId) < ($1.destType, $1.destId) }
        XCTAssertEqual(look(viewer, file: file, line: line).unread, ordered, "\(context): ready.unread of \(viewer.userId)",
                       file: file, line: line)
    }

    // MARK: changes

    func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// `from` asks `to` for friendship; the request waits (code 1, asserted). Its requestId.
    @discardableResult
    func ask(_ from: Account, _ to: Account, message: String? = nil, file: StaticString = #filePath, line: UInt = #line) -> Int64 {
        let reply = client.requestFriend(from, to.userId, message: message)
        assertReply(reply, status: 200, code: 1, "\(from.userId) asks \(to.userId)", file: file, line: line)
        return int64(reply.dataObject["requestId"]) ?? -1
    }

    /// `from` asks to join the group; the request waits for the owner (code 1, asserted). Its requestId.
    @discardableResult
    func askToJoin(_ from: Account, _ groupId: Int64, message: String? = nil, file: StaticString = #filePath, line: UInt = #line) -> Int64 {
        let reply = client.requestFriend(from, groupId, destType: 2, message: message)
        assertReply(reply, status: 200, code: 1, "\(from.userId) asks to join \(groupId)", file: file, line: line)
        return int64(reply.dataObject["requestId"]) ?? -1
    }

    /// The mobile as others than friends see it (API.md §2.11): `+86*******5678`.
    func masked(_ mobile: String) -> String {
        let digits = Array(mobile.dropFirst())
        let shown = digits.count / 2
        return "+" + String(digits.prefix(shown - 4)) + String(repeating: "*", count: digits.count - shown)
            + String(digits.suffix(4))
    }

    /// A request that has just appeared: its fields are those of the ask, and `from` is the
    /// requester's profile as a new user has it (only the name set), with the mobile masked.
    func assertNewRequest(_ request: RequestLine?, id: Int64, from: Account, name: String, groupId: Int64?, message: String,
                          askedAround window: ClosedRange<Int64>, file: StaticString = #filePath, line: UInt = #line) {
        guard let request else { return XCTFail("no request from \(from.userId)", file: file, line: line) }
        XCTAssertEqual(request.requestId, id, "requestId", file: file, line: line)
        XCTAssertEqual(request.fromId, from.userId, "fromId", file: file, line: line)
        XCTAssertEqual(request.destType, groupId == nil ? 1 : 2, "destType", file: file, line: line)
        XCTAssertEqual(request.groupId, groupId, "groupId", file: file, line: line)
        XCTAssertEqual(request.message, message, "message", file: file, line: line)
        // The database's clock and the test's are one machine's; allow for rounding and slow hosts.
        XCTAssertTrue((window.lowerBound - 2000)...(window.upperBound + 2000) ~= request.createTime,
                      "createTime \(request.createTime) not around \(window)", file: file, line: line)
        let expected: [String: String] = ["userId": String(from.userId), "mobile": masked(from.mobile), "name": name,
                                          "nickName": "", "headUrl": "", "sex": "", "sign": "", "province": "", "city": "",
                                          "isAuth": "0"]
        XCTAssertEqual(request.from.fields, expected, "from: the requester's profile, mobile masked", file: file, line: line)
    }

    func setHead(_ account: Account, _ url: String, file: StaticString = #filePath, line: UInt = #line) {
        assertOK(client.call(account, "/chat/updateHead", ["headUrl": url]), "updateHead by \(account.userId)", file: file, line: line)
    }

    func avatar() -> String { "https://example.com/ready/\(uniqueToken(12)).png" }

    func rename(_ owner: Account, _ groupId: Int64, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        assertOK(client.call(owner, "/chat/updateGroup", ["groupId": String(groupId), "name": name]), "rename \(groupId)",
                 file: file, line: line)
    }

    func quit(_ account: Account, _ groupId: Int64, dissolves: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        let reply = client.quitGroup(account, groupId)
        assertOK(reply, "\(account.userId) quits \(groupId)", file: file, line: line)
        XCTAssertEqual(jsonBoolean(reply, key: "dissolved"), dissolves, "quitGroup's dissolved: \(reply.text)", file: file, line: line)
    }

    /// `count` messages from `from` to the user or group, one after another; their seqs.
    @discardableResult
    func send(_ from: Account, to destId: Int64, destType: Int = 1, _ count: Int = 1,
              file: StaticString = #filePath, line: UInt = #line) -> [Int64] {
        (0..<count).map { index in
            client.msgSend(from, to: destId, destType: destType, content: "消息 \(index) " + uniqueToken(6), file: file, line: line)?.seq ?? -1
        }
    }

    func markRead(_ account: Account, _ destId: Int64, destType: Int = 1, seq: Int64,
                  file: StaticString = #filePath, line: UInt = #line) {
        assertOK(client.msgMarkRead(account, destId, destType: destType, seq: seq),
                 "markRead \(destId)/\(destType) to \(seq) by \(account.userId)", file: file, line: line)
    }

    /// Join times and send times are compared in milliseconds: a pause on either side of a join
    /// keeps a message sent just before (after) it from sharing its millisecond.
    func pauseAroundJoin() { Thread.sleep(forTimeInterval: 0.03) }

    // MARK: requests

    func testReadyRequestsShowNewFriendRequestsAndRepeatedAsksAtOnce() {
        let users = client.newAccounts(4, name: "RqNew")
        let (a, b, c, f) = (users[0], users[1], users[2], users[3])
        let empty = Look(requests: [], groups: [], unread: [])
        for user in users { assertLook(user, empty, "new users") }

        var window = nowMillis()...nowMillis()
        let fromB = ask(b, a, message: "你好，我是 B")
        window = window.lowerBound...nowMillis()
        var expected = look(a)
        XCTAssertEqual(expected.requests.count, 1, "after B asked: \(expected)")
        assertNewRequest(expected.request(from: b.userId), id: fromB, from: b, name: "RqNew1", groupId: nil,
                         message: "你好，我是 B", askedAround: window)
        XCTAssertEqual(expected.groups, [])
        XCTAssertEqual(expected.unread, [])
        assertLook(b, empty, "the requester's own ready shows nothing of their request")

        window = nowMillis()...nowMillis()
        let fromC = ask(c, a)
        window = window.lowerBound...nowMillis()
        let afterC = look(a)
        XCTAssertEqual(afterC.requests.map(\.fromId), [c.userId, b.userId], "newest first")
        assertNewRequest(afterC.request(from: c.userId), id: fromC, from: c, name: "RqNew2", groupId: nil, message: "", askedAround: window)
        XCTAssertEqual(afterC.request(from: b.userId), expected.request(from: b.userId), "B's request is as it was")
        expected = afterC

        // B asks again: the same request, with the new message and time, first again.
        let again = ask(b, a, message: "再问一次")
        XCTAssertEqual(again, fromB, "asking again keeps the requestId")
        let afterAgain = look(a)
        XCTAssertEqual(afterAgain.requests.map(\.fromId), [b.userId, c.userId], "B's repeated ask is the newest")
        let bAgain = afterAgain.request(from: b.userId)
        XCTAssertEqual(bAgain?.message, "再问一次")
        XCTAssertGreaterThanOrEqual(bAgain?.createTime ?? -1, expected.request(from: c.userId)?.createTime ?? Int64.max,
                                    "createTime is the time of the latest ask")
        expected.editRequests(from: b.userId) {
            $0.message = "再问一次"
            $0.createTime = bAgain?.createTime ?? -1
        }
        expected.requests = [expected.request(from: b.userId), expected.request(from: c.userId)].compactMap { $0 }
        XCTAssertEqual(afterAgain, expected, "only B's message and time changed")

        // A's own request waits in F's ready, not in A's.
        window = nowMillis()...nowMillis()
        let fromA = ask(a, f, message: "加个好友")
        window = window.lowerBound...nowMillis()
        assertLook(a, expected, "after A asked F")
        let fLook = look(f)
        XCTAssertEqual(fLook.requests.count, 1)
        assertNewRequest(fLook.request(from: a.userId), id: fromA, from: a, name: "RqNew0", groupId: nil, message: "加个好友",
                         askedAround: window)
    }

    func testReadyRequestsDropSettledAndWithdrawnFriendRequestsAtOnce() {
        let users = client.newAccounts(6, name: "RqGone")
        let (a, b, c, d, e, g) = (users[0], users[1], users[2], users[3], users[4], users[5])
        var ids: [Int64: Int64] = [:]
        for asker in [b, c, d, e, g] { ids[asker.userId] = ask(asker, a, message: "from \(asker.userId)") }
        var expected = look(a)
        XCTAssertEqual(expected.requests.map(\.fromId), [g, e, d, c, b].map(\.userId), "newest first")
        XCTAssertEqual(expected.requests.map(\.requestId), [g, e, d, c, b].map { ids[$0.userId] ?? 0 })
        XCTAssertEqual(expected.requests.map(\.message), [g, e, d, c, b].map { "from \($0.userId)" })

        // Accepted: the request is settled.
        assertOK(client.acceptFriend(a, from: c.userId))
        expected.dropRequests(from: c.userId)
        assertLook(a, expected, "after A accepted C")
        assertRequests(c, [], "C's ready")

        // A blocks B: B's request is withdrawn.
        assertOK(client.call(a, "/chat/setBlock", ["blockId": String(b.userId)]))
        expected.dropRequests(from: b.userId)
        assertLook(a, expected, "after A blocked B")

        // The requester D blocks A: D's request is withdrawn too (A did nothing).
        assertOK(client.call(d, "/chat/setBlock", ["blockId": String(a.userId)]))
        expected.dropRequests(from: d.userId)
        assertLook(a, expected, "after the requester D blocked A")

        // A asks E, who had asked A: friends at once, E's request is settled.
        assertReply(client.requestFriend(a, e.userId), status: 200, code: 2, "crossed requests")
        expected.dropRequests(from: e.userId)
        assertLook(a, expected, "after A asked E back")
        assertRequests(e, [], "E's ready: nothing pending either way")

        // needAuth 0 leaves what is pending; G asking again then makes them friends at once.
        assertOK(client.call(a, "/chat/updatePrivateSetting", ["needAuth": "0"]))
        assertLook(a, expected, "after A stopped requiring approval: G's request still waits")
        XCTAssertEqual(expected.requests.map(\.fromId), [g.userId])
        assertReply(client.requestFriend(g, a.userId), status: 200, code: 2, "G asks again: friends at once")
        expected.dropRequests(from: g.userId)
        assertLook(a, expected, "after G became A's friend")
        XCTAssertEqual(expected.requests, [])
    }

    func testReadyRequestsShowTheRequestersProfileChangesAtOnce() {
        let users = client.newAccounts(4, name: "RqProf")
        let (a, b, c, m) = (users[0], users[1], users[2], users[3])
        client.befriend(a, m)
        let groupId = client.makeGroup(a, [m])
        ask(b, a, message: "好友请求")
        askToJoin(c, groupId, message: "入群请求")
        var expected = look(a)
        XCTAssertEqual(expected.requests.map(\.fromId), [c.userId, b.userId])
        XCTAssertEqual(expected.request(from: c.userId)?.groupId, groupId)
        XCTAssertEqual(expected.request(from: b.userId)?.from["name"], "RqProf1")
        XCTAssertEqual(expected.request(from: c.userId)?.from["mobile"], masked(c.mobile))

        // B, one field at a time; then an avatar, twice.
        for (param, value) in [("nickName", "阿B"), ("name", "Bee"), ("sign", "等你通过"), ("city", "杭州"),
                               ("province", "浙江"), ("sex", "女"), ("nickName", "阿B 2")] {
            assertOK(client.call(b, "/chat/updateProfile", [param: value]))
            expected.editRequests(from: b.userId) { $0.from[param] = value }
            assertLook(a, expected, "after B's updateProfile of \(param)")
        }
        for head in [avatar(), avatar()] {
            setHead(b, head)
            expected.editRequests(from: b.userId) { $0.from["headUrl"] = head }
            assertLook(a, expected, "after B's updateHead")
        }

        // The join requester C: two fields at once, then an avatar.
        assertOK(client.call(c, "/chat/updateProfile", ["name": "Cee", "nickName": "小C"]))
        expected.editRequests(from: c.userId) { ($0.from["name"], $0.from["nickName"]) = ("Cee", "小C") }
        assertLook(a, expected, "after C's updateProfile")
        let cHead = avatar()
        setHead(c, cHead)
        expected.editRequests(from: c.userId) { $0.from["headUrl"] = cHead }
        assertLook(a, expected, "after C's updateHead")

        // The viewer's own changes: the requests stay (only the group's avatars change).
        assertOK(client.call(a, "/chat/updateProfile", ["nickName": "群主A"]))
        let aHead = avatar()
        setHead(a, aHead)
        expected.editGroup(groupId) { $0.headUrls = [aHead] }
        assertLook(a, expected, "after A's own changes")
        XCTAssertEqual(expected.request(from: b.userId)?.from.fields,
                       ["userId": String(b.userId), "mobile": masked(b.mobile), "name": "Bee", "nickName": "阿B 2",
                        "headUrl": expected.request(from: b.userId)?.from["headUrl"] ?? "?", "sex": "女", "sign": "等你通过",
                        "province": "浙江", "city": "杭州", "isAuth": "0"])
    }

    /// isAuth is part of `from` too. A user under review (what updateAuth does; its verification code
    /// would cost a minute's wait) is set through PostgreSQL, then approved by the operator command.
    func testReadyRequestsShowTheRequestersVerificationAtOnce() throws {
        let users = client.newAccounts(4, name: "RqAuth")
        let (a, b, c, m) = (users[0], users[1], users[2], users[3])
        client.befriend(a, m)
        let groupId = client.makeGroup(a, [m])
        ask(b, a)
        askToJoin(c, groupId)
        var expected = look(a)
        XCTAssertEqual(expected.requests.map { [$0.fromId, Int64($0.from["isAuth"]) ?? -1] }, [[c.userId, 0], [b.userId, 0]])

        for requester in [b, c] {
            try StackDB.query(stack, "UPDATE users SET auth_status = 1, updated_at = now() WHERE id = \(requester.userId)")
            expected.editRequests(from: requester.userId) { $0.from["isAuth"] = "1" }
            assertLook(a, expected, "after \(requester.userId)'s verification went under review")
            let decided = try runOperatorCommand(stack, ["admin", "auth", "approve", String(requester.userId)])
            XCTAssertEqual(decided.status, 0, "admin auth approve: \(decided.output)")
            expected.editRequests(from: requester.userId) { $0.from["isAuth"] = "2" }
            assertLook(a, expected, "after \(requester.userId)'s verification was approved")
        }
    }

    func testAPendingJoinRequestMovesToTheNewOwnersReadyAtOnce() {
        let users = client.newAccounts(6, name: "RqHeir")
        let (o, h, m, j, x, y) = (users[0], users[1], users[2], users[3], users[4], users[5])
        client.befriendAll(o, [h, m])
        let groupId = client.makeGroup(o, [h, m])
        ask(y, o, message: "Y → O")
        var window = nowMillis()...nowMillis()
        let joinId = askToJoin(j, groupId, message: "让我进群")
        window = window.lowerBound...nowMillis()
        ask(x, h, message: "X → H")

        let oBefore = look(o)
        XCTAssertEqual(oBefore.requests.map(\.fromId), [j.userId, y.userId], "O owns the group: J's join request and Y's friend request")
        let joinRequest = oBefore.request(from: j.userId)
        assertNewRequest(joinRequest, id: joinId, from: j, name: "RqHeir3", groupId: groupId, message: "让我进群", askedAround: window)
        guard let joinRequest, let yRequest = oBefore.request(from: y.userId) else { return }
        let hBefore = look(h)
        XCTAssertEqual(hBefore.requests.map(\.fromId), [x.userId], "H is not the owner yet")
        guard let xRequest = hBefore.request(from: x.userId) else { return }
        assertRequests(m, [], "M is a member only")
        assertRequests(j, [], "the requester")

        // O leaves: H has been in longest and decides now.
        quit(o, groupId)
        assertRequests(o, [yRequest], "after O left: only the friend request")
        assertRequests(h, [xRequest, joinRequest], "after O left: H owns the group (X's request is newer)")
        assertRequests(m, [], "after O left")
        XCTAssertEqual(look(h).group(groupId)?.ownerId, h.userId)

        // H leaves: M is the last and the owner.
        quit(h, groupId)
        assertRequests(h, [xRequest], "after H left")
        assertRequests(m, [joinRequest], "after H left: M owns the group")
        assertRequests(o, [yRequest], "after H left")

        // M leaves: the group is dissolved and the join request withdrawn.
        quit(m, groupId, dissolves: true)
        for (viewer, requests) in [(m, []), (h, [xRequest]), (o, [yRequest]), (j, [])] as [(Account, [RequestLine])] {
            assertRequests(viewer, requests, "after the group was dissolved")
        }
        assertReply(client.acceptJoin(m, requester: j.userId, groupId: groupId), status: 200, code: -1, "no such group")
    }

    func testAcceptingAndSettlingJoinRequestsRemoveThemAtOnce() {
        let users = client.newAccounts(6, name: "RqJoin")
        let (o, m, j1, j2, j3, j4) = (users[0], users[1], users[2], users[3], users[4], users[5])
        client.befriend(o, m)
        client.befriend(m, j3)
        let name = "入群" + uniqueToken(6)
        let groupId = client.makeGroup(o, [m], name: name)
        var ids: [Int64: Int64] = [:]
        for joiner in [j1, j2, j3, j4] { ids[joiner.userId] = askToJoin(joiner, groupId, message: "join \(joiner.userId)") }
        var expected = look(o)
        XCTAssertEqual(expected.requests.map(\.fromId), [j4, j3, j2, j1].map(\.userId))
        XCTAssertEqual(expected.requests.map(\.requestId), [j4, j3, j2, j1].map { ids[$0.userId] ?? 0 })
        XCTAssertEqual(expected.requests.map(\.groupId), [groupId, groupId, groupId, groupId])
        XCTAssertEqual(expected.groups, [GroupLine(groupId: groupId, name: name, ownerId: o.userId, memberCount: 2)])
        XCTAssertEqual(expected.unread, [])
        assertRequests(m, [], "a member who is not the owner")

        // The owner accepts J1.
        assertOK(client.acceptJoin(o, requester: j1.userId, groupId: groupId))
        expected.dropRequests(from: j1.userId)
        expected.editGroup(groupId) { $0.memberCount = 3 }
        assertLook(o, expected, "after O accepted J1")
        assertGroups(j1, [GroupLine(groupId: groupId, name: name, ownerId: o.userId, memberCount: 3)], "J1 is a member")
        assertRequests(j1, [], "J1")

        // A member invites J3: J3's request is moot.
        assertOK(client.addMembers(m, groupId, [j3.userId]))
        expected.dropRequests(from: j3.userId)
        expected.editGroup(groupId) { $0.memberCount = 4 }
        assertLook(o, expected, "after M invited J3")

        // The owner blocks J2: withdrawn.
        assertOK(client.call(o, "/chat/setBlock", ["blockId": String(j2.userId)]))
        expected.dropRequests(from: j2.userId)
        assertLook(o, expected, "after O blocked J2")

        // No approval needed any more: J4's request still waits; J4 asking again joins at once.
        assertOK(client.setNeedApproval(o, groupId, false))
        assertLook(o, expected, "after needApproval 0")
        XCTAssertEqual(expected.requests.map(\.fromId), [j4.userId])
        assertReply(client.requestFriend(j4, groupId, destType: 2), status: 200, code: 2, "J4 joins at once")
        expected.dropRequests(from: j4.userId)
        expected.editGroup(groupId) { $0.memberCount = 5 }
        assertLook(o, expected, "after J4 joined")
        XCTAssertEqual(expected.requests, [])
    }

    // MARK: groups

    func testMyReadyGroupsShowOthersJoiningAndQuittingAtOnce() {
        let users = client.newAccounts(5, name: "GrOthers")
        let (a, b, c, d, e) = (users[0], users[1], users[2], users[3], users[4])
        client.befriend(a, b)
        client.befriendAll(b, [c, d])
        let dHead = avatar()
        setHead(d, dHead)
        let (name1, name2) = ("一组" + uniqueToken(6), "二组" + uniqueToken(6))
        let g1 = client.makeGroup(a, [b], name: name1)
        let g2 = client.makeGroup(b, [a, c], name: name2)
        var mine = look(a)
        XCTAssertEqual(mine, Look(requests: [], groups: [GroupLine(groupId: g1, name: name1, ownerId: a.userId, memberCount: 2),
                                                         GroupLine(groupId: g2, name: name2, ownerId: b.userId, memberCount: 3)],
                                  unread: []), "A's groups in the order A joined them")
        var bs = look(b)
        XCTAssertEqual(bs.groups.map(\.groupId), [g1, g2])

        // B invites D (who has an avatar) into B's group.
        assertOK(client.addMembers(b, g2, [d.userId]))
        mine.editGroup(g2) { ($0.memberCount, $0.headUrls) = (4, [dHead]) }
        bs.editGroup(g2) { ($0.memberCount, $0.headUrls) = (4, [dHead]) }
        assertLook(a, mine, "after B invited D")
        assertLook(b, bs, "after B invited D")

        // E asks to join; B (the owner) lets E in.
        askToJoin(e, g2)
        assertLook(a, mine, "while E's request waits (it is B's)")
        assertOK(client.acceptJoin(b, requester: e.userId, groupId: g2))
        mine.editGroup(g2) { $0.memberCount = 5 }
        assertLook(a, mine, "after B let E in")

        // C and D quit B's group.
        quit(c, g2)
        mine.editGroup(g2) { $0.memberCount = 4 }
        assertLook(a, mine, "after C quit")
        quit(d, g2)
        mine.editGroup(g2) { ($0.memberCount, $0.headUrls) = (3, []) }
        assertLook(a, mine, "after D quit")

        // B quits A's group.
        quit(b, g1)
        mine.editGroup(g1) { $0.memberCount = 1 }
        assertLook(a, mine, "after B quit A's group")
        bs = look(b)
        XCTAssertEqual(bs.groups, [GroupLine(groupId: g2, name: name2, ownerId: b.userId, memberCount: 3)])
    }

    func testEveryMembersReadyShowsRenamesAndNewOwnersAtOnce() {
        let users = client.newAccounts(3, name: "GrOwner")
        let (a, b, c) = (users[0], users[1], users[2])
        client.befriendAll(a, [b, c])
        var name = "原名" + uniqueToken(6)
        let groupId = client.makeGroup(a, [b, c], name: name)
        var expected = GroupLine(groupId: groupId, name: name, ownerId: a.userId, memberCount: 3)
        for viewer in users { assertGroups(viewer, [expected], "before any change") }

        name = "新名" + uniqueToken(6)
        rename(a, groupId, name)
        expected.name = name
        for viewer in users { assertGroups(viewer, [expected], "after A renamed the group") }

        quit(a, groupId)
        (expected.ownerId, expected.memberCount) = (b.userId, 2)
        assertGroups(a, [], "after A left")
        for viewer in [b, c] { assertGroups(viewer, [expected], "after the owner A left: B owns the group") }

        name = "B的群" + uniqueToken(6)
        rename(b, groupId, name)
        expected.name = name
        for viewer in [b, c] { assertGroups(viewer, [expected], "after the new owner renamed the group") }

        quit(b, groupId)
        (expected.ownerId, expected.memberCount) = (c.userId, 1)
        assertGroups(c, [expected], "after B left: C owns the group")
        assertGroups(b, [], "after B left")

        name = "C的群" + uniqueToken(6)
        rename(c, groupId, name)
        expected.name = name
        assertGroups(c, [expected], "after C renamed the group")
    }

    func testQuittingRejoiningAndDissolvingShowInMyReadyAtOnce() {
        let users = client.newAccounts(4, name: "GrBack")
        let (a, b, c, d) = (users[0], users[1], users[2], users[3])
        client.befriendAll(a, [b, c])
        client.befriend(b, d)
        let heads = [a, b, c].map { _ in avatar() }
        for (user, head) in zip([a, b, c], heads) { setHead(user, head) }
        let name = "回来" + uniqueToken(6), other = "别的" + uniqueToken(6)
        let groupId = client.makeGroup(a, [b, c], name: name)
        let otherId = client.makeGroup(b, [d], name: other)
        assertOK(client.call(b, "/chat/updateGroupMemberMark", ["groupId": String(groupId), "name": "B的名片"]))
        var group = GroupLine(groupId: groupId, name: name, ownerId: a.userId, memberCount: 3, headUrls: heads, myCard: "B的名片")
        let otherGroup = GroupLine(groupId: otherId, name: other, ownerId: b.userId, memberCount: 2, headUrls: [heads[1]])
        assertGroups(b, [group, otherGroup], "before: in the order B joined them")

        quit(b, groupId)
        assertGroups(b, [otherGroup], "after B quit")
        var seenByA = group
        (seenByA.memberCount, seenByA.headUrls, seenByA.myCard) = (2, [heads[0], heads[2]], "")
        assertGroups(a, [seenByA], "after B quit")

        // Invited back: last in B's list (joined last), the card gone, B's avatar last.
        assertOK(client.addMembers(a, groupId, [b.userId]))
        (group.memberCount, group.headUrls, group.myCard) = (3, [heads[0], heads[2], heads[1]], "")
        assertGroups(b, [otherGroup, group], "after B was invited back")
        seenByA.memberCount = 3
        seenByA.headUrls = group.headUrls
        assertGroups(a, [seenByA], "after B was invited back")

        // Everyone leaves: C has been in longest after A, then B; the last one out dissolves it.
        quit(a, groupId)
        (group.ownerId, group.memberCount, group.headUrls) = (c.userId, 2, [heads[2], heads[1]])
        assertGroups(b, [otherGroup, group], "after A left: C owns the group")
        quit(c, groupId)
        (group.ownerId, group.memberCount, group.headUrls) = (b.userId, 1, [heads[1]])
        assertGroups(b, [otherGroup, group], "after C left: B is alone")
        quit(b, groupId, dissolves: true)
        assertGroups(b, [otherGroup], "after the group was dissolved")
        for viewer in [a, c] { assertGroups(viewer, [], "after the group was dissolved") }
    }

    // MARK: unread

    /// The versions are kept by triggers, not by the endpoints: a membership removed or added
    /// straight in the database (an operator's fix; the member count is left as it was) shows in
    /// every member's ready.groups at once all the same: the avatars, and the group itself.
    func testMembershipChangesMadeInTheDatabaseShowInReadyGroupsAtOnce() throws {
        let users = client.newAccounts(4, name: "GrDb")
        let (a, b, c, d) = (users[0], users[1], users[2], users[3])
        client.befriendAll(a, [b, c, d])
        let heads = [a, b, c, d].map { _ in avatar() }
        for (user, head) in zip(users, heads) { setHead(user, head) }
        let name = "库里" + uniqueToken(6)
        let groupId = client.makeGroup(a, [b, c], name: name)
        var group = GroupLine(groupId: groupId, name: name, ownerId: a.userId, memberCount: 3, headUrls: Array(heads.prefix(3)))
        for viewer in [a, c] { assertGroups(viewer, [group], "before") }
        assertGroups(d, [], "before: D is in no group")

        try StackDB.query(stack, "DELETE FROM group_members WHERE group_id = \(groupId) AND user_id = \(b.userId)")
        group.headUrls = [heads[0], heads[2]]
        for viewer in [a, c] { assertGroups(viewer, [group], "after B's membership was deleted in the database") }
        assertGroups(b, [], "after B's membership was deleted in the database")

        try StackDB.query(stack, "INSERT INTO group_members (group_id, user_id) VALUES (\(groupId), \(d.userId))")
        group.headUrls = [heads[0], heads[2], heads[3]]
        for viewer in [a, c, d] { assertGroups(viewer, [group], "after D's membership was added in the database") }
    }

    // MARK: blocks, tops and ignores

    /// ready.blocks, and ready.tops and ready.ignores as "destType:destId" texts.
    struct SettingsLook: Equatable, CustomStringConvertible {
        var blocks: [Int64]
        var tops: [String]
        var ignores: [String]
        var description: String { "blocks \(blocks) tops \(tops) ignores \(ignores)" }
    }

    /// `viewer`'s blocks, tops and ignores, read `readsPerLook` times: every read must agree with the first.
    func settingsLook(_ viewer: Account, file: StaticString = #filePath, line: UInt = #line) -> SettingsLook {
        func readOnce() -> SettingsLook {
            let data = client.readyView(viewer, file: file, line: line).data
            func conversations(_ key: String) -> [String] {
                (data[key] as? [[String: Any]] ?? []).map { "\(int64($0["destType"]) ?? -1):\(int64($0["destId"]) ?? -1)" }
            }
            return SettingsLook(blocks: (data["blocks"] as? [Any] ?? []).compactMap { int64($0) },
                                tops: conversations("tops"), ignores: conversations("ignores"))
        }
        let first = readOnce()
        for read in 2...Self.readsPerLook {
            XCTAssertEqual(readOnce(), first, "blocks/tops/ignores of \(viewer.userId): read \(read) differs from read 1",
                           file: file, line: line)
        }
        return first
    }

    func assertSettings(_ viewer: Account, _ expected: SettingsLook, _ context: String,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(settingsLook(viewer, file: file, line: line), expected, "\(context): ready of \(viewer.userId)",
                       file: file, line: line)
    }

    func setting(_ account: Account, _ path: String, _ params: [String: String],
                 file: StaticString = #filePath, line: UInt = #line) {
        assertOK(client.call(account, path, params), file: file, line: line)
    }

    func testReadyBlocksTopsAndIgnoresShowEveryChangeAtOnce() {
        let users = client.newAccounts(4, name: "Settings")
        let (a, b, c, d) = (users[0], users[1], users[2], users[3])
        client.befriendAll(a, [b, c, d])
        let groupId = client.makeGroup(a, [b, c])
        var expected = SettingsLook(blocks: [], tops: [], ignores: [])
        assertSettings(a, expected, "before")

        setting(a, "/chat/setTop", ["destId": String(b.userId), "destType": "1"])
        expected.tops = ["1:\(b.userId)"]
        assertSettings(a, expected, "after pinning B")
        Thread.sleep(forTimeInterval: 0.01) // pinned_at orders the tops, most recent first
        setting(a, "/chat/setTop", ["destId": String(groupId), "destType": "2"])
        expected.tops = ["2:\(groupId)", "1:\(b.userId)"]
        assertSettings(a, expected, "after pinning the group")
        setting(a, "/chat/setIgonre", ["destId": String(c.userId), "destType": "1", "receiveTip": "0"])
        expected.ignores = ["1:\(c.userId)"]
        assertSettings(a, expected, "after muting C")
        setting(a, "/chat/cancelTop", ["destId": String(b.userId), "destType": "1"])
        expected.tops = ["2:\(groupId)"]
        assertSettings(a, expected, "after unpinning B")
        setting(a, "/chat/setIgonre", ["destId": String(c.userId), "destType": "1", "receiveTip": "1"])
        expected.ignores = []
        assertSettings(a, expected, "after unmuting C")

        setting(a, "/chat/setBlock", ["blockId": String(d.userId)])
        expected.blocks = [d.userId]
        assertSettings(a, expected, "after blocking D")
        setting(a, "/chat/removeBlack", ["destId": String(d.userId)])
        expected.blocks = []
        assertSettings(a, expected, "after unblocking D")

        // B pins and mutes the group, leaves it; it stays pinned and muted for B until the group
        // ends, when the last members leave.
        setting(b, "/chat/setTop", ["destId": String(groupId), "destType": "2"])
        setting(b, "/chat/setIgonre", ["destId": String(groupId), "destType": "2", "receiveTip": "0"])
        let pinnedGroup = SettingsLook(blocks: [], tops: ["2:\(groupId)"], ignores: ["2:\(groupId)"])
        assertSettings(b, pinnedGroup, "after B pinned and muted the group")
        quit(b, groupId)
        assertSettings(b, pinnedGroup, "after B left the group")
        quit(a, groupId)
        quit(c, groupId, dissolves: true)
        assertSettings(b, SettingsLook(blocks: [], tops: [], ignores: []), "after the group ended")
        assertSettings(a, SettingsLook(blocks: [], tops: [], ignores: []), "after the group ended")
    }

    func testDirectUnreadFollowsEveryMessageAndMarkReadAtOnce() {
        let users = client.newAccounts(2, name: "UnDirect")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        assertUnread(a, [], "nothing sent yet")
        assertUnread(b, [], "nothing sent yet")

        XCTAssertEqual(send(b, to: a.userId, 3), [1, 2, 3])
        assertUnread(a, [.user(b.userId, count: 3, lastSeq: 3)], "after B sent three")
        assertUnread(b, [], "B's own messages never count for B")

        // A's own messages raise lastSeq, not the count.
        XCTAssertEqual(send(a, to: b.userId, 2), [4, 5])
        assertUnread(a, [.user(b.userId, count: 3, lastSeq: 5)], "after A sent two")
        assertUnread(b, [.user(a.userId, count: 2, lastSeq: 5)], "after A sent two")

        XCTAssertEqual(send(b, to: a.userId), [6])
        assertUnread(a, [.user(b.userId, count: 4, lastSeq: 6)], "after B sent one more")

        // Read to the middle: B's 3 and 6 are left.
        markRead(a, b.userId, seq: 2)
        assertUnread(a, [.user(b.userId, count: 2, lastSeq: 6)], "after A read up to 2")
        markRead(a, b.userId, seq: 5)
        assertUnread(a, [.user(b.userId, count: 1, lastSeq: 6)], "after A read up to 5 (4 and 5 are A's own)")
        markRead(a, b.userId, seq: 3)
        assertUnread(a, [.user(b.userId, count: 1, lastSeq: 6)], "a read position never moves back")
        assertUnread(b, [.user(a.userId, count: 2, lastSeq: 6)], "B's read position is B's own")

        // A retry stores nothing.
        let clientMsgId = msgClientId("ready")
        let first = client.msgSend(b, to: a.userId, content: "一次", clientMsgId: clientMsgId)
        XCTAssertEqual(first?.seq, 7)
        assertUnread(a, [.user(b.userId, count: 2, lastSeq: 7)], "after B sent 7")
        XCTAssertEqual(client.msgSend(b, to: a.userId, content: "一次", clientMsgId: clientMsgId)?.seq, 7)
        assertUnread(a, [.user(b.userId, count: 2, lastSeq: 7)], "after B's retry of 7")

        // Read to the last: the entry goes; A's own messages do not bring it back.
        markRead(a, b.userId, seq: 7)
        assertUnread(a, [], "after A read everything")
        XCTAssertEqual(send(a, to: b.userId, 2), [8, 9])
        assertUnread(a, [], "A's own messages after reading everything")
        assertUnread(b, [.user(a.userId, count: 4, lastSeq: 9)], "B has A's 4, 5, 8 and 9 unread")

        // The next message from B counts alone, and a seq past the last counts as the last.
        XCTAssertEqual(send(b, to: a.userId), [10])
        assertUnread(a, [.user(b.userId, count: 1, lastSeq: 10)], "after B sent 10")
        markRead(b, a.userId, seq: 1000)
        assertUnread(b, [], "B read past the last")
        XCTAssertEqual(send(a, to: b.userId), [11])
        assertUnread(b, [.user(a.userId, count: 1, lastSeq: 11)], "B's read position was the last seq (10), not 1000")
    }

    func testGroupUnreadCountsOthersMessagesSinceJoiningAtOnce() {
        let users = client.newAccounts(4, name: "UnGroup")
        let (o, m1, m2, late) = (users[0], users[1], users[2], users[3])
        client.befriendAll(o, [m1, m2, late])
        let groupId = client.makeGroup(o, [m1, m2])
        for viewer in users { assertUnread(viewer, [], "a new group") }

        XCTAssertEqual(send(m1, to: groupId, destType: 2, 2), [1, 2])
        XCTAssertEqual(send(o, to: groupId, destType: 2), [3])
        assertUnread(o, [.group(groupId, count: 2, lastSeq: 3)], "the owner: M1's two")
        assertUnread(m1, [.group(groupId, count: 1, lastSeq: 3)], "M1: the owner's one")
        assertUnread(m2, [.group(groupId, count: 3, lastSeq: 3)], "M2: all three")

        // A later member sees nothing from before the join: no entry, though lastSeq is past 0.
        pauseAroundJoin()
        assertOK(client.addMembers(o, groupId, [late.userId]))
        pauseAroundJoin()
        assertUnread(late, [], "the newcomer, before anything is sent after the join")

        XCTAssertEqual(send(m2, to: groupId, destType: 2), [4])
        assertUnread(late, [.group(groupId, count: 1, lastSeq: 4)], "the newcomer: only M2's 4")
        assertUnread(o, [.group(groupId, count: 3, lastSeq: 4)], "after 4")
        assertUnread(m1, [.group(groupId, count: 2, lastSeq: 4)], "after 4")
        assertUnread(m2, [.group(groupId, count: 3, lastSeq: 4)], "after 4: M2's own does not count")

        XCTAssertEqual(send(late, to: groupId, destType: 2), [5])
        assertUnread(late, [.group(groupId, count: 1, lastSeq: 5)], "the newcomer's own 5 does not count")
        assertUnread(o, [.group(groupId, count: 4, lastSeq: 5)], "after 5")
        assertUnread(m1, [.group(groupId, count: 3, lastSeq: 5)], "after 5")
        assertUnread(m2, [.group(groupId, count: 4, lastSeq: 5)], "after 5")

        // Read positions, each member's own.
        markRead(m2, groupId, destType: 2, seq: 2)
        assertUnread(m2, [.group(groupId, count: 2, lastSeq: 5)], "M2 read up to 2: 3 and 5 are left")
        markRead(late, groupId, destType: 2, seq: 2)
        assertUnread(late, [.group(groupId, count: 1, lastSeq: 5)], "the newcomer read up to 2 (before the join): 4 is left")
        markRead(late, groupId, destType: 2, seq: 4)
        assertUnread(late, [], "the newcomer read up to 4")
        markRead(o, groupId, destType: 2, seq: 5)
        assertUnread(o, [], "the owner read everything")
        assertUnread(m1, [.group(groupId, count: 3, lastSeq: 5)], "M1 read nothing")

        // More after the answers above: each count goes up by exactly what is new from others.
        XCTAssertEqual(send(m1, to: groupId, destType: 2, 2), [6, 7])
        assertUnread(o, [.group(groupId, count: 2, lastSeq: 7)], "after 6 and 7")
        assertUnread(late, [.group(groupId, count: 2, lastSeq: 7)], "after 6 and 7")
        assertUnread(m2, [.group(groupId, count: 4, lastSeq: 7)], "after 6 and 7")
        assertUnread(m1, [.group(groupId, count: 3, lastSeq: 7)], "after 6 and 7: M1's own")
    }

    func testLeavingAndRejoiningAGroupChangeItsUnreadAtOnce() {
        let users = client.newAccounts(2, name: "UnLeave")
        let (o, m) = (users[0], users[1])
        client.befriend(o, m)
        let groupId = client.makeGroup(o, [m])
        XCTAssertEqual(send(o, to: m.userId), [1])
        let direct = UnreadLine.user(o.userId, count: 1, lastSeq: 1)
        assertUnread(m, [direct], "a direct message")

        XCTAssertEqual(send(o, to: groupId, destType: 2, 2), [1, 2])
        assertUnread(m, [direct, .group(groupId, count: 2, lastSeq: 2)], "after two in the group")

        // Leaving drops the group's entry.
        quit(m, groupId)
        assertUnread(m, [direct], "after M left the group")
        XCTAssertEqual(send(o, to: groupId, destType: 2), [3])
        assertUnread(m, [direct], "a message while M is away")

        // Back: read position and last seq are as before, but nothing before the new join counts.
        pauseAroundJoin()
        assertOK(client.addMembers(o, groupId, [m.userId]))
        pauseAroundJoin()
        assertUnread(m, [direct], "after M came back: 1 to 3 are from before the join")
        XCTAssertEqual(send(o, to: groupId, destType: 2), [4])
        assertUnread(m, [direct, .group(groupId, count: 1, lastSeq: 4)], "after 4")

        // M's own message counts for the owner; leaving does not change the owner's count.
        XCTAssertEqual(send(m, to: groupId, destType: 2), [5])
        assertUnread(o, [.group(groupId, count: 1, lastSeq: 5)], "the owner: M's 5")
        assertUnread(m, [direct, .group(groupId, count: 1, lastSeq: 5)], "M's own 5 does not count")
        quit(m, groupId)
        assertUnread(m, [direct], "after M left again")
        assertUnread(o, [.group(groupId, count: 1, lastSeq: 5)], "the owner after M left")

        // Back again, then read: the entry goes.
        pauseAroundJoin()
        assertOK(client.addMembers(o, groupId, [m.userId]))
        pauseAroundJoin()
        assertUnread(m, [direct], "after M came back again")
        XCTAssertEqual(send(o, to: groupId, destType: 2, 2), [6, 7])
        assertUnread(m, [direct, .group(groupId, count: 2, lastSeq: 7)], "after 6 and 7")
        markRead(m, groupId, destType: 2, seq: 6)
        assertUnread(m, [direct, .group(groupId, count: 1, lastSeq: 7)], "after M read up to 6")
        markRead(m, o.userId, seq: 1)
        assertUnread(m, [.group(groupId, count: 1, lastSeq: 7)], "after M read the direct message")

        // Out and back in with no look in between and nothing sent: the read position and the
        // last seq are the same as in the answer before, only the join time moved (7 is older).
        quit(m, groupId)
        pauseAroundJoin()
        assertOK(client.addMembers(o, groupId, [m.userId]))
        pauseAroundJoin()
        assertUnread(m, [], "after M left and came back at once: 7 is from before the new join")
        XCTAssertEqual(send(o, to: groupId, destType: 2), [8])
        assertUnread(m, [.group(groupId, count: 1, lastSeq: 8)], "after 8")

        // The owner leaves too (M is left alone and owns it): the owner's entry goes.
        XCTAssertEqual(send(m, to: groupId, destType: 2), [9])
        assertUnread(o, [.group(groupId, count: 2, lastSeq: 9)], "the owner: M's 5 and 9")
        quit(o, groupId)
        assertUnread(o, [], "after the owner left")
        assertUnread(m, [.group(groupId, count: 1, lastSeq: 9)], "M, alone in the group")
    }

    func testSeveralConversationsChangeBetweenTwoLooks() {
        let users = client.newAccounts(4, name: "UnMany")
        let (a, b, c, d) = (users[0], users[1], users[2], users[3])
        client.befriendAll(a, [b, c, d])
        client.befriend(b, d)
        let g = client.makeGroup(a, [b, c])
        let g2 = client.makeGroup(b, [a, d])
        let g3 = client.makeGroup(c, [a])

        XCTAssertEqual(send(b, to: a.userId, 2), [1, 2])
        XCTAssertEqual(send(c, to: a.userId), [1])
        XCTAssertEqual(send(b, to: g, destType: 2), [1])
        XCTAssertEqual(send(d, to: g2, destType: 2, 2), [1, 2])
        XCTAssertEqual(send(c, to: g3, destType: 2, 3), [1, 2, 3])
        assertUnread(a, [.user(b.userId, count: 2, lastSeq: 2), .user(c.userId, count: 1, lastSeq: 1),
                         .group(g, count: 1, lastSeq: 1), .group(g2, count: 2, lastSeq: 2), .group(g3, count: 3, lastSeq: 3)],
                     "before")
        assertUnread(b, [.group(g2, count: 2, lastSeq: 2)], "before (B's own message in G does not count)")
        assertUnread(d, [], "before")

        // Between two looks: every conversation of A changes, one way or another.
        XCTAssertEqual(send(b, to: a.userId), [3])                 // more from B
        markRead(a, c.userId, seq: 1)                               // C's read
        XCTAssertEqual(send(d, to: a.userId), [1])                  // a new conversation with D
        XCTAssertEqual(send(c, to: g, destType: 2, 2), [2, 3])      // more in G from C
        XCTAssertEqual(send(a, to: g, destType: 2), [4])            // and A's own
        markRead(a, g2, destType: 2, seq: 1)                        // G2 read to the middle
        XCTAssertEqual(send(d, to: g2, destType: 2), [3])           // and one more there
        quit(a, g3)                                                 // A leaves G3
        assertUnread(a, [.user(b.userId, count: 3, lastSeq: 3), .user(d.userId, count: 1, lastSeq: 1),
                         .group(g, count: 3, lastSeq: 4), .group(g2, count: 2, lastSeq: 3)],
                     "after the changes")
        assertUnread(b, [.group(g, count: 3, lastSeq: 4), .group(g2, count: 3, lastSeq: 3)], "after the changes")
        assertUnread(d, [], "after the changes: D sent everything D shares with A and B")
        assertUnread(c, [.group(g, count: 2, lastSeq: 4)], "after the changes: C has B's 1 and A's 4 unread in G")
    }
}
