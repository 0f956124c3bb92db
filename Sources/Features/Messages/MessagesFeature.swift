import ChatHTTP
import ChatPostgres
import ChatRouting
import ChatCache
import Accounts
import Groups

/// Messaging (API.md §5): send, history, read positions, unread counts, and long-poll delivery.
///
/// Every conversation (a pair of users, or a group) has a gapless sequence: a message takes
/// `last_seq + 1` under the conversation row's lock in the statement that stores it, so two
/// senders can never get the same number, and a failed statement gives its number back.
/// Delivery reads the per-user event stream (`user_events`), where each message is referenced
/// once per recipient; `/chat/sync` parks when there is nothing new and is woken through
/// PostgreSQL NOTIFY by whichever worker stored the message.
public final class MessagesFeature: ReadyContributor {
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

    /// sendMsg's checks from this worker's copies (docs/caching.md): one user's relation to
    /// another from the social feature's copies, and the statement that fills a user's copy.
    let relations: RelationLookup?

    /// The per-user message rate (`rate_limit.send_msg.per_user`), counted in this worker.
    let sendLimiter: LocalRateLimiter?

    /// - Parameter budgets: memory for what this feature keeps (`CacheRegistry`; none: nothing is
    ///   kept, every count and lookup goes to PostgreSQL).
    public init(budgets: CacheBudgets = .none, relations: RelationLookup? = nil, sendLimiter: LocalRateLimiter? = nil) {
        self.relations = relations
        self.sendLimiter = sendLimiter
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
        let store = MessagesStore(db: try c.db)
        // A direct message from this worker's copies: the session, both users' relations and the
        // conversation's id all held and current, so the message's statement is the only round trip.
        var relationsToFill: [PGConnection.Rider] = []
        if destType == 1, !c.isSessionPending {
            let me = c.userId
            guard destId != me else { return .outcome(-1, "you cannot message yourself") }
            let mine = relations?.relation(of: me, to: destId), theirs = relations?.relation(of: destId, to: me)
            if let mine, let theirs, let conversationId = directConversations.id(me, destId) {
                if let refusal = MessagesFeature.directRefusal(isFriend: mine.isFriend, theyBlock: theirs.blocked, iBlock: mine.blocked) {
                    return refusal
                }
                try sendLimiter?.check(me)
                do {
                    return MessagesFeature.sentAnswer(try store.store(conversationId: conversationId, from: me, destId: destId,
                                                                      destType: 1, msgType: msgType, content: content,
                                                                      clientMsgId: clientMsgId))
                } catch MessagesFeature.StoreError.noConversation {
                    // Deleted with one of its users since this worker saw it: look it up again.
                    directConversations.forget(me, destId)
                }
            }
            // What is missing rides along with the statement below, for the next message.
            if mine == nil, let fill = relations?.fill(for: me) { relationsToFill.append(fill) }
            if theirs == nil, let fill = relations?.fill(for: destId) { relationsToFill.append(fill) }
        }
        // The session check (on this route it rides in this statement), the rules and the
        // conversation: one round trip.
        var conversationId: Int64?
        let me: Int64
        if destType == 1 {
            let rules = try store.directRules(c, to: destId, riders: relationsToFill)
            me = c.userId
            guard destId != me else { return .outcome(-1, "you cannot message yourself") }
            if let refusal = MessagesFeature.directRefusal(isFriend: rules.isFriend, theyBlock: rules.theyBlock, iBlock: rules.iBlock) {
                return refusal
            }
            try sendLimiter?.check(me)
            conversationId = rules.conversationId
            if conversationId == nil { conversationId = try store.createDirectConversation(me, destId) }
            if let conversationId { directConversations.remember(conversationId, me, destId) }
        } else {
            let rules = try store.groupRules(c, to: destId)
            me = c.userId
            guard rules.isMember else { return .outcome(-1, "only members can message a group") }
            try sendLimiter?.check(me)
            conversationId = rules.conversationId
            if conversationId == nil { conversationId = try store.createGroupConversation(destId) }
        }
        guard let conversationId else { throw HTTPError.internalError }
        return MessagesFeature.sentAnswer(try store.store(conversationId: conversationId, from: me, destId: destId,
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
    public static func store(_ db: PGConnection, conversationId: Int64, from: Int64, destId: Int64, destType: Int,
                             msgType: Int, content: String, clientMsgId: String) throws -> (msgId: Int64, seq: Int64, sendTime: Int64) {
        try MessagesStore(db: db).store(conversationId: conversationId, from: from, destId: destId, destType: destType,
                                        msgType: msgType, content: content, clientMsgId: clientMsgId)
    }

    // MARK: history

    func getMsgHistory(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        // Default: everything (not "before this host's clock", which may lag the database's).
        let before = try c.params.int64("sendTime", in: 0...Int64.max) ?? Int64.max
        let size = try c.params.int("size", in: 1...100) ?? 20
        let store = MessagesStore(db: try c.db)
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
            let found = try store.readableConversation(c, destId: destId, destType: destType, pageOf: hint, before: before, size: size)
            conversation = found.conversation
            if conversation == hint { page = found.hintedPage }
        } else {
            conversation = try store.readableConversation(c, destId: destId, destType: destType)
        }
        guard let conversation else {
            historyHints.forget(hintKey)
            if try destType == 2 && !GroupsFeature.isMember(store.db, destId, c.userId) {
                throw HTTPError.forbidden("only members can read a group's messages")
            }
            return .ok([])
        }
        historyHints.remember(conversation, for: hintKey)
        let rows = try page ?? store.historyPage(of: conversation, before: before, size: size)
        let columns = try MessageWriter.Columns(rows)
        let me = c.userId
        // The contract wants oldest first: the page is read newest first.
        let answer = try JSONWriter.array(count: rows.rowCount, bytesPerElement: 200) { position, w in
            try MessageWriter.write(rows[rows.rowCount - 1 - position], columns, into: &w) { from in
                // In a direct chat a message goes to whichever of the two did not send it.
                (destType == 2 ? destId : (from == me ? destId : me), Int64(destType))
            }
        }
        return .ok(.bytes(answer))
    }

    // MARK: markRead and unread

    func markRead(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        let seq = try c.params.requiredInt64("seq", in: 0...Int64.max)
        let store = MessagesStore(db: try c.db)
        guard let conversation = try store.readableConversation(c, destId: destId, destType: destType) else {
            return .outcome(-1, "no such conversation")
        }
        try store.markRead(userId: c.userId, conversationId: conversation.id, seq: seq)
        return .ok()
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
        AccountsFeature.ReadyPart(userColumns: [MessagesStore.unreadCandidatesColumn]) { input in
            let flat = try MessagesStore.unreadCandidates(input.user)
            let userId = input.userId
            let candidates = stride(from: 0, to: flat.count - 5, by: 6).map { Array(flat[$0..<($0 + 6)]) }
            guard !candidates.isEmpty else { return AccountsFeature.ReadyPlan { _, _ in } }
            let asked = candidates.map {
                UnreadCounts.Known(conversationId: $0[0], readSeq: $0[4], visibleFrom: $0[5], lastSeq: $0[3], count: 0)
            }
            let (facts, toCount) = UnreadCounts.plan(asked, known: self.unreadCounts.lookup(userId: userId))
            var statements: [SQL] = []
            if !toCount.isEmpty {
                statements.append(MessagesStore.unreadCount(
                    conversations: toCount.map { asked[$0.index].conversationId }, afterSeq: toCount.map(\.after),
                    upToSeq: toCount.map { asked[$0.index].lastSeq }, visibleFrom: toCount.map { asked[$0.index].visibleFrom },
                    reader: userId))
            }
            return AccountsFeature.ReadyPlan(statements: statements) { results, data in
                var counts = facts
                if let result = results.first {
                    let unread = try MessagesStore.unreadCounts(result)
                    guard unread.count == toCount.count else { throw HTTPError.internalError }
                    for (count, pending) in zip(unread, toCount) {
                        counts[pending.index].count += count
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

    /// The page after `since`, oldest first; `run` sends the statements in one round trip (on a
    /// resumed long-poll, with the session's re-check riding along).
    static func fetch(_ run: ([SQL]) throws -> [PGResult], userId: Int64,
                      since: Int64) throws -> SyncPage {
        let results = try run(MessagesStore.syncPage(userId: userId, since: since, limit: syncPage))
        let (latest, oldest) = try MessagesStore.syncBounds(results[1])
        let rows = results[0]
        let columns = try MessagesStore.SyncEventColumns(rows)
        var events: [JSON] = []
        var next = since
        for row in rows.rows {
            let cursor = try row[columns.cursor]
            let type = try row[columns.type]
            var fields: [(String, JSON)] = [("cursor", .int(cursor)), ("type", .string(type))]
            if type == "message" {
                fields.append(("silent", .bool(try row[columns.silent])))
                if row.isNull(columns.message.msgId) {
                    fields.append(("message", .null))
                } else {
                    var w = JSONWriter(capacity: 256)
                    try MessageWriter.write(row, columns.message, into: &w) { from in
                        try columns.conversation.destination(row, fromId: from)
                    }
                    fields.append(("message", .bytes(w.bytes)))
                }
            } else {
                fields.append(("data", .raw(try row[columns.payload])))
            }
            events.append(.object(fields))
            next = cursor
        }
        // A cursor from the future (e.g. a restored database), or one older than what is kept:
        // the client must reload its state with `ready` and continue from `next`.
        let reset = since > latest || (oldest > 0 && since < oldest - 1)
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
