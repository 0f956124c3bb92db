import ChatPostgres
import Accounts

/// Every statement of the groups feature. Methods run a statement on `db` and return typed values
/// read by column name; the static builders are the statements that ride with the session check
/// (`RequestContext.query`) or in `ready`'s plan, read by their callers.
struct GroupsStore {
    let db: PGConnection

    // MARK: name search index

    /// Replaces a group's one- and two-character name pieces (`GroupsFeature.grams(of:)`).
    func indexName(groupId: Int64, name: String) throws {
        try db.query("DELETE FROM group_name_grams WHERE group_id = \(groupId)")
        try db.query("""
            INSERT INTO group_name_grams (gram, group_id) SELECT g, \(groupId) FROM unnest(\(PGTextArray(GroupsFeature.grams(of: name)))::text[]) AS t(g)
            ON CONFLICT DO NOTHING
            """)
    }

    // MARK: the group's row

    /// A live group's row as `lock` finds it.
    struct LockedRow {
        var ownerId: Int64?
        var memberCount: Int
        var name: String
        var needApproval: Bool
        /// Whether the owner is still a member (false too when the owner's account is gone).
        var ownerIsMember: Bool
    }

    /// Locks a live group's row (`FOR UPDATE`); nil when there is no such group.
    func lock(_ groupId: Int64) throws -> LockedRow? {
        guard let row = try db.query("""
            SELECT g.owner_id, g.member_count, g.name, g.need_approval,
                   EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = g.owner_id) AS owner_is_member
            FROM groups g WHERE g.id = \(groupId) AND g.dissolved_at IS NULL FOR UPDATE OF g
            """).first else { return nil }
        return LockedRow(ownerId: try row.decode("owner_id"), memberCount: try row.decode("member_count"),
                         name: try row.decode("name"), needApproval: try row.decode("need_approval"),
                         ownerIsMember: try row.decode("owner_is_member"))
    }

    /// A new group's id.
    func insertGroup(name: String, ownerId: Int64, memberCount: Int) throws -> Int64 {
        try db.query("""
            INSERT INTO groups (name, owner_id, member_count) VALUES (\(name), \(ownerId), \(memberCount)) RETURNING id
            """)[0].decode("id")
    }

    func update(_ groupId: Int64, name: String?, needApproval: Bool?) throws {
        try db.query("""
            UPDATE groups SET name = COALESCE(\(name), name), need_approval = COALESCE(\(needApproval), need_approval) WHERE id = \(groupId)
            """)
    }

    func setOwnerAndCount(_ groupId: Int64, ownerId: Int64, memberCount: Int) throws {
        try db.query("UPDATE groups SET member_count = \(memberCount), owner_id = \(ownerId) WHERE id = \(groupId)")
    }

    /// Ends a locked group that has no members left: its name leaves the search and its pending
    /// join requests are closed.
    func dissolve(_ groupId: Int64) throws {
        try db.query("UPDATE groups SET member_count = 0, dissolved_at = now() WHERE id = \(groupId)")
        try db.query("DELETE FROM group_name_grams WHERE group_id = \(groupId)")
        try db.query("UPDATE friend_requests SET status = 2 WHERE dest_type = 2 AND status = 0 AND group_id = \(groupId)")
    }

    // MARK: members

    func memberIds(_ groupId: Int64) throws -> [Int64] {
        try userIds(db.query("SELECT user_id FROM group_members WHERE group_id = \(groupId)"))
    }

    /// The members, the longest-standing first.
    func memberIdsInJoinOrder(_ groupId: Int64) throws -> [Int64] {
        try userIds(db.query("SELECT user_id FROM group_members WHERE group_id = \(groupId) ORDER BY member_seq"))
    }

    private func userIds(_ result: PGResult) throws -> [Int64] {
        let userId = try result.column("user_id", as: Int64.self)
        return try result.rows.map { try $0[userId] }
    }

