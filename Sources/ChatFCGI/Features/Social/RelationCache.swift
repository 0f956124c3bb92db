import Foundation

/// Each user's relations to others (friends with their remarks, and whom they block), kept by a
/// worker for `getUserById` and checked against the host's change counters (`ChangeStripes`,
/// kind `r`: the triggers of sql/0006_cache_invalidation.sql, and `forget(_:db:)` after the
/// social writes). A user's set is read whole, once, so that asking about any other user is
/// answered from it.
public final class RelationCache: @unchecked Sendable {
    struct Relations {
        /// Friend id → remark (UTF-8).
        var remarks: [Int64: [UInt8]]
        var blocked: Set<Int64>
        var storedAt: UInt64
    }

    /// One user's relation to another, as getUserById shows it.
    public struct Relation {
        public var isFriend: Bool
        public var remark: [UInt8]
        public var blocked: Bool
    }

    let sets: VersionedCache<Relations>
    let stripes: () -> ChangeStripes

    init(budgetBytes: Int, stripes: @escaping () -> ChangeStripes = { ChangeStripes.shared }) {
        sets = VersionedCache(budget: budgetBytes) { relations in
            relations.remarks.reduce(96) { $0 + $1.value.count + 48 } + relations.blocked.count * 24
        }
        self.stripes = stripes
    }

    static func key(_ userId: Int64) -> ChangeStripes.Key { ChangeStripes.Key("r", userId) }

    /// `me`'s relation to `other` from a current copy, or nil.
    public func relation(of me: Int64, to other: Int64) -> Relation? {
        guard sets.budget > 0, let version = stripes().version(of: RelationCache.key(me)),
              let relations = sets.value(for: me, version: version),
              monotonicNanos() &- relations.storedAt < AccountCaches.maxAgeNanos else { return nil }
        let remark = relations.remarks[other]
        return Relation(isFriend: remark != nil, remark: remark ?? [], blocked: relations.blocked.contains(other))
    }

    /// The statement that reads `me`'s whole set, and how to keep its result: nil when nothing
    /// can be kept. The version is read here, before the statement runs.
    public func fill(for me: Int64) -> (statement: (sql: String, params: [PGBindable?]), keep: (PGResult) -> Void)? {
        guard sets.budget > 0, let version = stripes().version(of: RelationCache.key(me)) else { return nil }
        let sql = """
            SELECT f.friend_id, f.remark, false FROM friendships f WHERE f.user_id = $1
            UNION ALL SELECT b.blocked_id, '', true FROM blocks b WHERE b.user_id = $1
            """
        return ((sql, [me]), { [sets] result in
            var relations = Relations(remarks: [:], blocked: [], storedAt: monotonicNanos())
            for row in result.rows {
                let other = row.int64Value(0)
                if row.boolValue(2) {
                    relations.blocked.insert(other)
                } else {
                    relations.remarks[other] = row.withBytes(1) { Array($0) }
                }
            }
            sets.store(relations, for: me, version: version)
        })
    }

    /// Ends every worker's copies of these users' relations once the current change commits.
    public static func forget(_ users: [Int64], db: PGConnection) {
        db.afterCommit {
            for user in users { ChangeStripes.shared.bump(key(user)) }
        }
    }
}
