import ChatConfig
import ChatHTTP
import ChatPostgres
import ChatRouting
import ChatCache
import Accounts
import Events

/// What the social routes ask of the groups feature, which sits above this one: a request to join
/// a group and its acceptance (`destType` 2), and the rendered `ready.groups` list.
public protocol GroupRequests: AnyObject {
    func requestJoin(_ c: RequestContext, groupId: Int64, message: String) throws -> Response
    func acceptJoin(_ c: RequestContext, requesterId: Int64, groupId: Int64) throws -> Response
    /// The statement listing a user's groups, rendered by `renderGroupsOf`.
    func groupsOfStatement(_ userId: Int64) -> SQL
    func renderGroupsOf(_ result: PGResult, db: PGConnection) throws -> [UInt8]
}

/// Friends, friend requests, blocks and per-conversation settings (API.md §3), plus the social
/// parts of `ready` and `getUserById`.
///
/// Friendship is mutual and stored as one row per side. Everything that changes a pair of users
/// runs in one transaction holding an advisory lock on the pair, so that two people asking each
/// other at the same instant end as one friendship, never as two crossed pending requests.
public final class SocialFeature {
    let groups: GroupRequests

    /// `ready.friends`, `ready.requests` and `ready.groups` as rendered for each user, per worker
    /// process (see sql/0004_list_versions.sql and sql/0005_ready_versions.sql).
    let friendLists: VersionedCache<[UInt8]>
    let requestLists: VersionedCache<[UInt8]>
    let groupLists: VersionedCache<[UInt8]>
    let settingLists: VersionedCache<RenderedSettingLists>

    /// `ready.blocks`, `ready.tops` and `ready.ignores`, rendered.
    struct RenderedSettingLists {
        var blocks: [UInt8]
        var tops: [UInt8]
        var ignores: [UInt8]
    }

    /// The version of one of a user's lists in `user_list_versions` (sql/0005_ready_versions.sql)
    /// as a column of `ready`'s user row: 1 requests, 2 groups, 3 blocks with tops and ignores.
    static func userListVersion(list: Int) -> SQL {
        "COALESCE((SELECT v.version FROM user_list_versions v WHERE v.user_id = u.id AND v.list = \(unsafeRaw: String(list))), 0)"
    }

    /// - Parameter budgets: memory for the rendered lists (`CacheRegistry`; none: render on every
    ///   request).
    public init(groups: GroupRequests, budgets: CacheBudgets = .none) {
        self.groups = groups
        friendLists = VersionedCache(SocialFeature.friendListsKind, budgets: budgets) { $0.count + 64 }
        requestLists = VersionedCache(SocialFeature.requestListsKind, budgets: budgets) { $0.count + 64 }
        groupLists = VersionedCache(SocialFeature.groupListsKind, budgets: budgets) { $0.count + 64 }
        settingLists = VersionedCache(SocialFeature.settingListsKind, budgets: budgets) {
            $0.blocks.count + $0.tops.count + $0.ignores.count + 96
        }
    }

    public func register(on router: Router) {
        router.add("/chat/requestFriend", requestFriend)
        router.add("/chat/acceptRequest", acceptRequest)
        router.add("/chat/delFriend", delFriend)
        router.add("/chat/updateRemark", updateRemark)
        router.add("/chat/setBlock", setBlock)
        router.add("/chat/removeBlack", removeBlack)
        router.add("/chat/setIgonre", setIgnore)
        router.add("/chat/setTop", setTop)
        router.add("/chat/cancelTop", cancelTop)
    }

    // MARK: shared checks

    /// Serialises every change to one pair of users (the two-key advisory lock space is ours alone).
    static func lockPair(_ db: PGConnection, _ a: Int64, _ b: Int64) throws {
        let (low, high) = a < b ? (a, b) : (b, a)
        try db.query("SELECT pg_advisory_xact_lock(\(Int32(truncatingIfNeeded: low))::integer, \(Int32(truncatingIfNeeded: high))::integer)")
    }

