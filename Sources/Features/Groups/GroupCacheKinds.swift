import ChatCache

/// What the groups feature keeps in memory (shares: `CacheRegistry`; docs/caching.md).
extension GroupsFeature {
    /// A group's member list rendered for getGroupMember, at the version in member_list_versions.
    package static let memberListsKind = CacheKind("member_lists", pool: .lists)
    /// A group's first nine avatars as `ready.groups[].headUrls` shows them, at the same version.
    package static let memberHeadUrlsKind = CacheKind("member_head_urls", pool: .lists)
    /// A group's owner and rendered list (`GroupCopy`), checked against counters `g`.
    package static let groupCopiesKind = CacheKind("group_copies", pool: .copies)
}
