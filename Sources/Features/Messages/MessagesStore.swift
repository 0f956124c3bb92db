import ChatHTTP
import ChatPostgres
import ChatRouting
import Events

/// Every statement of the messaging feature. Methods run on `db` and return typed values read by
/// column name; the static builders are for statements that run elsewhere (in one round trip with
/// the session check, or in `ready`'s plan). A method given the request's context completes its
/// pending session from the statement's row (401 without a live session).
struct MessagesStore {
    let db: PGConnection

    // MARK: conversations

    /// Creates the direct conversation of two users (the caller found none) and returns its id;
    /// if a concurrent first message created it meanwhile, that one.
    func createDirectConversation(_ a: Int64, _ b: Int64) throws -> Int64? {
        let (low, high) = a < b ? (a, b) : (b, a)
        try db.query("""
            INSERT INTO conversations (kind, user_low, user_high) VALUES (1, \(low), \(high)) ON CONFLICT DO NOTHING
            """)
        return try db.query("SELECT id FROM conversations WHERE kind = 1 AND user_low = \(low) AND user_high = \(high)")
            .first?.decode("id", as: Int64.self)
    }

    /// The same for a group's conversation.
    func createGroupConversation(_ groupId: Int64) throws -> Int64? {
        try db.query("INSERT INTO conversations (kind, group_id) VALUES (2, \(groupId)) ON CONFLICT DO NOTHING")
        return try db.query("SELECT id FROM conversations WHERE kind = 2 AND group_id = \(groupId)").first?.decode("id", as: Int64.self)
    }

    /// The conversation the caller may read (a group's from the time they joined), if any. On a
    /// route that checks the session inside its statements, this statement does it.
    static func readableConversation(_ c: RequestContext, destId: Int64, destType: Int) -> SQL {
        let dest = SQLParameter(destId), kind = SQLParameter(destType)
        return """
        WITH who AS (\(c.who))
        SELECT who.who_id, who.who_stale, conv.id AS conversation_id, conv.visible_from
        FROM who LEFT JOIN LATERAL (
            SELECT c.id, 0::bigint AS visible_from FROM conversations c
            WHERE \(kind) = 1 AND c.kind = 1 AND who.who_id <> \(dest)
              AND c.user_low = LEAST(who.who_id, \(dest)) AND c.user_high = GREATEST(who.who_id, \(dest))
            UNION ALL
            SELECT c.id, (extract(epoch FROM m.joined_at) * 1000)::bigint
            FROM group_members m JOIN conversations c ON c.kind = 2 AND c.group_id = m.group_id
            WHERE \(kind) = 2 AND m.group_id = \(dest) AND m.user_id = who.who_id
        ) AS conv ON true
        """
    }

    /// Completes the session check from `readableConversation`'s result and returns the
    /// conversation, if readable.
    static func readableConversation(_ c: RequestContext, in found: PGResult) throws -> MessagesFeature.Conversation? {
        try c.adoptSession(from: found.first)
        guard let row = found.first, let id: Int64 = try row.decode("conversation_id") else { return nil }
        return MessagesFeature.Conversation(id: id, visibleFrom: try row.decode("visible_from"))
    }

    /// The conversation the caller may read, or nil (none yet, or not theirs).
    func readableConversation(_ c: RequestContext, destId: Int64, destType: Int) throws -> MessagesFeature.Conversation? {
        try MessagesStore.readableConversation(c, in: try db.query(MessagesStore.readableConversation(c, destId: destId, destType: destType)))
    }

    // MARK: sendMsg

    /// What decides whether a direct message may be sent, and the pair's conversation if it has one.
    struct DirectRules {
        var isFriend: Bool
        var theyBlock: Bool
        var iBlock: Bool
        var conversationId: Int64?
    }

    /// The session check, the rules of a direct message to `destId` and the conversation, in one
    /// statement; `riders` go along in the same round trip.
    func directRules(_ c: RequestContext, to destId: Int64, riders: [PGConnection.Rider]) throws -> DirectRules {
        let dest = SQLParameter(destId)
        let statement: SQL = """
            WITH who AS (\(c.who))
            SELECT who.who_id, who.who_stale,
                   EXISTS (SELECT 1 FROM friendships WHERE user_id = who.who_id AND friend_id = \(dest)) AS is_friend,
                   EXISTS (SELECT 1 FROM blocks WHERE user_id = \(dest) AND blocked_id = who.who_id) AS they_block,
                   EXISTS (SELECT 1 FROM blocks WHERE user_id = who.who_id AND blocked_id = \(dest)) AS i_block,
                   (SELECT id FROM conversations
                    WHERE kind = 1 AND user_low = LEAST(who.who_id, \(dest)) AND user_high = GREATEST(who.who_id, \(dest)))
                   AS conversation_id
            FROM who
            """
        let row = try db.query(statement, riders: riders).first
        try c.adoptSession(from: row)
        guard let row else { throw HTTPError.unauthorized }
        return DirectRules(isFriend: try row.decode("is_friend"), theyBlock: try row.decode("they_block"),
                           iBlock: try row.decode("i_block"), conversationId: try row.decode("conversation_id"))
    }