    public static func areFriends(_ db: PGConnection, _ a: Int64, _ b: Int64) throws -> Bool {
        try !db.query("SELECT 1 FROM friendships WHERE user_id = \(a) AND friend_id = \(b)").isEmpty
    }

    /// True when `blocker` blocks `blocked`.
    public static func blocks(_ db: PGConnection, _ blocker: Int64, _ blocked: Int64) throws -> Bool {
        try !db.query("SELECT 1 FROM blocks WHERE user_id = \(blocker) AND blocked_id = \(blocked)").isEmpty
    }

    static func makeFriends(_ db: PGConnection, _ a: Int64, _ b: Int64) throws {
        try Profile.holdSteady(db, [a, b])
        let first = SQLParameter(a)
        let second = SQLParameter(b)
        try db.query("""
            INSERT INTO friendships (user_id, friend_id) VALUES (\(first), \(second)), (\(second), \(first)) ON CONFLICT DO NOTHING
            """)
        RelationCache.forget([a, b], db: db)
        // Whatever either had pending towards the other is settled now.
        try db.query("""
            UPDATE friend_requests SET status = 1
            WHERE dest_type = 1 AND status = 0 AND ((from_id = \(first) AND to_user_id = \(second)) OR (from_id = \(second) AND to_user_id = \(first)))
            """)
        try EventLog.append(db, to: [a], type: "friend_added", payload: ["userId": .int(b)])
        try EventLog.append(db, to: [b], type: "friend_added", payload: ["userId": .int(a)])
    }

    // MARK: requests

    func requestFriend(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        let message = try c.params.string("message", maxLength: 128) ?? ""
        if destType == 2 { return try groups.requestJoin(c, groupId: destId, message: message) }
        let me = c.userId
        guard destId != me else { return .outcome(-1, "you cannot add yourself") }
        let db = try c.db
        return try db.transaction {
            try SocialFeature.lockPair(db, me, destId)
            guard let dest = try db.query("SELECT need_auth FROM users WHERE id = \(destId)").first else {
                return .outcome(-1, "no such user")
            }
            if try SocialFeature.areFriends(db, me, destId) { return .outcome(-1, "already friends") }
            if try SocialFeature.blocks(db, destId, me) { return .outcome(-1, "this user does not accept your requests") }
            if try SocialFeature.blocks(db, me, destId) { return .outcome(-1, "you block this user; unblock them first") }
            let theyAsked = try !db.query("""
                SELECT 1 FROM friend_requests WHERE dest_type = 1 AND status = 0 AND from_id = \(destId) AND to_user_id = \(me)
                """).isEmpty
            if theyAsked || !dest.boolValue(0) {
                try SocialFeature.makeFriends(db, me, destId)
                return .outcome(2, "you are now friends")
            }
            try Profile.holdSteady(db, [me])
            let request = try db.query("""
                INSERT INTO friend_requests (from_id, dest_type, to_user_id, message) VALUES (\(me), 1, \(destId), \(message))
                ON CONFLICT (from_id, to_user_id) WHERE status = 0 AND dest_type = 1
                DO UPDATE SET message = EXCLUDED.message, created_at = now()
                RETURNING id, xmax = 0
                """)
            let requestId = request[0].int64Value(0)
            // Asking again while the request is pending updates it (message, time) without a new
            // event: the other side hears of a request once, however often it is sent.
            if request[0].boolValue(1) {
                try EventLog.append(db, to: [destId], type: "friend_request",
                                    payload: ["requestId": .int(requestId), "fromId": .int(me), "destType": 1,
                                              "message": .string(message)])
            }
            return .outcome(1, "waiting for approval", data: ["requestId": .int(requestId)])
        }
    }

