import Foundation

/// The sessions and profiles a worker keeps for `getUserById`, checked against the host's change
/// counters (`ChangeStripes`, kinds `s` and `p`; see docs/caching.md).
///
/// Every copy is also dropped after `maxAgeNanos` whatever the counters say, so that a notification
/// lost in some way nobody foresaw costs minutes at most, not the life of the worker.
public final class AccountCaches: @unchecked Sendable {
    public static let maxAgeNanos: UInt64 = 300 * 1_000_000_000
    /// A session's use is recorded when the last one this worker knows of is older than this
    /// (as `Sessions.liveSessionSQL`'s `stale`).
    static let touchAfterNanos: UInt64 = 60 * 1_000_000_000

    struct Session {
        var tokenHash: [UInt8]
        var userId: Int64
        /// When this worker last knew the session to be used within the minute (monotonic).
        var touchedAt: UInt64
        var storedAt: UInt64
    }

    /// A profile written out as Profile.writeFields does: with the full mobile and with the masked one.
    struct RenderedProfile {
        var revealed: [UInt8]
        var masked: [UInt8]
        var storedAt: UInt64
    }

    let sessions: VersionedCache<Session>
    let profiles: VersionedCache<RenderedProfile>
    let stripes: () -> ChangeStripes

    /// - Parameter budgetBytes: a quarter for sessions, the rest for profiles (0: no caching).
    init(budgetBytes: Int, stripes: @escaping () -> ChangeStripes = { ChangeStripes.shared }) {
        sessions = VersionedCache(budget: budgetBytes / 4) { _ in 160 }
        profiles = VersionedCache(budget: budgetBytes - budgetBytes / 4) { $0.revealed.count + $0.masked.count + 96 }
        self.stripes = stripes
    }

    var isEnabled: Bool { sessions.budget > 0 }

    static func profileKey(_ userId: Int64) -> ChangeStripes.Key { ChangeStripes.Key("p", userId) }

    // MARK: sessions

    /// A session this worker holds, current and younger than its age limit: its user, and whether
    /// its use should be recorded now (when it should, the copy is marked as used now).
    func session(tokenHash: [UInt8]) -> (userId: Int64, touchNeeded: Bool)? {
        let key = Sessions.changeKey(tokenHash: tokenHash)
        guard let version = stripes().version(of: key),
              var entry = sessions.value(for: key.id, version: version), entry.tokenHash == tokenHash else { return nil }
        let now = monotonicNanos()
        guard now &- entry.storedAt < AccountCaches.maxAgeNanos else { return nil }
        guard now &- entry.touchedAt >= AccountCaches.touchAfterNanos else { return (entry.userId, false) }
        entry.touchedAt = now
        sessions.store(entry, for: key.id, version: version)
        return (entry.userId, true)
    }

    /// The version to store a session read from PostgreSQL at, read before that read (nil: none).
    func sessionVersion(tokenHash: [UInt8]) -> Int64? {
        isEnabled ? stripes().version(of: Sessions.changeKey(tokenHash: tokenHash)) : nil
    }

    /// Keeps a live session read at `version`. `touched`: its use was recorded by this request
    /// (else it was used within the last minute, so it is taken as used a minute ago).
    func storeSession(tokenHash: [UInt8], userId: Int64, touched: Bool, version: Int64) {
        let now = monotonicNanos()
        let touchedAt = touched ? now : now &- AccountCaches.touchAfterNanos
        sessions.store(Session(tokenHash: tokenHash, userId: userId, touchedAt: touchedAt, storedAt: now),
                       for: Sessions.changeKey(tokenHash: tokenHash).id, version: version)
    }

    // MARK: profiles

    func profile(_ userId: Int64) -> RenderedProfile? {
        guard isEnabled, let version = stripes().version(of: AccountCaches.profileKey(userId)),
              let entry = profiles.value(for: userId, version: version),
              monotonicNanos() &- entry.storedAt < AccountCaches.maxAgeNanos else { return nil }
        return entry
    }

    func profileVersion(_ userId: Int64) -> Int64? {
        isEnabled ? stripes().version(of: AccountCaches.profileKey(userId)) : nil
    }

    /// Keeps the profile in `row` (Profile.columns from `offset`) read at `version`.
    func storeProfile(_ row: PGRow, offset: Int, version: Int64) {
        var revealed = JSONWriter(capacity: 256), masked = JSONWriter(capacity: 256)
        Profile.writeFields(row, offset: offset, revealMobile: true, into: &revealed)
        Profile.writeFields(row, offset: offset, revealMobile: false, into: &masked)
        profiles.store(RenderedProfile(revealed: revealed.bytes, masked: masked.bytes, storedAt: monotonicNanos()),
                       for: row.int64Value(offset), version: version)
    }

    /// Ends every worker's copies of `userId`'s profile once the current change commits.
    static func forgetProfile(_ userId: Int64, db: PGConnection) {
        db.afterCommit { ChangeStripes.shared.bump(profileKey(userId)) }
    }
}
