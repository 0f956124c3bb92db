import ChatConfig
import ChatHTTP
import ChatPostgres
import ChatRouting
import ChatCache
import ChatSecurity
import Accounts
import Groups
import Events

/// Messaging (API.md §5): send, history, read positions, unread counts, and long-poll delivery.
///
/// Every conversation (a pair of users, or a group) has a gapless sequence: a message takes
/// `last_seq + 1` under the conversation row's lock in the statement that stores it, so two
/// senders can never get the same number, and a failed statement gives its number back.
/// Delivery reads the per-user event stream (`user_events`), where each message is referenced
/// once per recipient; `/chat/sync` parks when there is nothing new and is woken through
/// PostgreSQL NOTIFY by whichever worker stored the message.
public final class MessagesFeature {
    /// Message types a client may send; 20 (red packet), 21 (transfer) and 30 (system notice) are
    /// posted by the server itself.
    public static let clientTypes: ClosedRange<Int> = 1...8
    static let contentLength = 4000
    static let clientMsgIdLength = 64
    static let syncPage = 100
    static let maxSyncTimeout = 30

    /// The conversations recent history requests resolved to (see `HistoryHints`).
    let historyHints: HistoryHints
    /// Unread counts already counted, per user (see `UnreadCounts`).
    let unreadCounts: UnreadCounts
    /// The direct conversations this worker has seen, by pair (see `DirectConversationIds`).
    let directConversations: DirectConversationIds

    /// sendMsg's checks from this worker's copies (docs/caching.md), set by `Application`: one
    /// user's relation to another from the social feature's copies of relations, and the
    /// statement that fills a user's copy.
    public var cachedRelation: ((_ me: Int64, _ other: Int64) -> (isFriend: Bool, remark: [UInt8], blocked: Bool)?)?
    public var relationFill: ((_ me: Int64) -> PGConnection.Rider?)?

    /// The per-user message rate (`rate_limit.send_msg.per_user`), counted in this worker.
    public var sendLimiter: LocalRateLimiter?

    /// - Parameter budgets: memory for what this feature keeps (`CacheRegistry`; none: nothing is
    ///   kept, every count and lookup goes to PostgreSQL).
    public init(budgets: CacheBudgets = .none) {
        unreadCounts = UnreadCounts(budgets: budgets)
        historyHints = HistoryHints(budgets: budgets)
        directConversations = DirectConversationIds(budgets: budgets)
    }

    public func register(on router: Router) {
        router.add("/chat/sendMsg", authInQuery: true, sendMsg)
        router.add("/chat/getMsgHistory", authInQuery: true, getMsgHistory)
        router.add("/chat/sync", sync)
        router.add("/chat/markRead", markRead)
    }

    // MARK: conversations

    struct Conversation: Equatable {
        var id: Int64
        /// For a group: members see messages sent from this time on (ms); 0 for a direct chat.
        var visibleFrom: Int64
    }

    /// Creates the direct conversation of two users (the caller found none) and returns its id;
    /// if a concurrent first message created it meanwhile, that one.
    static func createDirectConversation(_ db: PGConnection, _ a: Int64, _ b: Int64) throws -> Int64? {
        let (low, high) = a < b ? (a, b) : (b, a)
        try db.query("""
            INSERT INTO conversations (kind, user_low, user_high) VALUES (1, \(low), \(high)) ON CONFLICT DO NOTHING
            """)
        return try db.query("SELECT id FROM conversations WHERE kind = 1 AND user_low = \(low) AND user_high = \(high)").first?.int64(0)
    }

    /// The same for a group's conversation.
    static func createGroupConversation(_ db: PGConnection, _ groupId: Int64) throws -> Int64? {
        try db.query("INSERT INTO conversations (kind, group_id) VALUES (2, \(groupId)) ON CONFLICT DO NOTHING")
        return try db.query("SELECT id FROM conversations WHERE kind = 2 AND group_id = \(groupId)").first?.int64(0)
    }