    func acceptRequest(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        if destType == 2 {
            let groupId = try c.params.requiredId("groupId")
            return try groups.acceptJoin(c, requesterId: destId, groupId: groupId)
        }
        let friendGroupId = try c.params.int64("friendGroupId", in: 0...Int64.max) ?? 0
        let me = c.userId
        let db = try c.db
        return try db.transaction {
            try SocialFeature.lockPair(db, me, destId)
            let pending = try db.query("""
                SELECT id FROM friend_requests WHERE dest_type = 1 AND status = 0 AND from_id = \(destId) AND to_user_id = \(me)
                """)
            guard let requestId = pending.first?.int64(0) else { return .outcome(-1, "no such pending request") }
            if try SocialFeature.blocks(db, me, destId) { return .outcome(-1, "you block this user; unblock them first") }
            try SocialFeature.makeFriends(db, me, destId)
            try db.query("UPDATE friendships SET friend_group_id = \(friendGroupId) WHERE user_id = \(me) AND friend_id = \(destId)")
            try EventLog.append(db, to: [destId], type: "request_accepted",
                                payload: ["requestId": .int(requestId), "userId": .int(me), "destType": 1])
            return .ok()
        }
    }

    func delFriend(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let me = c.userId
        let db = try c.db
        return try db.transaction {
            try SocialFeature.lockPair(db, me, destId)
            let user = SQLParameter(me)
            let friend = SQLParameter(destId)
            let removed = try db.query("""
                DELETE FROM friendships WHERE (user_id = \(user) AND friend_id = \(friend)) OR (user_id = \(friend) AND friend_id = \(user))
                """)
            guard removed.affectedRows > 0 else { return .outcome(-1, "not your friend") }
            RelationCache.forget([me, destId], db: db)
            try EventLog.append(db, to: [destId], type: "friend_removed", payload: ["userId": .int(me)])
            try EventLog.append(db, to: [me], type: "friend_removed", payload: ["userId": .int(destId)])
            return .ok()
        }
    }

    func updateRemark(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        guard let remark = try c.params.string("remark", maxLength: 32) else { throw HTTPError.missing("remark") }
        let db = try c.db
        let updated = try db.query("UPDATE friendships SET remark = \(remark) WHERE user_id = \(c.userId) AND friend_id = \(destId)")
        RelationCache.forget([c.userId], db: db)
        return updated.affectedRows > 0 ? .ok() : .outcome(-1, "not your friend")
    }

    // MARK: blocks

    func setBlock(_ c: RequestContext) throws -> Response {
        let blockId = try c.params.requiredId("blockId")
        let me = c.userId
        guard blockId != me else { return .outcome(-1, "you cannot block yourself") }
        let db = try c.db
        return try db.transaction {
            try SocialFeature.lockPair(db, me, blockId)
            guard try !db.query("SELECT 1 FROM users WHERE id = \(blockId)").isEmpty else {
                return .outcome(-1, "no such user")
            }
            try db.query("INSERT INTO blocks (user_id, blocked_id) VALUES (\(me), \(blockId)) ON CONFLICT DO NOTHING")
            RelationCache.forget([me], db: db)
            // Pending requests between the two are withdrawn, both ways: a blocked user cannot ask
            // you, and cannot accept an old request of yours either.
            let blocked = SQLParameter(blockId)
            let blocker = SQLParameter(me)
            try db.query("""
                UPDATE friend_requests SET status = 2 WHERE dest_type = 1 AND status = 0
                AND ((from_id = \(blocked) AND to_user_id = \(blocker)) OR (from_id = \(blocker) AND to_user_id = \(blocked)))
                """)
            // So are their requests to join groups you own.
            try db.query("""
                UPDATE friend_requests SET status = 2 WHERE dest_type = 2 AND status = 0 AND from_id = \(blockId)
                AND group_id IN (SELECT id FROM groups WHERE owner_id = \(me))
                """)
            return .ok()
        }
    }

    func removeBlack(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let db = try c.db
        try db.query("DELETE FROM blocks WHERE user_id = \(c.userId) AND blocked_id = \(destId)")
        RelationCache.forget([c.userId], db: db)
        return .ok()
    }

