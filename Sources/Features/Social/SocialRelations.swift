import ChatPostgres

/// The social graph as other features ask about it inside their own statements: conditions on
/// two users' ids, so that a feature that shows things to friends (moments, places) checks
/// friendships and blocks the one way the social feature defines, in the same round trip.
public enum SocialRelations {
    /// True when `a` counts `b` as a friend (friendship is mutual: both rows exist together).
    public static func areFriends(_ a: SQL, _ b: SQL) -> SQL {
        "EXISTS (SELECT 1 FROM friendships fr WHERE fr.user_id = \(a) AND fr.friend_id = \(b))"
    }

    /// True when either of the two blocks the other.
    public static func blockedEitherWay(_ a: SQL, _ b: SQL) -> SQL {
        """
        EXISTS (SELECT 1 FROM blocks bl WHERE (bl.user_id = \(a) AND bl.blocked_id = \(b)) \
        OR (bl.user_id = \(b) AND bl.blocked_id = \(a)))
        """
    }

    /// The friends of `userId`, as a subquery of one `friend_id` column.
    public static func friendIds(of userId: SQL) -> SQL {
        "SELECT fr.friend_id FROM friendships fr WHERE fr.user_id = \(userId)"
    }
}
