import ChatPostgres
import Accounts

/// All of the social feature's SQL: the statements the routes run, as methods returning typed
/// values read by column name, and (static) the statements that ride in `ready`'s plan or in
/// another feature's statement.
struct SocialStore {
    let db: PGConnection

    // MARK: pairs

    /// Serialises every change to one pair of users (the two-key advisory lock space is ours alone).
    func lockPair(_ a: Int64, _ b: Int64) throws {
        let (low, high) = a < b ? (a, b) : (b, a)
        try db.query("SELECT pg_advisory_xact_lock(\(Int32(truncatingIfNeeded: low))::integer, \(Int32(truncatingIfNeeded: high))::integer)")
    }

    func areFriends(_ a: Int64, _ b: Int64) throws -> Bool {
        try !db.query("SELECT 1 FROM friendships WHERE user_id = \(a) AND friend_id = \(b)").isEmpty
    }

    /// True when `blocker` blocks `blocked`.
    func blocks(_ blocker: Int64, _ blocked: Int64) throws -> Bool {
        try !db.query("SELECT 1 FROM blocks WHERE user_id = \(blocker) AND blocked_id = \(blocked)").isEmpty
    }

    func userExists(_ userId: Int64) throws -> Bool {
        try !db.query("SELECT 1 FROM users WHERE id = \(userId)").isEmpty
    }

    /// Whether the user wants to approve friend requests; nil when there is no such user.
    func needsAuth(_ userId: Int64) throws -> Bool? {
        guard let user = try db.query("SELECT need_auth FROM users WHERE id = \(userId)").first else { return nil }
        return try user.decode("need_auth", as: Bool.self)
    }

    // MARK: friendships

    /// Both sides of the friendship (kept when it already exists).
    func addFriendship(_ a: Int64, _ b: Int64) throws {
        let first = SQLParameter(a)
        let second = SQLParameter(b)
        try db.query("""
            INSERT INTO friendships (user_id, friend_id) VALUES (\(first), \(second)), (\(second), \(first)) ON CONFLICT DO NOTHING
            """)
    }

    /// Marks as accepted whatever either had pending towards the other.
    func settleRequests(between a: Int64, and b: Int64) throws {
        let first = SQLParameter(a)
        let second = SQLParameter(b)
        try db.query("""
            UPDATE friend_requests SET status = 1
            WHERE dest_type = 1 AND status = 0 AND ((from_id = \(first) AND to_user_id = \(second)) OR (from_id = \(second) AND to_user_id = \(first)))
            """)
    }

    /// Both sides of the friendship; false when they were not friends.
    func removeFriendship(_ a: Int64, _ b: Int64) throws -> Bool {
        let user = SQLParameter(a)
        let friend = SQLParameter(b)
        let removed = try db.query("""
            DELETE FROM friendships WHERE (user_id = \(user) AND friend_id = \(friend)) OR (user_id = \(friend) AND friend_id = \(user))
            """)
        return removed.affectedRows > 0
    }

    func setFriendGroup(_ friendGroupId: Int64, of userId: Int64, for friendId: Int64) throws {
        try db.query("UPDATE friendships SET friend_group_id = \(friendGroupId) WHERE user_id = \(userId) AND friend_id = \(friendId)")
    }

    /// False when they are not friends.
    func setRemark(_ remark: String, of userId: Int64, for friendId: Int64) throws -> Bool {
        try db.query("UPDATE friendships SET remark = \(remark) WHERE user_id = \(userId) AND friend_id = \(friendId)").affectedRows > 0
    }

    // MARK: friend requests

    func hasPendingRequest(from fromId: Int64, to toId: Int64) throws -> Bool {
        try !db.query("""
            SELECT 1 FROM friend_requests WHERE dest_type = 1 AND status = 0 AND from_id = \(fromId) AND to_user_id = \(toId)
            """).isEmpty
    }

    /// The id of `fromId`'s pending friend request to `toId`, or nil.
    func pendingRequestId(from fromId: Int64, to toId: Int64) throws -> Int64? {
        let pending = try db.query("""
            SELECT id FROM friend_requests WHERE dest_type = 1 AND status = 0 AND from_id = \(fromId) AND to_user_id = \(toId)
            """)
        return try pending.first?.decode("id", as: Int64.self)
    }

    /// Files the request, or refreshes the pending one (message, time); `isNew` when it was filed now.
    func fileRequest(from fromId: Int64, to toId: Int64, message: String) throws -> (id: Int64, isNew: Bool) {
        let request = try db.query("""
            INSERT INTO friend_requests (from_id, dest_type, to_user_id, message) VALUES (\(fromId), 1, \(toId), \(message))
            ON CONFLICT (from_id, to_user_id) WHERE status = 0 AND dest_type = 1
            DO UPDATE SET message = EXCLUDED.message, created_at = now()
            RETURNING id, xmax = 0 AS is_new
            """)
        // The upsert returns one row; were it missing, its cells read as NULL and decoding throws.
        let row = request[0]
        return (try row.decode("id"), try row.decode("is_new"))
    }

    // MARK: blocks

    func addBlock(by userId: Int64, of blockedId: Int64) throws {
        try db.query("INSERT INTO blocks (user_id, blocked_id) VALUES (\(userId), \(blockedId)) ON CONFLICT DO NOTHING")
    }