    // MARK: conversation settings

    /// The conversation must exist: a user, or a live group.
    func conversationTarget(_ c: RequestContext) throws -> (destId: Int64, destType: Int)? {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        let statement: SQL = destType == 1 ? "SELECT 1 FROM users WHERE id = \(destId)"
                                           : "SELECT 1 FROM groups WHERE id = \(destId) AND dissolved_at IS NULL"
        return try c.db.query(statement).isEmpty ? nil : (destId, destType)
    }

    func setIgnore(_ c: RequestContext) throws -> Response {
        let receiveTip = try c.params.requiredInt("receiveTip", in: 0...1)
        guard let target = try conversationTarget(c) else { return .outcome(-1, "no such conversation") }
        try c.db.query("""
            INSERT INTO conversation_settings (user_id, dest_type, dest_id, muted) VALUES (\(c.userId), \(target.destType), \(target.destId), \(receiveTip == 0))
            ON CONFLICT (user_id, dest_type, dest_id) DO UPDATE SET muted = EXCLUDED.muted
            """)
        return .ok()
    }

    func setTop(_ c: RequestContext) throws -> Response { try setPinned(c, true) }
    func cancelTop(_ c: RequestContext) throws -> Response { try setPinned(c, false) }

    func setPinned(_ c: RequestContext, _ pinned: Bool) throws -> Response {
        guard let target = try conversationTarget(c) else { return .outcome(-1, "no such conversation") }
        let isPinned = SQLParameter(pinned)
        try c.db.query("""
            INSERT INTO conversation_settings (user_id, dest_type, dest_id, pinned, pinned_at)
            VALUES (\(c.userId), \(target.destType), \(target.destId), \(isPinned), CASE WHEN \(isPinned) THEN now() END)
            ON CONFLICT (user_id, dest_type, dest_id)
            DO UPDATE SET pinned = EXCLUDED.pinned, pinned_at = EXCLUDED.pinned_at
            """)
        return .ok()
    }

    // MARK: contributions to accounts

    /// The statement behind `ready.friends`, oldest friendship first.
    static func friendList(of userId: Int64) -> SQL {
        """
        SELECT \(Profile.columns), f.remark, f.friend_group_id
        FROM friendships f JOIN users u ON u.id = f.friend_id
        WHERE f.user_id = \(userId) ORDER BY f.created_at, f.friend_id
        """
    }

    /// `ready.friends`, written straight from `friendList`'s rows.
    static func renderFriendList(_ result: PGResult) throws -> [UInt8] {
        let profile = try Profile.Columns(result)
        let remark = try result.column("remark", as: String.self)
        let friendGroupId = try result.column("friend_group_id", as: Int64.self)
        return try JSONWriter.array(count: result.rowCount, bytesPerElement: 320) { index, w in
            let row = result[index]
            w.byte(UInt8(ascii: "{"))
            try Profile.writeFields(row, profile, revealMobile: true, into: &w)
            w.raw(",\"remark\":")
            try row.withRequiredBytes(remark) { w.string(utf8: $0) }
            w.raw(",\"friendGroupId\":")
            w.int(try row[friendGroupId])
            w.byte(UInt8(ascii: "}"))
        }
    }

    /// The relation as columns to join into another statement (getUserById, queryUser): remark
    /// (NULL when not friends) and blocked.
    public static func relationColumns(me: SQL, other: SQL) -> (columns: SQL, joins: SQL) {
        ("f.remark AS relation_remark, EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = \(me) AND b.blocked_id = \(other)) AS relation_blocked",
         "LEFT JOIN friendships f ON f.user_id = \(me) AND f.friend_id = \(other)")
    }

    /// A pinned or muted conversation as one number in `ready`'s user row: `destId * 2 + destType - 1`.
    static func conversationJSON(code: Int64) -> JSON {
        .object([("destId", .int(code >> 1)), ("destType", .int((code & 1) + 1))])
    }