    func isMember(_ groupId: Int64, _ userId: Int64) throws -> Bool {
        try !db.query("SELECT 1 FROM group_members WHERE group_id = \(groupId) AND user_id = \(userId)").isEmpty
    }

    /// The groups `userId` is a member of.
    func groupIds(ofMember userId: Int64) throws -> [Int64] {
        let result = try db.query("SELECT group_id FROM group_members WHERE user_id = \(userId)")
        let groupId = try result.column("group_id", as: Int64.self)
        return try result.rows.map { try $0[groupId] }
    }

    /// Which of `candidates` are `userId`'s friends. FOR SHARE: a friendship cannot end while the
    /// group that relies on it is being made or joined.
    func friends(of userId: Int64, among candidates: [Int64]) throws -> Set<Int64> {
        let result = try db.query("""
            SELECT friend_id FROM friendships WHERE user_id = \(userId) AND friend_id = ANY(\(PGArray(candidates))::bigint[]) FOR SHARE
            """)
        let friendId = try result.column("friend_id", as: Int64.self)
        return Set(try result.rows.map { try $0[friendId] })
    }

    /// A new group's members. Inserted in order, so the creator is the longest-standing member.
    func insertFounders(_ groupId: Int64, _ members: [Int64]) throws {
        try db.query("""
            INSERT INTO group_members (group_id, user_id)
            SELECT \(groupId), u FROM unnest(\(PGArray(members))::bigint[]) WITH ORDINALITY AS t(u, n) ORDER BY n
            """)
    }

    /// Adds members to a locked group, recounts it and settles the newcomers' join requests.
    func insertMembers(_ groupId: Int64, _ newcomers: [Int64]) throws {
        try db.query("""
            INSERT INTO group_members (group_id, user_id)
            SELECT \(groupId), u FROM unnest(\(PGArray(newcomers))::bigint[]) WITH ORDINALITY AS t(u, n) ORDER BY n ON CONFLICT DO NOTHING
            """)
        try db.query("UPDATE groups SET member_count = (SELECT count(*) FROM group_members WHERE group_id = \(groupId)) WHERE id = \(groupId)")
        // Requests from people who are now members are settled.
        try db.query("""
            UPDATE friend_requests SET status = 1 WHERE dest_type = 2 AND status = 0 AND group_id = \(groupId) AND from_id = ANY(\(PGArray(newcomers))::bigint[])
            """)
    }

    /// Sets a member's card; false when `userId` is not a member.
    func setCard(_ groupId: Int64, userId: Int64, card: String) throws -> Bool {
        try db.query("UPDATE group_members SET card = \(card) WHERE group_id = \(groupId) AND user_id = \(userId)").affectedRows > 0
    }

    /// Removes a member; false when `userId` was not one.
    func removeMember(_ groupId: Int64, _ userId: Int64) throws -> Bool {
        try db.query("DELETE FROM group_members WHERE group_id = \(groupId) AND user_id = \(userId)").affectedRows > 0
    }

    // MARK: join requests

    /// Leaves (or renews) `userId`'s pending request to join; `isNew` is false when one was pending.
    func upsertJoinRequest(from userId: Int64, groupId: Int64, message: String) throws -> (requestId: Int64, isNew: Bool) {
        let row = try db.query("""
            INSERT INTO friend_requests (from_id, dest_type, group_id, message) VALUES (\(userId), 2, \(groupId), \(message))
            ON CONFLICT (from_id, group_id) WHERE status = 0 AND dest_type = 2
            DO UPDATE SET message = EXCLUDED.message, created_at = now()
            RETURNING id, xmax = 0 AS inserted
            """)[0]
        return (try row.decode("id"), try row.decode("inserted"))
    }

    /// The id of `requesterId`'s pending request to join, or nil.
    func pendingJoinRequest(groupId: Int64, from requesterId: Int64) throws -> Int64? {
        try db.query("""
            SELECT id FROM friend_requests WHERE dest_type = 2 AND status = 0 AND group_id = \(groupId) AND from_id = \(requesterId)
            """).first?.decode("id")
    }

