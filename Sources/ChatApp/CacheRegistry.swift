import ChatConfig
import ChatCache
import Accounts
import Social
import Groups
import Messages

/// Every kind of data a worker process keeps in memory, and its share of the memory the
/// configuration gives the caches: the one place where that memory is split. Each kind's key,
/// version, keepers and tests are in docs/caching.md; `CacheRegistryTests` checks that every cache
/// the application makes is listed here and that the shares bound the memory.
public enum CacheRegistry {
    public static let shares: [CacheBudgets.Share] = [
        // list_cache_mib: rendered lists and what derives from them, checked against versions in
        // PostgreSQL (bumped by the triggers of sql/0004, 0005 and 0007 in the changing transaction).
        .init(GroupsFeature.memberListsKind, sixtyFourths: 25),
        .init(GroupsFeature.memberHeadUrlsKind, sixtyFourths: 2),
        .init(SocialFeature.friendListsKind, sixtyFourths: 14),
        .init(SocialFeature.requestListsKind, sixtyFourths: 6),
        .init(SocialFeature.groupListsKind, sixtyFourths: 6),
        .init(SocialFeature.settingListsKind, sixtyFourths: 2),
        .init(MessagesFeature.unreadCountsKind, sixtyFourths: 4),
        .init(MessagesFeature.historyHintsKind, sixtyFourths: 3),
        .init(MessagesFeature.directConversationsKind, sixtyFourths: 2),
        // profile_cache_mib: copies checked against the host's change counters (bumped after the
        // commit, and by the NOTIFYs of sql/0006 and 0007), answered without a round trip.
        .init(AccountCaches.sessionsKind, sixtyFourths: 8),
        .init(AccountCaches.profilesKind, sixtyFourths: 16),
        .init(RelationCache.cacheKind, sixtyFourths: 24),
        .init(GroupsFeature.groupCopiesKind, sixtyFourths: 16),
    ]

    /// The budgets of every kind under `config`'s `list_cache_mib` and `profile_cache_mib`.
    public static func budgets(_ config: Config) -> CacheBudgets {
        CacheBudgets(pools: [.lists: config.listCacheMiB << 20, .copies: config.profileCacheMiB << 20], shares: shares)
    }
}