    /// The statement behind `ready.blocks`, `ready.tops` and `ready.ignores`: the blocked users in
    /// the order blocked, and the pinned and muted conversations, most recently pinned first, as
    /// one array: each is its code (`conversationJSON(code:)`) times 4, plus 2 when pinned, plus 1
    /// when muted; a dissolved group's settings are left out.
    static func settingLists(of userId: Int64) -> SQL {
        """
        SELECT ARRAY(SELECT b.blocked_id FROM blocks b WHERE b.user_id = u.id ORDER BY b.created_at, b.blocked_id) AS blocks,
        ARRAY(SELECT (s.dest_id * 2 + s.dest_type - 1) * 4 + CASE WHEN s.pinned THEN 2 ELSE 0 END + CASE WHEN s.muted THEN 1 ELSE 0 END
              FROM conversation_settings s
              WHERE s.user_id = u.id AND (s.pinned OR s.muted)
                AND (s.dest_type = 1 OR EXISTS (SELECT 1 FROM groups g WHERE g.id = s.dest_id AND g.dissolved_at IS NULL))
              ORDER BY s.pinned_at DESC NULLS LAST, s.dest_type, s.dest_id) AS settings
        FROM users u WHERE u.id = \(userId)
        """
    }

    /// `ready.blocks`, `ready.tops` and `ready.ignores` from `settingLists`'s row.
    static func renderSettingLists(_ result: PGResult) throws -> RenderedSettingLists {
        guard let row = result.first else { return RenderedSettingLists(blocks: [], tops: [], ignores: []) }
        let settings: [Int64] = try row.decode("settings")
        let blocks: [Int64] = try row.decode("blocks")
        func render(_ values: [JSON]) -> [UInt8] {
            var w = JSONWriter(capacity: 16 + values.count * 32)
            w.json(.array(values))
            return w.bytes
        }
        return RenderedSettingLists(
            blocks: render(blocks.map(JSON.int)),
            tops: render(settings.filter { $0 & 2 != 0 }.map { SocialFeature.conversationJSON(code: $0 >> 2) }),
            ignores: render(settings.filter { $0 & 1 != 0 }.map { SocialFeature.conversationJSON(code: $0 >> 2) }))
    }

