import ChatCache

/// What the social feature keeps in memory (shares: `CacheRegistry`; docs/caching.md).
extension SocialFeature {
    /// `ready.friends` rendered, by user, at the version in friend_list_versions.
    package static let friendListsKind = CacheKind("friend_lists", pool: .lists)
    /// `ready.requests` rendered, by user, at the version of user_list_versions list 1.
    package static let requestListsKind = CacheKind("request_lists", pool: .lists)
    /// `ready.groups` rendered, by user, at the version of user_list_versions list 2.
    package static let groupListsKind = CacheKind("group_lists", pool: .lists)
    /// `ready.blocks`, `tops` and `ignores` rendered, by user, at the version of list 3.
    package static let settingListsKind = CacheKind("setting_lists", pool: .lists)
}

extension RelationCache {
    /// A user's friends (with remarks) and blocks, by user, checked against counters `r`.
    package static let cacheKind = CacheKind("relations", pool: .copies)
}