    // MARK: showing groups (read by `GroupWriter`)

    /// Up to nine member avatars in join order, newline-separated (avatars never hold a newline),
    /// as the column `head_urls` of a statement over `groups g`.
    static let headUrlsColumn: SQL = """
        (SELECT string_agg(head_url, E'\\n') FROM (SELECT u.head_url FROM group_members m JOIN users u ON u.id = m.user_id
          WHERE m.group_id = g.id AND u.head_url <> '' ORDER BY m.member_seq LIMIT 9) AS heads) AS head_urls
        """

    /// A live group as `getGroupById` shows it to `userId`: the Group's columns with `card`
    /// (NULL for a non-member), `is_member`, `head_urls` and `need_approval`.
    func group(_ groupId: Int64, seenBy userId: Int64) throws -> PGResult {
        try db.query("""
            SELECT g.id, g.name, g.owner_id, g.member_count, gm.card, gm.user_id IS NOT NULL AS is_member, \(GroupsStore.headUrlsColumn),
                   g.need_approval
            FROM groups g LEFT JOIN group_members gm ON gm.group_id = g.id AND gm.user_id = \(userId)
            WHERE g.id = \(groupId) AND g.dissolved_at IS NULL
            """)
    }

    /// The caller's groups, for `ready`: the Group's columns with `card`, and each group's member
    /// list version (`list_version`), which says whether the avatars rendered earlier are still right.
    static func groupsOf(_ userId: Int64) -> SQL {
        """
        SELECT g.id, g.name, g.owner_id, g.member_count, gm.card, COALESCE(v.version, 0) AS list_version
        FROM group_members gm JOIN groups g ON g.id = gm.group_id
        LEFT JOIN member_list_versions v ON v.group_id = g.id
        WHERE gm.user_id = \(userId) AND g.dissolved_at IS NULL ORDER BY gm.joined_at, g.id
        """
    }

    /// The avatars (newline-separated, nil for none) of these groups, by group id.
    func headUrls(ofGroups groupIds: [Int64]) throws -> [Int64: String?] {
        let result = try db.query("""
            SELECT g.id, \(GroupsStore.headUrlsColumn) FROM groups g WHERE g.id = ANY(\(PGArray(groupIds))::bigint[])
            """)
        let id = try result.column("id", as: Int64.self), heads = try result.column("head_urls", as: String?.self)
        var found: [Int64: String?] = [:]
        for row in result.rows { found[try row[id]] = try row[heads] }
        return found
    }

    // MARK: member lists

    /// What `getGroupMember` reads in one statement with the session check (`who`, see
    /// `RequestContext.who`): the group's owner, the list's version, whether the caller is a
    /// member, and the caller's friends (whose mobiles the answer shows in full). No row: no live
    /// session (401); NULL group columns: no such group.
    func memberListState(who: SQL, groupId: Int64, riders: [PGConnection.Rider]) throws -> PGRow? {
        try db.query("""
            WITH who AS (\(who))
            SELECT who.who_id, who.who_stale, g.id AS group_id, g.owner_id,
                   COALESCE((SELECT v.version FROM member_list_versions v WHERE v.group_id = g.id), 0) AS list_version,
                   EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = who.who_id) AS is_member,
                   ARRAY(SELECT f.friend_id FROM friendships f WHERE f.user_id = who.who_id ORDER BY f.friend_id) AS friend_ids
            FROM who LEFT JOIN groups g ON g.id = \(groupId) AND g.dissolved_at IS NULL
            """, riders: riders).first
    }

    /// `memberListState`'s row once the session is adopted from it.
    struct MemberListState {
        var ownerId: Int64?
        var listVersion: Int64
        var isMember: Bool
        /// Ascending, for binary search.
        var friendIds: [Int64]