    func removeBlock(by userId: Int64, of blockedId: Int64) throws {
        try db.query("DELETE FROM blocks WHERE user_id = \(userId) AND blocked_id = \(blockedId)")
    }

    /// Withdraws the pending friend requests between the two, both ways.
    func withdrawFriendRequests(between blockerId: Int64, and blockedId: Int64) throws {
        let blocked = SQLParameter(blockedId)
        let blocker = SQLParameter(blockerId)
        try db.query("""
            UPDATE friend_requests SET status = 2 WHERE dest_type = 1 AND status = 0
            AND ((from_id = \(blocked) AND to_user_id = \(blocker)) OR (from_id = \(blocker) AND to_user_id = \(blocked)))
            """)
    }

    /// Withdraws the blocked user's pending requests to join groups the blocker owns.
    func withdrawJoinRequests(from blockedId: Int64, toGroupsOf ownerId: Int64) throws {
        try db.query("""
            UPDATE friend_requests SET status = 2 WHERE dest_type = 2 AND status = 0 AND from_id = \(blockedId)
            AND group_id IN (SELECT id FROM groups WHERE owner_id = \(ownerId))
            """)
    }

    // MARK: conversation settings

    /// The conversation exists: a user, or a live group.
    func conversationExists(destId: Int64, destType: Int) throws -> Bool {
        let statement: SQL = destType == 1 ? "SELECT 1 FROM users WHERE id = \(destId)"
                                           : "SELECT 1 FROM groups WHERE id = \(destId) AND dissolved_at IS NULL"
        return try !db.query(statement).isEmpty
    }

    func setMuted(_ muted: Bool, of userId: Int64, destType: Int, destId: Int64) throws {
        try db.query("""
            INSERT INTO conversation_settings (user_id, dest_type, dest_id, muted) VALUES (\(userId), \(destType), \(destId), \(muted))
            ON CONFLICT (user_id, dest_type, dest_id) DO UPDATE SET muted = EXCLUDED.muted
            """)
    }

    func setPinned(_ pinned: Bool, of userId: Int64, destType: Int, destId: Int64) throws {
        let isPinned = SQLParameter(pinned)
        try db.query("""
            INSERT INTO conversation_settings (user_id, dest_type, dest_id, pinned, pinned_at)
            VALUES (\(userId), \(destType), \(destId), \(isPinned), CASE WHEN \(isPinned) THEN now() END)
            ON CONFLICT (user_id, dest_type, dest_id)
            DO UPDATE SET pinned = EXCLUDED.pinned, pinned_at = EXCLUDED.pinned_at
            """)
    }

    // MARK: statements for other statements and plans

    /// The relation as columns to join into another statement (getUserById, queryUser): remark
    /// (NULL when not friends) and blocked.
    static func relationColumns(me: SQL, other: SQL) -> (columns: SQL, joins: SQL) {
        ("f.remark AS relation_remark, EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = \(me) AND b.blocked_id = \(other)) AS relation_blocked",
         "LEFT JOIN friendships f ON f.user_id = \(me) AND f.friend_id = \(other)")
    }

    /// The statement that reads `me`'s whole set of relations for `RelationCache`: each friend
    /// with the remark, and each blocked user.
    static func relations(of me: Int64) -> SQL {
        let user = SQLParameter(me)
        return """
            SELECT f.friend_id AS other_id, f.remark, false AS blocked FROM friendships f WHERE f.user_id = \(user)
            UNION ALL SELECT b.blocked_id, '', true FROM blocks b WHERE b.user_id = \(user)
            """
    }

    /// One of a user's lists in `user_list_versions` (sql/0005_ready_versions.sql), its number
    /// written into the statement as a constant.
    enum UserList {
        case requests, groups, settings

        var number: SQL {
            switch self {
            case .requests: "1"
            case .groups: "2"
            case .settings: "3"
            }
        }
    }

    /// The version of one of a user's lists as a column of `ready`'s user row: 1 requests,
    /// 2 groups, 3 blocks with tops and ignores.
    static func userListVersion(_ list: UserList) -> SQL {
        "COALESCE((SELECT v.version FROM user_list_versions v WHERE v.user_id = u.id AND v.list = \(list.number)), 0)"
    }

    /// The versions of the social lists as columns of `ready`'s user row.
    static let readyVersionColumns: [SQL] = [
        "COALESCE((SELECT v.version FROM friend_list_versions v WHERE v.user_id = u.id), 0) AS friend_list_version",
        "\(userListVersion(.requests)) AS request_list_version",
        "\(userListVersion(.groups)) AS group_list_version",
        "\(userListVersion(.settings)) AS setting_list_version",
    ]

    /// The statement behind `ready.friends`, oldest friendship first.
    static func friendList(of userId: Int64) -> SQL {
        """
        SELECT \(Profile.columns), f.remark, f.friend_group_id
        FROM friendships f JOIN users u ON u.id = f.friend_id
        WHERE f.user_id = \(userId) ORDER BY f.created_at, f.friend_id
        """
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

    /// The statement behind `ready.blocks`, `ready.tops` and `ready.ignores`: the blocked users in
    /// the order blocked, and the pinned and muted conversations, most recently pinned first, as
    /// one array: each is its code (`SettingListsWriter.conversationJSON(code:)`) times 4, plus 2
    /// when pinned, plus 1 when muted; a dissolved group's settings are left out.
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
}
