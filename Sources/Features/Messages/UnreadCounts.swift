import ChatCache

/// Unread counts `ready` has already counted, per user, in one worker process.
///
/// A count is a fact about data that never changes: the messages of one conversation with a seq
/// in (from, to], not sent by the reader, sent at or after the reader's visible-from time. A
/// message is never edited or deleted, a seq is taken once and in order, and a conversation id is
/// never reused, so a stored count is never wrong later; it only stops being the one asked for.
/// When the reader's read position and visible-from time are still the same, a conversation that
/// moved on from `lastSeq` to a higher seq needs only its new messages counted, and one that did
/// not move needs nothing counted at all.
struct UnreadCounts {
    /// What was counted for one conversation: `count` messages from others in (readSeq, lastSeq].
    struct Known {
        var conversationId: Int64
        var readSeq: Int64
        var visibleFrom: Int64
        var lastSeq: Int64
        var count: Int64
    }

    /// Per user, the conversations that had something past the read position at the last count.
    /// No version: every entry stays true (see above), so the cache is an LRU map under version 0.
    private let known: VersionedCache<[Known]>

    init(budgets: CacheBudgets) {
        known = VersionedCache(MessagesFeature.unreadCountsKind, budgets: budgets) { $0.count * MemoryLayout<Known>.stride + 64 }
    }

    /// For one `ready`: per candidate (a conversation past the reader's read position, as
    /// `Known` with `count` 0 and `lastSeq` its current last seq), the count known so far and,
    /// for those with something left to count, the seq to count from (up to the candidate's
    /// `lastSeq`). Once those counts are added, `facts` is what to `remember`.
    static func plan(_ candidates: [Known], known: [Int64: Known]) -> (facts: [Known], toCount: [(index: Int, after: Int64)]) {
        var facts: [Known] = []
        var toCount: [(index: Int, after: Int64)] = []
        for (index, candidate) in candidates.enumerated() {
            var fact = candidate
            fact.count = 0
            var after = candidate.readSeq
            if let old = known[candidate.conversationId], old.readSeq == candidate.readSeq,
               old.visibleFrom == candidate.visibleFrom, old.lastSeq <= candidate.lastSeq {
                fact.count = old.count
                after = old.lastSeq
            }
            if after < candidate.lastSeq { toCount.append((index, after)) }
            facts.append(fact)
        }
        return (facts, toCount)
    }

    func lookup(userId: Int64) -> [Int64: Known] {
        guard let list = known.value(for: userId, version: 0) else { return [:] }
        return Dictionary(list.map { ($0.conversationId, $0) }, uniquingKeysWith: { _, last in last })
    }

    func remember(_ list: [Known], userId: Int64) {
        known.store(list, for: userId, version: 0)
    }
}