    /// The session check, whether the caller is a member of the (not dissolved) group, and the
    /// group's conversation, in one statement. No row: not a member.
    func groupRules(_ c: RequestContext, to groupId: Int64) throws -> (isMember: Bool, conversationId: Int64?) {
        let dest = SQLParameter(groupId)
        let row = try db.query("""
            WITH who AS (\(c.who))
            SELECT who.who_id, who.who_stale,
                   EXISTS (SELECT 1 FROM group_members m JOIN groups g ON g.id = m.group_id
                           WHERE m.group_id = \(dest) AND m.user_id = who.who_id AND g.dissolved_at IS NULL) AS is_member,
                   (SELECT id FROM conversations WHERE kind = 2 AND group_id = \(dest)) AS conversation_id
            FROM who
            """).first
        try c.adoptSession(from: row)
        guard let row else { return (false, nil) }
        return (try row.decode("is_member"), try row.decode("conversation_id"))
    }

    /// Stores a message (or finds the first one with the same clientMsgId); see `MessagesFeature.store`.
    ///
    /// Two identical retries racing both find no first message; the second then fails on the
    /// unique key, the whole statement (its seq and events too) rolls back, and running it again
    /// finds the first one (a new statement sees what committed meanwhile).
    func store(conversationId: Int64, from: Int64, destId: Int64, destType: Int,
               msgType: Int, content: String, clientMsgId: String) throws -> (msgId: Int64, seq: Int64, sendTime: Int64) {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try storeOnce(conversationId: conversationId, from: from, destId: destId, destType: destType,
                                     msgType: msgType, content: content, clientMsgId: clientMsgId)
            } catch let error as PGError where error.isUniqueViolation && attempt < 3 {
                continue
            }
        }
    }

    /// The message with its delivery events, in ONE statement (atomic on its own, so no explicit
    /// transaction and one round trip), then the recipients' workers are notified.
    func storeOnce(conversationId: Int64, from: Int64, destId: Int64, destType: Int,
                   msgType: Int, content: String, clientMsgId: String) throws -> (msgId: Int64, seq: Int64, sendTime: Int64) {
        // Recipients: both sides of a direct chat (the sender too, for their other devices) or
        // every member of the group; an event each, with cursors taken in ascending user order,
        // marked silent for those who muted the conversation. `mute_dest` is how a recipient's
        // conversation_settings name it: the sender for a direct chat, the group for a group.
        let conversation = SQLParameter(conversationId)
        let sender = SQLParameter(from)
        let clientId = SQLParameter(clientMsgId)
        let kind = SQLParameter(destType)
        let dest = SQLParameter(destId)
        let row = try db.query("""
            WITH existing AS (
                SELECT msg_id, seq, send_time FROM messages
                WHERE conversation_id = \(conversation) AND from_id = \(sender) AND client_msg_id = \(clientId)
            ), bump AS (
                UPDATE conversations SET last_seq = last_seq + 1,
                    last_send_time = GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::bigint, last_send_time + 1)
                WHERE id = \(conversation) AND NOT EXISTS (SELECT 1 FROM existing)
                RETURNING last_seq, last_send_time
            ), inserted AS (
                INSERT INTO messages (conversation_id, seq, msg_id, from_id, msg_type, content, client_msg_id, send_time)
                SELECT \(conversation), last_seq, nextval('message_ids'), \(sender), \(msgType), \(content), \(clientId), last_send_time FROM bump
                RETURNING msg_id, seq, send_time
            ), recipients AS (
                SELECT \(sender)::bigint AS user_id WHERE \(kind) = 1
                UNION SELECT \(dest)::bigint WHERE \(kind) = 1
                UNION SELECT user_id FROM group_members WHERE \(kind) = 2 AND group_id = \(dest)
            ), bumped AS (
                INSERT INTO user_event_cursors AS c (user_id, last_cursor)
                SELECT r.user_id, 1 FROM recipients r, inserted ORDER BY r.user_id
                ON CONFLICT (user_id) DO UPDATE SET last_cursor = c.last_cursor + 1
                RETURNING user_id, last_cursor
            ), events AS (
                INSERT INTO user_events (user_id, cursor, type, payload, conversation_id, seq, silent)
                SELECT b.user_id, b.last_cursor, 'message', '{}'::jsonb, \(conversation), i.seq,
                       COALESCE((SELECT s.muted FROM conversation_settings s WHERE s.user_id = b.user_id
                                 AND s.dest_type = \(kind) AND s.dest_id = CASE WHEN \(kind) = 1 THEN \(sender) ELSE \(dest) END), false)
                FROM bumped b, inserted i
                RETURNING user_id
            )
            SELECT msg_id, seq, send_time, (SELECT string_agg(user_id::text, ',') FROM events) AS recipients FROM inserted
            UNION ALL SELECT msg_id, seq, send_time, NULL FROM existing
            """).first
        guard let row else { throw MessagesFeature.StoreError.noConversation }
        // NULL: the message was there already, and so were its events.
        if let recipients = try row.decode("recipients", as: String?.self) {
            EventLog.notifyAfterCommit(db, recipients.split(separator: ",").compactMap { Int64($0) })
        }
        return (try row.decode("msg_id"), try row.decode("seq"), try row.decode("send_time"))
    }

    // MARK: history

    /// A page of history, newest first straight from the (conversation_id, send_time) index of
    /// one partition (send times are strictly increasing within a conversation, so they order as
    /// seq does). Only the messages table: who a message is addressed to follows from the request.
    static func historyPage(conversationId: Int64, before: Int64, visibleFrom: Int64, size: Int) -> SQL {
        """
        SELECT \(MessageWriter.columns) FROM messages m
        WHERE m.conversation_id = \(conversationId) AND m.send_time < \(before) AND m.send_time >= \(visibleFrom)
        ORDER BY m.send_time DESC LIMIT \(size)
        """
    }

    func historyPage(of conversation: MessagesFeature.Conversation, before: Int64, size: Int) throws -> PGResult {
        try db.query(MessagesStore.historyPage(conversationId: conversation.id, before: before,
                                               visibleFrom: conversation.visibleFrom, size: size))
    }

    /// The conversation the caller may read and, in the same round trip, the page of `hint` (the
    /// conversation that a previous request resolved to); the page is only right if they agree.
    func readableConversation(_ c: RequestContext, destId: Int64, destType: Int, pageOf hint: MessagesFeature.Conversation,
                              before: Int64, size: Int) throws -> (conversation: MessagesFeature.Conversation?, hintedPage: PGResult) {
        let results = try db.pipeline([
            MessagesStore.readableConversation(c, destId: destId, destType: destType),
            MessagesStore.historyPage(conversationId: hint.id, before: before, visibleFrom: hint.visibleFrom, size: size),
        ])
        return (try MessagesStore.readableConversation(c, in: results[0]), results[1])
    }

    // MARK: markRead

    /// Moves the reader's position to `seq`: never backwards, never past the last message.
    func markRead(userId: Int64, conversationId: Int64, seq: Int64) throws {
        let conversation = SQLParameter(conversationId)
        try db.query("""
            INSERT INTO conversation_reads (user_id, conversation_id, read_seq)
            SELECT \(userId), \(conversation), LEAST(\(seq), last_seq) FROM conversations WHERE id = \(conversation)
            ON CONFLICT (user_id, conversation_id)
            DO UPDATE SET read_seq = GREATEST(conversation_reads.read_seq, EXCLUDED.read_seq)
            """)
    }

    // MARK: unread counts (ready)

    /// The conversations where something may be unread (the last seq is past the read position),
    /// as a column of `ready`'s user row (`u`): six numbers each, as one two-dimensional bigint[]
    /// (read flat, row by row) in `ready.unread`'s order (direct chats, then groups, by
    /// destination): conversation id, destination, destination type, last seq, read position,
    /// visible-from time (ms). One aggregate rather than a row per number: PostgreSQL's cost here is
    /// mostly per plan node and per row.
    static let unreadCandidatesColumn: SQL = """
        COALESCE((
            SELECT array_agg(ARRAY[mine.id, mine.dest, mine.kind::bigint, mine.last_seq, COALESCE(r.read_seq, 0),
                                   mine.visible_from] ORDER BY mine.kind, mine.dest)
            FROM (
                SELECT c.id, c.last_seq, 1 AS kind, c.user_high AS dest, 0::bigint AS visible_from
                FROM conversations c WHERE c.kind = 1 AND c.user_low = u.id
                UNION ALL
                SELECT c.id, c.last_seq, 1, c.user_low, 0::bigint
                FROM conversations c WHERE c.kind = 1 AND c.user_high = u.id
                UNION ALL
                SELECT c.id, c.last_seq, 2, c.group_id, (extract(epoch FROM m.joined_at) * 1000)::bigint
                FROM group_members m JOIN conversations c ON c.kind = 2 AND c.group_id = m.group_id
                WHERE m.user_id = u.id
            ) AS mine
            LEFT JOIN conversation_reads r ON r.user_id = u.id AND r.conversation_id = mine.id
            WHERE mine.last_seq > COALESCE(r.read_seq, 0)), '{}') AS unread_candidates
        """

    /// `unreadCandidatesColumn` of `ready`'s user row, flat (six numbers per conversation).
    static func unreadCandidates(_ user: PGRow) throws -> [Int64] {
        try user.decode("unread_candidates")
    }

    /// Messages from others in a seq range (after `afterSeq`, up to `upToSeq`) and, in a group,
    /// from the join on (`visibleFrom`), per conversation, for `reader`, in the order given.
    static func unreadCount(conversations: [Int64], afterSeq: [Int64], upToSeq: [Int64], visibleFrom: [Int64],
                            reader: Int64) -> SQL {
        """
        SELECT (SELECT count(*) FROM messages x
                WHERE x.conversation_id = t.id AND x.seq > t.after_seq AND x.seq <= t.up_to_seq
                  AND x.from_id <> \(reader) AND x.send_time >= t.visible_from) AS unread
        FROM unnest(\(PGArray(conversations))::bigint[], \(PGArray(afterSeq))::bigint[], \(PGArray(upToSeq))::bigint[],
                    \(PGArray(visibleFrom))::bigint[]) WITH ORDINALITY
             AS t(id, after_seq, up_to_seq, visible_from, n)
        ORDER BY t.n
        """
    }

    /// `unreadCount`'s counts, in the order asked.
    static func unreadCounts(_ result: PGResult) throws -> [Int64] {
        let unread = try result.column("unread", as: Int64.self)
        return try result.rows.map { try $0[unread] }
    }

    // MARK: sync

    /// A user's events after `since`, oldest first, at most `limit` (each message event with its
    /// message and conversation), and the stream's bounds: two statements for one round trip.
    static func syncPage(userId: Int64, since: Int64, limit: Int) -> [SQL] {
        let user = SQLParameter(userId)
        return [
            """
            SELECT e.cursor, e.type, e.payload::text AS payload, e.silent, \(MessageWriter.columns), \(MessageWriter.conversationColumns)
            FROM user_events e
            LEFT JOIN messages m ON m.conversation_id = e.conversation_id AND m.seq = e.seq
            LEFT JOIN conversations c ON c.id = e.conversation_id
            WHERE e.user_id = \(user) AND e.cursor > \(since) ORDER BY e.cursor LIMIT \(limit)
            """,
            """
            SELECT COALESCE((SELECT last_cursor FROM user_event_cursors WHERE user_id = \(user)), 0) AS latest,
                   COALESCE((SELECT min(cursor) FROM user_events WHERE user_id = \(user)), 0) AS oldest
            """,
        ]
    }

    /// Where the events of `syncPage`'s first result are, looked up by name once for all its rows.
    struct SyncEventColumns {
        let cursor: PGColumn<Int64>
        let type: PGColumn<String>
        /// The event's data (JSON text), for every event but a message.
        let payload: PGColumn<String>
        let silent: PGColumn<Bool>
        let message: MessageWriter.Columns
        let conversation: MessageWriter.ConversationColumns

        init(_ result: PGResult) throws {
            cursor = try result.column("cursor")
            type = try result.column("type")
            payload = try result.column("payload")
            silent = try result.column("silent")
            message = try MessageWriter.Columns(result)
            conversation = try MessageWriter.ConversationColumns(result)
        }
    }

    /// The last cursor taken in the stream and the oldest one kept (0: none), from `syncPage`'s
    /// second result.
    static func syncBounds(_ result: PGResult) throws -> (latest: Int64, oldest: Int64) {
        guard let row = result.first else { throw HTTPError.internalError }
        return (try row.decode("latest"), try row.decode("oldest"))
    }
}
