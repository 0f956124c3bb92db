import Foundation
import ChatCache

/// Which conversation (and visible-from time) a session's last history request resolved to, per
/// worker process: a hint that lets the next request for the same conversation read its page in
/// the same round trip as the access check. A hint never decides anything: the check runs every
/// time and the page is used only when the check returns exactly the hinted conversation (ids of
/// conversations never change; a member who left and came back has a new visible-from time).
///
/// Keys hold the SHA-256 of the session token (as the sessions table does), never the token.
final class HistoryHints: @unchecked Sendable {
    struct Key: Hashable {
        var principal: [UInt8]
        var userId: Int64
        var destId: Int64
        var destType: Int
    }

    /// Hints at version 0: a hint decides nothing, so it needs no version; the budget bounds them.
    private let hints: CacheMap<Key, MessagesFeature.Conversation>

    init(budgets: CacheBudgets) {
        // The key's hash bytes and fields, the conversation, and the map's own entry.
        hints = CacheMap(MessagesFeature.historyHintsKind, budgets: budgets) { _ in 160 }
    }

    func hint(for key: Key) -> MessagesFeature.Conversation? { hints.value(for: key, version: 0) }

    func remember(_ conversation: MessagesFeature.Conversation, for key: Key) {
        hints.store(conversation, for: key, version: 0)
    }

    func forget(_ key: Key) { hints.remove(key) }
}
