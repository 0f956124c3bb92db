import Foundation
import ChatPostgres
import ChatCache
import Accounts

/// Each user's relations to others (friends with their remarks, and whom they block), kept by a
/// worker for `getUserById` and `getGroupMember` (a `CheckedCache` of kind `r`: the triggers of
/// sql/0006_cache_invalidation.sql, and `forget(_:db:)` after the social writes). A user's set is
/// read whole, once, so that asking about any other user is answered from it.
public final class RelationCache: RelationLookup, @unchecked Sendable {
    struct Relations {
        /// Friend id → remark (UTF-8).
        var remarks: [Int64: [UInt8]]
        var blocked: Set<Int64>
        /// The friends' ids in ascending order: a member list asks about 500 users at once, and a
        /// binary search costs a fraction of hashing each id.
        var friendIds: [Int64]
    }

    static let kind: Character = "r"

    let sets: CheckedCache<Relations>

    package init(budgets: CacheBudgets, stripes: @escaping () -> ChangeStripes = { ChangeStripes.shared }) {
        sets = CheckedCache(RelationCache.cacheKind, counterKind: RelationCache.kind, budgets: budgets, stripes: stripes) { relations in
            relations.remarks.reduce(80) { $0 + $1.value.count + 56 } + relations.blocked.count * 24
        }
    }

    public func relationColumns(me: SQL, other: SQL) -> (columns: SQL, joins: SQL) {
        SocialStore.relationColumns(me: me, other: other)
    }

    /// `me`'s relation to `other` from a current copy, or nil.
    public func relation(of me: Int64, to other: Int64) -> (isFriend: Bool, remark: [UInt8], blocked: Bool)? {
        guard let relations = sets.value(me) else { return nil }
        let remark = relations.remarks[other]
        return (remark != nil, remark ?? [], relations.blocked.contains(other))
    }

    /// `me`'s friends in ascending order, from a current copy of `me`'s set; nil when there is none.
    public func friendIds(of me: Int64) -> [Int64]? {
        sets.value(me)?.friendIds
    }

    /// The statement that reads `me`'s whole set, and how to keep its result: nil when nothing
    /// can be kept. The version is read here, before the statement runs.
    public func fill(for me: Int64) -> PGConnection.Rider? {
        guard let version = sets.version(of: me) else { return nil }
        return PGConnection.Rider(SocialStore.relations(of: me)) { [sets] result in
            var relations = Relations(remarks: [:], blocked: [], friendIds: [])
            // A result that does not read as expected is not kept (the next request reads again).
            guard let otherId = try? result.column("other_id", as: Int64.self),
                  let remark = try? result.column("remark", as: String.self),
                  let blocked = try? result.column("blocked", as: Bool.self) else { return }
            for row in result.rows {
                guard let other = try? row[otherId], let isBlocked = try? row[blocked] else { return }
                if isBlocked {
                    relations.blocked.insert(other)
                } else {
                    guard let text = try? row.withRequiredBytes(remark, { Array($0) }) else { return }
                    relations.remarks[other] = text
                    relations.friendIds.append(other)
                }
            }
            relations.friendIds.sort()
            sets.store(relations, for: me, version: version)
        }
    }

    /// Ends every worker's copies of these users' relations once the current change commits.
    public static func forget(_ users: [Int64], db: PGConnection) {
        ChangeStripes.bumpAfterCommit(users.map { ChangeStripes.Key(kind, $0) }, db: db)
    }
}
