import Foundation
import ChatConfig
import ChatHTTP
import ChatPostgres
import ChatCache

/// The sessions and profiles a worker keeps for `getUserById` (`CheckedCache`s of kinds `s` and
/// `p`; see docs/caching.md).
public final class AccountCaches: @unchecked Sendable {
    /// A session's use is recorded when the last one this worker knows of is older than this
    /// (as `Sessions.live`'s `who_stale`).
    static let touchAfterNanos: UInt64 = 60 * 1_000_000_000

    struct Session {
        var tokenHash: [UInt8]
        var userId: Int64
        /// When this worker last knew the session to be used within the minute (monotonic).
        var touchedAt: UInt64
    }

    /// A profile written out as Profile.writeFields does: with the full mobile and with the masked one.
    struct RenderedProfile {
        var revealed: [UInt8]
        var masked: [UInt8]
    }

    /// By `Sessions.changeId(tokenHash:)`.
    let sessions: CheckedCache<Session>
    let profiles: CheckedCache<RenderedProfile>

    /// - Parameter budgets: the shares of `sessionsKind` and `profilesKind` (0: no caching).
    init(budgets: CacheBudgets, stripes: @escaping () -> ChangeStripes = { ChangeStripes.shared }) {
        sessions = CheckedCache(AccountCaches.sessionsKind, counterKind: Sessions.changeKind, budgets: budgets, stripes: stripes) { _ in 144 }
        profiles = CheckedCache(AccountCaches.profilesKind, counterKind: AccountCaches.profileKind, budgets: budgets, stripes: stripes) {
            $0.revealed.count + $0.masked.count + 80
        }
    }

    var isEnabled: Bool { sessions.isEnabled }

    static let profileKind: Character = "p"

    // MARK: sessions

    /// A session this worker holds, current and younger than its age limit: its user, and whether
    /// its use should be recorded now (when it should, the copy is marked as used now).
    func session(tokenHash: [UInt8]) -> (userId: Int64, touchNeeded: Bool)? {
        let id = Sessions.changeId(tokenHash: tokenHash)
        guard let found = sessions.entry(id), found.entry.value.tokenHash == tokenHash else { return nil }
        var session = found.entry.value
        let now = monotonicNanos()
        guard now &- session.touchedAt >= AccountCaches.touchAfterNanos else { return (session.userId, false) }
        session.touchedAt = now
        sessions.store(session, for: id, version: found.version, storedAt: found.entry.storedAt)
        return (session.userId, true)
    }

    /// The version to store a session read from PostgreSQL at, read before that read (nil: none).
    func sessionVersion(tokenHash: [UInt8]) -> Int64? {
        sessions.version(of: Sessions.changeId(tokenHash: tokenHash))
    }

    /// Keeps a live session read at `version`. `touched`: its use was recorded by this request
    /// (else it was used within the last minute, so it is taken as used a minute ago).
    func storeSession(tokenHash: [UInt8], userId: Int64, touched: Bool, version: Int64) {
        let now = monotonicNanos()
        let touchedAt = touched ? now : now &- AccountCaches.touchAfterNanos
        sessions.store(Session(tokenHash: tokenHash, userId: userId, touchedAt: touchedAt),
                       for: Sessions.changeId(tokenHash: tokenHash), version: version)
    }

    // MARK: profiles

    /// Keeps the profile in `row` read at `version`, written by `Profile`'s one writer.
    func storeProfile(_ row: PGRow, _ columns: Profile.Columns, version: Int64) throws {
        var revealed = JSONWriter(capacity: 256), masked = JSONWriter(capacity: 256)
        try Profile.writeFields(row, columns, revealMobile: true, into: &revealed)
        try Profile.writeFields(row, columns, revealMobile: false, into: &masked)
        profiles.store(RenderedProfile(revealed: revealed.bytes, masked: masked.bytes),
                       for: try row[columns.userId], version: version)
    }

    /// Ends every worker's copies of `userId`'s profile once the current change commits.
    static func forgetProfile(_ userId: Int64, db: PGConnection) {
        ChangeStripes.bumpAfterCommit([ChangeStripes.Key(profileKind, userId)], db: db)
    }
}
