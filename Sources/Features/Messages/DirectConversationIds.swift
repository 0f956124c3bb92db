import Foundation
import ChatCache

/// The ids of the direct conversations one worker process has seen, by pair, so that a direct
/// message from the workers' copies needs no lookup. Conversation ids come from an identity column
/// and are never reused, so a remembered id is never another pair's; at worst its row is gone
/// (deleted with one of the users, or by hand), and then `MessagesFeature.store` finds no row and
/// the caller forgets the id and looks the pair up again.
final class DirectConversationIds: @unchecked Sendable {
    struct Pair: Hashable {
        var low: Int64
        var high: Int64

        init(_ a: Int64, _ b: Int64) { (low, high) = a < b ? (a, b) : (b, a) }
    }

    /// Ids at version 0 (they never change); the budget bounds them.
    private let ids: CacheMap<Pair, Int64>

    init(budgets: CacheBudgets) {
        // Two ids of the pair, the conversation id, and the map's own entry.
        ids = CacheMap(MessagesFeature.directConversationsKind, budgets: budgets) { _ in 96 }
    }

    func id(_ a: Int64, _ b: Int64) -> Int64? { ids.value(for: Pair(a, b), version: 0) }

    func remember(_ id: Int64, _ a: Int64, _ b: Int64) {
        ids.store(id, for: Pair(a, b), version: 0)
    }

    func forget(_ a: Int64, _ b: Int64) { ids.remove(Pair(a, b)) }
}
