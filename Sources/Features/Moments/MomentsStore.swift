import ChatHTTP
import ChatPostgres
import Accounts
import Social

/// All of the moments feature's SQL (tables: sql/0010_moments.sql).
///
/// Who sees what (API.md §6), in one place:
/// - a post: its author, and the author's friends while neither blocks the other;
///   `getFriendFeed` also shows a stranger the author's 10 newest posts (never through a block);
/// - a comment or a praise: to a viewer who wrote it, who wrote the post, or who is a friend of
///   whoever wrote it; never across a block between the viewer and its writer.
struct MomentsStore {
    let db: PGConnection

    /// Newest posts a page holds.
    static let pageSize = 10
    /// How many of a user's newest posts a stranger may see.
    static let strangerPosts = 10
    /// How many images the album shows.
    static let albumSize = 4

    // MARK: visibility, as conditions on id expressions

    /// `viewer` may see every post of `author`.
    static func seesAllPosts(viewer: SQL, author: SQL) -> SQL {
        """
        (\(author) = \(viewer) OR (\(SocialRelations.areFriends(viewer, author)) \
        AND NOT \(SocialRelations.blockedEitherWay(viewer, author))))
        """
    }

    /// `viewer` may see what `writer` wrote under a post of `author` (a comment, a praise).
    static func seesReaction(viewer: SQL, writer: SQL, author: SQL) -> SQL {
        """
        ((\(writer) = \(viewer) OR \(author) = \(viewer) OR \(SocialRelations.areFriends(viewer, writer))) \
        AND NOT \(SocialRelations.blockedEitherWay(viewer, writer)))
        """
    }

    /// The id of the oldest of `author`'s newest posts a stranger may see (0 when none).
    static func oldestStrangerPost(of author: SQL) -> SQL {
        """
        COALESCE((SELECT min(n.id) FROM (SELECT s.id FROM feeds s WHERE s.user_id = \(author) \
        ORDER BY s.id DESC LIMIT \(unsafeRaw: String(strangerPosts))) n), 0)
        """
    }

    static func millis(_ column: SQL) -> SQL { "(extract(epoch FROM \(column)) * 1000)::bigint" }

    // MARK: pages of posts

    /// Which posts a page shows: the body of a CTE `page` with one column, `feed_id`, that may
    /// use `who.who_id` (the viewer).
    enum Page {
        /// The viewer's timeline (fan-out on write; visibility checked again here).
        case timeline
        /// The viewer's own posts.
        case mine
        /// `author`'s posts as the viewer may see them.
        case of(author: Int64)

        func statement(before: Int64, offset: Int) -> SQL {
            let limit: SQL = "\(unsafeRaw: String(MomentsStore.pageSize))"
            switch self {
            case .timeline:
                return """
                    SELECT t.feed_id FROM who JOIN feed_timeline t ON t.owner_id = who.who_id
                    JOIN feeds f ON f.id = t.feed_id
                    WHERE t.feed_id < \(before)
                      AND \(MomentsStore.seesAllPosts(viewer: "who.who_id", author: "t.author_id"))
                    ORDER BY t.feed_id DESC LIMIT \(limit) OFFSET \(offset)
                    """
            case .mine:
                return """
                    SELECT f.id AS feed_id FROM who JOIN feeds f ON f.user_id = who.who_id
                    WHERE f.id < \(before)
                    ORDER BY f.id DESC LIMIT \(limit) OFFSET \(offset)
                    """
            case .of(let author):
                let authorId = SQLParameter(author)
                return """
                    SELECT f.id AS feed_id FROM who JOIN feeds f ON f.user_id = \(authorId)
                    WHERE f.id < \(before)
                      AND NOT \(SocialRelations.blockedEitherWay("who.who_id", "\(authorId)"))
                      AND (\(MomentsStore.seesAllPosts(viewer: "who.who_id", author: "\(authorId)"))
                           OR f.id >= \(MomentsStore.oldestStrangerPost(of: "\(authorId)")))
                    ORDER BY f.id DESC LIMIT \(limit) OFFSET \(offset)
                    """
            }
        }
    }

