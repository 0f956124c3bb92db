import ChatPostgres
import ChatRouting

/// What the features above this one lend it, handed to `AccountsFeature`'s initializer (they
/// depend on accounts, so accounts asks them through these, never by name).

/// The callers' relations to other users, kept by the social feature: for getUserById from memory,
/// and for the other features that check friendships and blocks the same way.
public protocol RelationLookup: AnyObject {
    /// `me`'s relation to `other` from a current copy (isFriend, the remark as UTF-8, blocked), or nil.
    func relation(of me: Int64, to other: Int64) -> (isFriend: Bool, remark: [UInt8], blocked: Bool)?
    /// `me`'s friends in ascending order from a current copy, or nil.
    func friendIds(of me: Int64) -> [Int64]?
    /// The statement that fills `me`'s copy, riding with another (nil when nothing may be kept).
    func fill(for me: Int64) -> PGConnection.Rider?
    /// The relation as columns to join into a statement: `relation_remark` (NULL when not friends)
    /// and `relation_blocked`, given the acting user's and the other user's id expressions.
    func relationColumns(me: SQL, other: SQL) -> (columns: SQL, joins: SQL)
}

/// A feature that shows something in `/chat/ready` (friends, groups, unread counts…).
public protocol ReadyContributor: AnyObject {
    func readyPart(_ c: RequestContext) -> AccountsFeature.ReadyPart
}

/// The newest images of a user's posts that the caller may see, for getUserById's `album`
/// (kept by the moments feature).
public protocol AlbumSource: AnyObject {
    func album(_ c: RequestContext, of userId: Int64) throws -> [String]
}