        /// nil when there is no such live group.
        init?(_ row: PGRow) throws {
            guard try row.decode("group_id", as: Int64?.self) != nil else { return nil }
            ownerId = try row.decode("owner_id")
            listVersion = try row.decode("list_version")
            isMember = try row.decode("is_member")
            friendIds = try row.decode("friend_ids")
        }
    }

    /// A group's member list in join order, for `RenderedMemberList(rows:)`: `card`, `join_time`
    /// and the member's `Profile.columns`.
    func memberList(_ groupId: Int64) throws -> PGResult {
        try db.query("""
            SELECT m.card, (extract(epoch FROM m.joined_at) * 1000)::bigint AS join_time, \(Profile.columns)
            FROM group_members m JOIN users u ON u.id = m.user_id
            WHERE m.group_id = \(groupId) ORDER BY m.member_seq
            """)
    }

    // MARK: name search (statements that ride with the session check; rows hold the Group's columns)

    /// Up to 20 live groups that have `gram` among their name pieces, newest first: the gram's
    /// postings backwards, stopping at the 20th live group.
    static func searchByGram(_ gram: String) -> SQL {
        """
        SELECT g.id, g.name, g.owner_id, g.member_count
        FROM group_name_grams n JOIN groups g ON g.id = n.group_id
        WHERE n.gram = \(gram) AND g.dissolved_at IS NULL ORDER BY n.group_id DESC LIMIT 20
        """
    }

    /// Takes the rarest of `grams` (its postings counted up to one more than
    /// `GroupsFeature.gramWalkLimit`, as `postings`), walks its postings backwards and keeps the
    /// live groups whose name matches `pattern`, stopping at the 20th; one row of NULL group
    /// columns when none matches. The limits are constants in the text, for the planner.
    static func searchByRarestGram(_ grams: [String], pattern: String) -> SQL {
        // The inner LATERAL ... OFFSET 0 makes the name check a lookup per walked posting: as a
        // plain join the planner may pick a merge join against the trigram index instead.
        """
        SELECT w.id, w.name, w.owner_id, w.member_count, p.postings
        FROM (
            SELECT t.gram,
                   (SELECT count(*) FROM (SELECT FROM group_name_grams m WHERE m.gram = t.gram
                                          LIMIT \(unsafeRaw: String(GroupsFeature.gramWalkLimit + 1))) AS x) AS postings
            FROM unnest(\(PGTextArray(grams))::text[]) WITH ORDINALITY AS t(gram, pos)
            ORDER BY postings, t.pos LIMIT 1
        ) AS p
        LEFT JOIN LATERAL (
            SELECT g.id, g.name, g.owner_id, g.member_count
            FROM (SELECT n.group_id FROM group_name_grams n WHERE n.gram = p.gram
                  ORDER BY n.group_id DESC LIMIT \(unsafeRaw: String(GroupsFeature.gramWalkLimit))) AS c
            CROSS JOIN LATERAL (
                SELECT g.id, g.name, g.owner_id, g.member_count FROM groups g
                WHERE g.id = c.group_id AND g.dissolved_at IS NULL AND lower(g.name) LIKE \(pattern) OFFSET 0
            ) AS g
            ORDER BY c.group_id DESC LIMIT 20
        ) AS w ON true
        ORDER BY w.id DESC
        """
    }

    /// The newest 20 live groups whose lower(name) matches `pattern`, through the trigram index.
    static func searchByTrigrams(pattern: String) -> SQL {
        // OFFSET 0 keeps the planner from walking the primary key backwards instead, hoping to meet
        // 20 matches early: with a text that matches few groups, that reads the whole table.
        """
        SELECT id, name, owner_id, member_count FROM (
            SELECT g.id, g.name, g.owner_id, g.member_count FROM groups g
            WHERE lower(g.name) LIKE \(pattern) AND g.dissolved_at IS NULL OFFSET 0
        ) AS found ORDER BY id DESC LIMIT 20
        """
    }
}