    /// A page of posts with everything `FeedWriter` writes: one row per post, newest first, each
    /// with the session columns of `who`; one row with a NULL `feed_id` when the page is empty.
    /// `destExists` adds a `dest_exists` column (whether that user exists).
    static func page(who: SQL, _ page: Page, before: Int64, offset: Int, imagePrefix: String, destExists: Int64? = nil) -> SQL {
        let prefix = SQLParameter(imagePrefix)
        let exists: SQL = destExists.map { "EXISTS (SELECT 1 FROM users d WHERE d.id = \($0)) AS dest_exists," } ?? ""
        return """
            WITH who AS (\(who)), page AS (\(page.statement(before: before, offset: offset)))
            SELECT who.who_id, who.who_stale, \(exists)
                   f.id AS feed_id, f.text AS feed_text, \(millis("f.created_at")) AS create_time,
                   (SELECT COALESCE(json_agg(\(prefix)::text || x.path ORDER BY x.n), '[]')
                      FROM unnest(f.images) WITH ORDINALITY AS x(path, n))::text AS images_json,
                   \(Profile.columns),
                   (f.user_id = who.who_id OR \(SocialRelations.areFriends("who.who_id", "f.user_id"))) AS reveal_mobile,
                   (SELECT COALESCE(json_agg(json_build_object(
                               'commentId', c.id, 'userId', c.user_id, 'name', cu.name, 'headUrl', cu.head_url,
                               'replyId', c.reply_id, 'replyName', COALESCE(ru.name, ''), 'text', c.text,
                               'createTime', \(millis("c.created_at"))) ORDER BY c.id), '[]')
                      FROM feed_comments c JOIN users cu ON cu.id = c.user_id
                      LEFT JOIN users ru ON ru.id = c.reply_id
                      WHERE c.feed_id = f.id
                        AND \(seesReaction(viewer: "who.who_id", writer: "c.user_id", author: "f.user_id")))::text AS comments_json,
                   (SELECT COALESCE(json_agg(json_build_object(
                               'userId', p.user_id, 'name', pu.name, 'headUrl', pu.head_url,
                               'createTime', \(millis("p.created_at"))) ORDER BY p.created_at, p.user_id), '[]')
                      FROM feed_praises p JOIN users pu ON pu.id = p.user_id
                      WHERE p.feed_id = f.id
                        AND \(seesReaction(viewer: "who.who_id", writer: "p.user_id", author: "f.user_id")))::text AS praises_json
            FROM who LEFT JOIN page ON true
            LEFT JOIN feeds f ON f.id = page.feed_id
            LEFT JOIN users u ON u.id = f.user_id
            ORDER BY f.id DESC NULLS LAST
            """
    }

    /// Up to `albumSize` newest image URLs of `author`'s posts that the viewer may see (a
    /// stranger: among the 10 newest), each a row with the session columns of `who`; one row
    /// with a NULL url when there is none. `dest_exists` says whether the author exists.
    static func album(who: SQL, author: Int64, imagePrefix: String) -> SQL {
        let authorId = SQLParameter(author)
        return """
            WITH who AS (\(who))
            SELECT who.who_id, who.who_stale, EXISTS (SELECT 1 FROM users d WHERE d.id = \(authorId)) AS dest_exists, a.url
            FROM who LEFT JOIN LATERAL (
                SELECT \(imagePrefix)::text || x.path AS url
                FROM feeds f CROSS JOIN LATERAL unnest(f.images) WITH ORDINALITY AS x(path, n)
                WHERE f.user_id = \(authorId) AND cardinality(f.images) > 0
                  AND NOT \(SocialRelations.blockedEitherWay("who.who_id", "\(authorId)"))
                  AND (\(seesAllPosts(viewer: "who.who_id", author: "\(authorId)"))
                       OR f.id >= \(oldestStrangerPost(of: "\(authorId)")))
                ORDER BY f.id DESC, x.n LIMIT \(unsafeRaw: String(albumSize))
            ) a ON true
            """
    }

    // MARK: writing

    /// Stores a post and puts it into the timelines of its author and of the author's friends,
    /// in one statement that runs only for a live session (`who`). The `feed_id` column is NULL
    /// when there was none.
    static func addFeed(who: SQL, text: String, images: [String]) -> SQL {
        """
        WITH who AS (\(who)),
        post AS (
            INSERT INTO feeds (user_id, text, images)
            SELECT who.who_id, \(text), \(PGTextArray(images))::text[] FROM who
            RETURNING id, user_id
        ),
        fanned AS (
            INSERT INTO feed_timeline (owner_id, feed_id, author_id)
            SELECT o.owner_id, post.id, post.user_id FROM post
            CROSS JOIN LATERAL (SELECT post.user_id AS owner_id
                                UNION ALL \(SocialRelations.friendIds(of: "post.user_id"))) o
        )
        SELECT who.who_id, who.who_stale, post.id AS feed_id FROM who LEFT JOIN post ON true
        """
    }