    /// friends, groups, tops, ignores, blocks and pending requests for `ready`. Their versions are
    /// columns of the user's row; each list (friends, requests, groups, and blocks with tops and
    /// ignores) comes from its cache when its version is the same, and is otherwise read in
    /// `ready`'s second round trip, rendered and kept.
    ///
    /// The group list's version moves with anything ready.groups shows, also when it changes in
    /// one of the groups rather than in the user's own memberships (sql/0005_ready_versions.sql).
    public func readyPart(_ c: RequestContext) -> AccountsFeature.ReadyPart {
        let userColumns: [SQL] = [
            "COALESCE((SELECT v.version FROM friend_list_versions v WHERE v.user_id = u.id), 0) AS friend_list_version",
            "\(SocialFeature.userListVersion(list: 1)) AS request_list_version",
            "\(SocialFeature.userListVersion(list: 2)) AS group_list_version",
            "\(SocialFeature.userListVersion(list: 3)) AS setting_list_version",
        ]
        return AccountsFeature.ReadyPart(userColumns: userColumns) { input in
            let user = input.user, userId = input.userId
            let friendVersion: Int64 = try user.decode("friend_list_version")
            let requestVersion: Int64 = try user.decode("request_list_version")
            let groupVersion: Int64 = try user.decode("group_list_version")
            let settingVersion: Int64 = try user.decode("setting_list_version")
            let friends = self.friendLists.value(for: userId, version: friendVersion)
            let requests = self.requestLists.value(for: userId, version: requestVersion)
            let groups = self.groupLists.value(for: userId, version: groupVersion)
            let settings = self.settingLists.value(for: userId, version: settingVersion)
            var statements: [SQL] = []
            if friends == nil { statements.append(SocialFeature.friendList(of: userId)) }
            if requests == nil { statements.append(SocialFeature.requestList(of: userId)) }
            if groups == nil { statements.append(self.groups.groupsOfStatement(userId)) }
            if settings == nil { statements.append(SocialFeature.settingLists(of: userId)) }
            return AccountsFeature.ReadyPlan(statements: statements) { results, data in
                // The cached copy, or the next result rendered and kept at the version read above.
                var next = 0
                func take<Value>(_ cached: Value?, _ cache: VersionedCache<Value>, _ version: Int64,
                                 _ render: (PGResult) throws -> Value) rethrows -> Value {
                    if let cached { return cached }
                    let value = try render(results[next])
                    next += 1
                    cache.store(value, for: userId, version: version)
                    return value
                }
                let friendBytes = try take(friends, self.friendLists, friendVersion, SocialFeature.renderFriendList)
                let requestBytes = try take(requests, self.requestLists, requestVersion, SocialFeature.renderRequests)
                let groupBytes = try take(groups, self.groupLists, groupVersion) { try self.groups.renderGroupsOf($0, db: try c.db) }
                let settingLists = try take(settings, self.settingLists, settingVersion, SocialFeature.renderSettingLists)
                for index in data.indices {
                    switch data[index].0 {
                    case "friends": data[index].1 = .bytes(friendBytes)
                    case "groups": data[index].1 = .bytes(groupBytes)
                    case "tops": data[index].1 = .bytes(settingLists.tops)
                    case "ignores": data[index].1 = .bytes(settingLists.ignores)
                    case "blocks": data[index].1 = .bytes(settingLists.blocks)
                    case "requests": data[index].1 = .bytes(requestBytes)
                    default: break
                    }
                }
            }
        }
    }

    /// The statement behind `ready.requests`: friend requests to the user and join requests to
    /// the live groups they own, newest first, at most 200, each with the requester's profile.
    static func requestList(of userId: Int64) -> SQL {
        let user = SQLParameter(userId)
        return """
        SELECT r.id, r.from_id, r.dest_type, r.group_id, r.message, (extract(epoch FROM r.created_at) * 1000)::bigint AS create_time,
               \(Profile.columns)
        FROM friend_requests r JOIN users u ON u.id = r.from_id
        WHERE r.status = 0 AND (r.to_user_id = \(user)
            OR r.group_id IN (SELECT id FROM groups WHERE owner_id = \(user) AND dissolved_at IS NULL))
        ORDER BY r.created_at DESC LIMIT 200
        """
    }

    /// `ready.requests`, written straight from `requestList`'s rows.
    static func renderRequests(_ result: PGResult) throws -> [UInt8] {
        let profile = try Profile.Columns(result)
        let id = try result.column("id", as: Int64.self), fromId = try result.column("from_id", as: Int64.self)
        let destType = try result.column("dest_type", as: Int64.self), groupId = try result.column("group_id", as: Int64?.self)
        let message = try result.column("message", as: String.self), createTime = try result.column("create_time", as: Int64.self)
        return try JSONWriter.array(count: result.rowCount, bytesPerElement: 400) { index, w in
            let row = result[index]
            w.raw("{\"requestId\":")
            w.int(try row[id])
            w.raw(",\"fromId\":")
            w.int(try row[fromId])
            w.raw(",\"destType\":")
            w.int(try row[destType])
            w.raw(",\"groupId\":")
            if let group = try row[groupId] { w.int(group) } else { w.raw("null") }
            w.raw(",\"message\":")
            try row.withRequiredBytes(message) { w.string(utf8: $0) }
            w.raw(",\"createTime\":")
            w.int(try row[createTime])
            w.raw(",\"from\":{")
            try Profile.writeFields(row, profile, revealMobile: false, into: &w)
            w.raw("}}")
        }
    }
}