    /// The conversation the caller may read (a group's from the time they joined), or nil (none
    /// yet, or not theirs). On a route that checks the session inside its statements, this
    /// statement does it.
    static func readableConversation(_ c: RequestContext, destId: Int64, destType: Int) throws -> Conversation? {
        try decodeReadableConversation(c, try c.db.query(readableConversationStatement(c, destId: destId, destType: destType)))
    }

    static func readableConversationStatement(_ c: RequestContext, destId: Int64, destType: Int) -> SQL {
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

    /// Completes the session check from `readableConversationStatement`'s result (401 without a
    /// live session) and returns the conversation, if readable.
    static func decodeReadableConversation(_ c: RequestContext, _ found: PGResult) throws -> Conversation? {
        try c.adoptSession(from: found.first)
        guard let row = found.first, let id: Int64 = try row.decode("conversation_id") else { return nil }
        return Conversation(id: id, visibleFrom: try row.decode("visible_from"))
    }

    // MARK: sendMsg

    func sendMsg(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        let msgType = try c.params.requiredInt("msgType", in: MessagesFeature.clientTypes)
        let content = try c.params.required("content", maxLength: MessagesFeature.contentLength)
        let clientMsgId = try c.params.required("clientMsgId", maxLength: MessagesFeature.clientMsgIdLength)
        guard clientMsgId.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw HTTPError.invalid("clientMsgId")
        }
        let db = try c.db
        // A direct message from this worker's copies: the session, both users' relations and the
        // conversation's id all held and current, so the message's statement is the only round trip.
        var relationsToFill: [PGConnection.Rider] = []
        if destType == 1, !c.isSessionPending {
            let me = c.userId
            guard destId != me else { return .outcome(-1, "you cannot message yourself") }
            let mine = cachedRelation?(me, destId), theirs = cachedRelation?(destId, me)
            if let mine, let theirs, let conversationId = directConversations.id(me, destId) {
                if let refusal = MessagesFeature.directRefusal(isFriend: mine.isFriend, theyBlock: theirs.blocked, iBlock: mine.blocked) {
                    return refusal
                }
                try sendLimiter?.check(me)
                do {
                    return MessagesFeature.sentAnswer(try MessagesFeature.store(db, conversationId: conversationId, from: me, destId: destId,
                                                                                destType: 1, msgType: msgType, content: content,
                                                                                clientMsgId: clientMsgId))
                } catch MessagesFeature.StoreError.noConversation {
                    // Deleted with one of its users since this worker saw it: look it up again.
                    directConversations.forget(me, destId)
                }
            }
            // What is missing rides along with the statement below, for the next message.
            if mine == nil, let fill = relationFill?(me) { relationsToFill.append(fill) }
            if theirs == nil, let fill = relationFill?(destId) { relationsToFill.append(fill) }
        }
        // The session check (on this route it rides in this statement), the rules and the
        // conversation: one round trip.
        var conversationId: Int64?
        let me: Int64
        if destType == 1 {
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
            let row = try db.query(statement, riders: relationsToFill).first
            try c.adoptSession(from: row)
            me = c.userId
            guard let row else { throw HTTPError.unauthorized }
            guard destId != me else { return .outcome(-1, "you cannot message yourself") }
            if let refusal = MessagesFeature.directRefusal(isFriend: try row.decode("is_friend"), theyBlock: try row.decode("they_block"),
                                                           iBlock: try row.decode("i_block")) {
                return refusal
            }
            try sendLimiter?.check(me)
            conversationId = try row.decode("conversation_id")
            if conversationId == nil { conversationId = try MessagesFeature.createDirectConversation(db, me, destId) }
            if let conversationId { directConversations.remember(conversationId, me, destId) }
        } else {
            let dest = SQLParameter(destId)
            let row = try db.query("""
                WITH who AS (\(c.who))
                SELECT who.who_id, who.who_stale,
                       EXISTS (SELECT 1 FROM group_members m JOIN groups g ON g.id = m.group_id
                               WHERE m.group_id = \(dest) AND m.user_id = who.who_id AND g.dissolved_at IS NULL) AS is_member,
                       (SELECT id FROM conversations WHERE kind = 2 AND group_id = \(dest)) AS conversation_id
                FROM who
                """).first
            try c.adoptSession(from: row)
            me = c.userId
            guard let row, try row.decode("is_member") else { return .outcome(-1, "only members can message a group") }
            try sendLimiter?.check(me)
            conversationId = try row.decode("conversation_id")
            if conversationId == nil { conversationId = try MessagesFeature.createGroupConversation(db, destId) }
        }
        guard let conversationId else { throw HTTPError.internalError }
        return MessagesFeature.sentAnswer(try MessagesFeature.store(db, conversationId: conversationId, from: me, destId: destId,
                                                                    destType: destType, msgType: msgType, content: content,
                                                                    clientMsgId: clientMsgId))
    }