    /// A post as someone about to react to it sees it: its author, whether they may react
    /// (author or friend, no block) and whether a block stands between them. Holds the post
    /// until the transaction ends, so that it cannot go in between. nil: no such post.
    func postForReaction(_ feedId: Int64, by userId: Int64) throws -> (authorId: Int64, mayReact: Bool, blocked: Bool)? {
        let user = SQLParameter(userId)
        guard let row = try db.query("""
            SELECT f.user_id, \(MomentsStore.seesAllPosts(viewer: "\(user)", author: "f.user_id")) AS may_react,
                   \(SocialRelations.blockedEitherWay("\(user)", "f.user_id")) AS blocked
            FROM feeds f WHERE f.id = \(feedId) FOR KEY SHARE OF f
            """).first else { return nil }
        return (try row.decode("user_id"), try row.decode("may_react"), try row.decode("blocked"))
    }

    /// Whether `userId` took part in the post: wrote it or commented on it.
    func tookPart(_ userId: Int64, in feedId: Int64, authorId: Int64) throws -> Bool {
        if userId == authorId { return true }
        return try !db.query("SELECT 1 FROM feed_comments WHERE feed_id = \(feedId) AND user_id = \(userId) LIMIT 1").isEmpty
    }

    func isFriend(_ userId: Int64, of other: Int64) throws -> Bool {
        try !db.query("SELECT 1 WHERE \(SocialRelations.areFriends("\(userId)", "\(other)"))").isEmpty
    }

    func addComment(feedId: Int64, userId: Int64, replyId: Int64, text: String) throws -> (id: Int64, createTime: Int64) {
        guard let row = try db.query("""
            INSERT INTO feed_comments (feed_id, user_id, reply_id, text) VALUES (\(feedId), \(userId), \(replyId), \(text))
            RETURNING id, \(MomentsStore.millis("created_at")) AS create_time
            """).first else { throw HTTPError.internalError }
        return (try row.decode("id"), try row.decode("create_time"))
    }

    /// True when the praise is new.
    func addPraise(feedId: Int64, userId: Int64) throws -> Bool {
        try db.query("""
            INSERT INTO feed_praises (feed_id, user_id) VALUES (\(feedId), \(userId)) ON CONFLICT DO NOTHING
            """).affectedRows > 0
    }

    /// True when there was a praise to take back.
    func removePraise(feedId: Int64, userId: Int64) throws -> Bool {
        try db.query("DELETE FROM feed_praises WHERE feed_id = \(feedId) AND user_id = \(userId)").affectedRows > 0
    }

    /// Deletes one of the user's posts (its comments and praises go with it) and its rows in the
    /// timelines of the author and the author's friends. False: no such post of theirs.
    func deletePost(_ feedId: Int64, of userId: Int64) throws -> Bool {
        let result = try db.query("""
            WITH gone AS (DELETE FROM feeds WHERE id = \(feedId) AND user_id = \(userId) RETURNING id, user_id),
            unfanned AS (
                DELETE FROM feed_timeline t USING gone
                WHERE t.feed_id = gone.id
                  AND t.owner_id IN (SELECT gone.user_id UNION ALL \(SocialRelations.friendIds(of: "gone.user_id")))
            )
            SELECT count(*) AS deleted FROM gone
            """)
        return try (result.first?.decode("deleted", as: Int64.self) ?? 0) > 0
    }

    /// Deletes a comment its writer or the post's author asks to delete. False: no such comment
    /// they may delete.
    func deleteComment(_ commentId: Int64, by userId: Int64) throws -> Bool {
        let user = SQLParameter(userId)
        return try db.query("""
            DELETE FROM feed_comments c USING feeds f
            WHERE c.id = \(commentId) AND f.id = c.feed_id AND (c.user_id = \(user) OR f.user_id = \(user))
            """).affectedRows > 0
    }

    /// Whether `viewer` may see the post at all (for an answer that does not tell a hidden post
    /// from a missing one).
    func canSee(_ feedId: Int64, viewer: Int64) throws -> Bool {
        let user = SQLParameter(viewer)
        return try !db.query("""
            SELECT 1 FROM feeds f WHERE f.id = \(feedId)
              AND NOT \(SocialRelations.blockedEitherWay("\(user)", "f.user_id"))
              AND (\(MomentsStore.seesAllPosts(viewer: "\(user)", author: "f.user_id"))
                   OR f.id >= \(MomentsStore.oldestStrangerPost(of: "f.user_id")))
            """).isEmpty
    }
}
