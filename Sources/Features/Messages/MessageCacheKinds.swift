import ChatCache

/// What the messages feature keeps in memory (shares: `CacheRegistry`; docs/caching.md).
extension MessagesFeature {
    /// The unread counts `ready` already counted, by user, at each conversation's read position.
    package static let unreadCountsKind = CacheKind("unread_counts", pool: .lists)
    /// The conversation a session's last history request resolved to: a hint, never a decision.
    package static let historyHintsKind = CacheKind("history_hints", pool: .lists)
    /// The id of the direct conversation of two users (ids never change; a deleted one is relearnt).
    package static let directConversationsKind = CacheKind("direct_conversations", pool: .lists)
}