    /// sendMsg's answer for a stored (or found) message.
    static func sentAnswer(_ stored: (msgId: Int64, seq: Int64, sendTime: Int64)) -> Response {
        .ok(["msgId": .int(stored.msgId), "seq": .int(stored.seq), "sendTime": .int(stored.sendTime)])
    }

    /// Why a direct message is refused, in the contract's order, or nil when it may be sent.
    static func directRefusal(isFriend: Bool, theyBlock: Bool, iBlock: Bool) -> Response? {
        if !isFriend { return .outcome(-1, "only friends can message each other") }
        if theyBlock { return .outcome(-1, "this user does not accept your messages") }
        if iBlock { return .outcome(-1, "you block this user; unblock them first") }
        return nil
    }

    enum StoreError: Error {
        /// The conversation's row is gone (deleted with one of its users or its group).
        case noConversation
    }

    /// Stores a message (or finds the first one with the same clientMsgId) with its delivery
    /// events, in ONE statement (atomic on its own, so no explicit transaction and one round
    /// trip), then notifies the recipients' workers. Also for features that post messages
    /// themselves (red packets, transfers).
    ///
    /// Two identical retries racing both find no first message; the second then fails on the
    /// unique key, the whole statement (its seq and events too) rolls back, and running it again
    /// finds the first one (a new statement sees what committed meanwhile).
    public static func store(_ db: PGConnection, conversationId: Int64, from: Int64, destId: Int64, destType: Int,
                             msgType: Int, content: String, clientMsgId: String) throws -> (msgId: Int64, seq: Int64, sendTime: Int64) {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try storeOnce(db, conversationId: conversationId, from: from, destId: destId, destType: destType,
                                     msgType: msgType, content: content, clientMsgId: clientMsgId)
            } catch let error as PGError where error.isUniqueViolation && attempt < 3 {
                continue
            }
        }
    }

    static func storeOnce(_ db: PGConnection, conversationId: Int64, from: Int64, destId: Int64, destType: Int,
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
            SELECT msg_id, seq, send_time, (SELECT string_agg(user_id::text, ',') FROM events) FROM inserted
            UNION ALL SELECT msg_id, seq, send_time, NULL FROM existing
            """).first
        guard let row else { throw StoreError.noConversation }
        if let recipients = row.string(3) {
            EventLog.notifyAfterCommit(db, recipients.split(separator: ",").compactMap { Int64($0) })
        }
        return (row.int64Value(0), row.int64Value(1), row.int64Value(2))
    }

    // MARK: history

    /// The columns of a message as `messageJSON` reads them (m: messages, c: conversations).
    static let messageColumns = "m.msg_id, m.seq, m.from_id, m.msg_type, m.content, m.send_time, c.kind, c.user_low, c.user_high, c.group_id"

    static func messageJSON(_ row: PGRow, offset: Int = 0) -> JSON {
        let from = row.int64Value(offset + 2)
        let kind = row.int(offset + 6) ?? 1
        let destId: Int64
        if kind == 1 {
            let low = row.int64Value(offset + 7)
            destId = from == low ? row.int64Value(offset + 8) : low
        } else {
            destId = row.int64Value(offset + 9)
        }
        return .object([
            ("msgId", .int(row.int64Value(offset))), ("seq", .int(row.int64Value(offset + 1))), ("fromId", .int(from)),
            ("destId", .int(destId)), ("destType", .int(kind)), ("msgType", .int(row.int64Value(offset + 3))),
            ("content", .string(row.text(offset + 4))), ("sendTime", .int(row.int64Value(offset + 5))),
        ])
    }

    /// A page of history, newest first straight from the (conversation_id, send_time) index of
    /// one partition (send times are strictly increasing within a conversation, so they order as
    /// seq does). Only the messages table: who a message is addressed to follows from the request.
    static func historyPage(conversationId: Int64, before: Int64, visibleFrom: Int64, size: Int) -> SQL {
        """
        SELECT m.msg_id, m.seq, m.from_id, m.msg_type, m.content, m.send_time FROM messages m
        WHERE m.conversation_id = \(conversationId) AND m.send_time < \(before) AND m.send_time >= \(visibleFrom)
        ORDER BY m.send_time DESC LIMIT \(size)
        """
    }

    func getMsgHistory(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        // Default: everything (not "before this host's clock", which may lag the database's).
        let before = try c.params.int64("sendTime", in: 0...Int64.max) ?? Int64.max
        let size = try c.params.int("size", in: 1...100) ?? 20
        let db = try c.db
        let check = MessagesFeature.readableConversationStatement(c, destId: destId, destType: destType)
        // The page query names its conversation by id, so that PostgreSQL reads one partition; the
        // id comes from the check. When the last request of this session for this conversation
        // left a hint, the page is read in the same round trip as the check, and used only if
        // the check confirms the hint (same conversation, same visible-from time); otherwise, or
        // without a hint, the page is read after the check.
        let hintKey = HistoryHints.Key(principal: c.isSessionPending ? c.pendingToken.map { Sessions.hash($0) } ?? [] : [], userId: c.userId,
                                       destId: destId, destType: destType)
        var conversation: Conversation?
        var page: PGResult?
        if let hint = historyHints.hint(for: hintKey) {
            let results = try db.pipeline([check, MessagesFeature.historyPage(conversationId: hint.id, before: before,
                                                                               visibleFrom: hint.visibleFrom, size: size)])
            conversation = try MessagesFeature.decodeReadableConversation(c, results[0])
            if conversation == hint { page = results[1] }
        } else {
            conversation = try MessagesFeature.decodeReadableConversation(c, try db.query(check))
        }
        guard let conversation else {
            historyHints.forget(hintKey)
            if try destType == 2 && !GroupsFeature.isMember(db, destId, c.userId) {
                throw HTTPError.forbidden("only members can read a group's messages")
            }
            return .ok([])
        }
        historyHints.remember(conversation, for: hintKey)
        let rows = try page ?? db.query(MessagesFeature.historyPage(conversationId: conversation.id, before: before,
                                                                    visibleFrom: conversation.visibleFrom, size: size))
        let me = c.userId
        // The contract wants oldest first: the page is read newest first.
        let answer = JSONWriter.array(count: rows.rowCount, bytesPerElement: 200) { position, w in
            let row = rows[rows.rowCount - 1 - position]
            let from = row.int64Value(2)
            // In a direct chat a message goes to whichever of the two did not send it.
            let addressee = destType == 2 ? destId : (from == me ? destId : me)
            w.raw("{\"msgId\":")
            w.int(row.int64Value(0))
            w.raw(",\"seq\":")
            w.int(row.int64Value(1))
            w.raw(",\"fromId\":")
            w.int(from)
            w.raw(",\"destId\":")
            w.int(addressee)
            w.raw(",\"destType\":")
            w.int(Int64(destType))
            w.raw(",\"msgType\":")
            w.int(row.int64Value(3))
            w.raw(",\"content\":")
            row.withBytes(4) { w.string(utf8: $0) }
            w.raw(",\"sendTime\":")
            w.int(row.int64Value(5))
            w.byte(UInt8(ascii: "}"))
        }
        return .ok(.bytes(answer))
    }

    // MARK: markRead and unread

    func markRead(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        let seq = try c.params.requiredInt64("seq", in: 0...Int64.max)
        guard let conversation = try MessagesFeature.readableConversation(c, destId: destId, destType: destType) else {
            return .outcome(-1, "no such conversation")
        }
        // Never backwards, never past the last message.
        let conversationId = SQLParameter(conversation.id)
        try c.db.query("""
            INSERT INTO conversation_reads (user_id, conversation_id, read_seq)
            SELECT \(c.userId), \(conversationId), LEAST(\(seq), last_seq) FROM conversations WHERE id = \(conversationId)
            ON CONFLICT (user_id, conversation_id)
            DO UPDATE SET read_seq = GREATEST(conversation_reads.read_seq, EXCLUDED.read_seq)
            """)
        return .ok()
    }

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

    /// `ready.unread`: per conversation with anything unread from others, the count and last seq.
    ///
    /// The user row finds the conversations whose last message is past the read position, from
    /// the small conversation tables (six numbers each: conversation, destination, destination
    /// type, last seq, read position, visible-from time). Their messages are counted only where
    /// `unreadCounts` does not know the count already: from the read position for a conversation
    /// it has not seen at this read position, from the last counted seq for one that moved on, not
    /// at all for one that did not. A statement over the 16 message partitions costs a fixed
    /// 40-50 µs in PostgreSQL even when it has nothing to count (locking and opening every
    /// partition and index), so it runs only when something is left to count.
    public func readyPart(_ c: RequestContext) -> AccountsFeature.ReadyPart {
        AccountsFeature.ReadyPart(userColumns: [MessagesFeature.unreadCandidatesColumn]) { input in
            let flat: [Int64] = try input.user.decode("unread_candidates")
            let userId = input.userId
            let candidates = stride(from: 0, to: flat.count - 5, by: 6).map { Array(flat[$0..<($0 + 6)]) }
            guard !candidates.isEmpty else { return AccountsFeature.ReadyPlan { _, _ in } }
            let asked = candidates.map {
                UnreadCounts.Known(conversationId: $0[0], readSeq: $0[4], visibleFrom: $0[5], lastSeq: $0[3], count: 0)
            }
            let (facts, toCount) = UnreadCounts.plan(asked, known: self.unreadCounts.lookup(userId: userId))
            var statements: [SQL] = []
            if !toCount.isEmpty {
                statements.append(MessagesFeature.unreadCount(
                    conversations: toCount.map { asked[$0.index].conversationId }, afterSeq: toCount.map(\.after),
                    upToSeq: toCount.map { asked[$0.index].lastSeq }, visibleFrom: toCount.map { asked[$0.index].visibleFrom },
                    reader: userId))
            }
            return AccountsFeature.ReadyPlan(statements: statements) { results, data in
                var counts = facts
                if let result = results.first {
                    guard result.rowCount == toCount.count else { throw HTTPError.internalError }
                    let unread = try result.column("unread", as: Int64.self)
                    for (row, pending) in toCount.enumerated() {
                        counts[pending.index].count += try result[row][unread]
                    }
                    self.unreadCounts.remember(counts, userId: userId)
                }
                var unread: [JSON] = []
                for (candidate, fact) in zip(candidates, counts) where fact.count > 0 {
                    unread.append(.object([("destId", .int(candidate[1])), ("destType", .int(candidate[2])),
                                           ("count", .int(fact.count)), ("lastSeq", .int(fact.lastSeq))]))
                }
                if let index = data.firstIndex(where: { $0.0 == "unread" }) { data[index].1 = .array(unread) }
            }
        }
    }

    // MARK: sync

    struct SyncPage {
        var events: [JSON]
        var next: Int64
        var reset: Bool
    }

    /// Events after `since`, oldest first, at most one page.
    /// The page after `since`; `run` sends the statements in one round trip (on a resumed
    /// long-poll, with the session's re-check riding along).
    static func fetch(_ run: ([SQL]) throws -> [PGResult], userId: Int64,
                      since: Int64) throws -> SyncPage {
        let user = SQLParameter(userId)
        let results = try run([
            """
            SELECT e.cursor, e.type, e.payload::text, e.silent, \(unsafeRaw: messageColumns)
            FROM user_events e
            LEFT JOIN messages m ON m.conversation_id = e.conversation_id AND m.seq = e.seq
            LEFT JOIN conversations c ON c.id = e.conversation_id
            WHERE e.user_id = \(user) AND e.cursor > \(since) ORDER BY e.cursor LIMIT \(syncPage)
            """,
            """
            SELECT COALESCE((SELECT last_cursor FROM user_event_cursors WHERE user_id = \(user)), 0) AS latest,
                   COALESCE((SELECT min(cursor) FROM user_events WHERE user_id = \(user)), 0) AS oldest
            """,
        ])
        let latest: Int64 = try results[1][0].decode("latest")
        let oldest: Int64 = try results[1][0].decode("oldest")
        var events: [JSON] = []
        var next = since
        for row in results[0].rows {
            let cursor = row.int64Value(0)
            let type = row.text(1)
            var fields: [(String, JSON)] = [("cursor", .int(cursor)), ("type", .string(type))]
            if type == "message" {
                fields.append(("silent", .bool(row.boolValue(3))))
                fields.append(("message", row.isNull(4) ? .null : messageJSON(row, offset: 4)))
            } else {
                fields.append(("data", .raw(row.text(2))))
            }
            events.append(.object(fields))
            next = cursor
        }
        // A cursor from the future (e.g. a restored database), or one older than what is kept:
        // the client must reload its state with `ready` and continue from `next`.
        let reset = since > latest || (oldest > 0 && since < oldest - 1)
        if reset && events.isEmpty { next = latest }
        return SyncPage(events: events, next: reset && events.isEmpty ? latest : next, reset: reset)
    }

    static func syncResponse(_ page: SyncPage) -> Response {
        .ok(["events": .array(page.events), "next": .int(page.next), "reset": .bool(page.reset)])
    }

    func sync(_ c: RequestContext) throws -> Response {
        let since = try c.params.int64("since", in: 0...Int64.max) ?? 0
        let timeout = try c.params.int("timeout", in: 0...MessagesFeature.maxSyncTimeout) ?? 0
        let me = c.userId
        // Read the wake generation before looking, so a wake in between is never lost.
        let generation = c.wakes?.generation(for: me) ?? 0
        let page = try MessagesFeature.fetch(c.db.pipeline, userId: me, since: since)
        if !page.events.isEmpty || page.reset || timeout == 0 || c.wakes == nil {
            return MessagesFeature.syncResponse(page)
        }
        return MessagesFeature.waitForNews(userId: me, since: since, timeout: timeout, seen: generation, wakes: c.wakes)
    }

    /// A deferred sync: on a wake with nothing new for this cursor (e.g. a late notification of
    /// something already answered), it waits on until its deadline instead of answering empty.
    static func waitForNews(userId: Int64, since: Int64, timeout: Int, seen: UInt64, wakes: WakeGenerations?) -> Response {
        .deferred(key: userId, timeoutSeconds: timeout, seenGeneration: seen) { c, final in
            let generation = wakes?.generation(for: userId) ?? 0
            // The session is checked again in the same round trip: one that ended while the
            // request waited gets 401, not the news.
            let page = try MessagesFeature.fetch(c.pipeline, userId: userId, since: since)
            if final || !page.events.isEmpty || page.reset {
                return MessagesFeature.syncResponse(page)
            }
            return waitForNews(userId: userId, since: since, timeout: timeout, seen: generation, wakes: wakes)
        }
    }
}
