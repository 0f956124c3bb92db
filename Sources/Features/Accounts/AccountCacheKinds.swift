import ChatCache

/// What the accounts feature keeps in memory (shares: `CacheRegistry`; docs/caching.md).
extension AccountCaches {
    /// Sessions by the first 8 bytes of the token's hash, checked against change counters `s`.
    package static let sessionsKind = CacheKind("sessions", pool: .copies)
    /// Profiles rendered twice (mobile in full and masked) by user, checked against counters `p`.
    package static let profilesKind = CacheKind("profiles", pool: .copies)
}
