/// The per-user event stream: what another user's action changed for you (a request arrived,
/// was accepted, you joined or left a group, a group was renamed, …). Features append events in
/// the same transaction as the change they describe; delivery (/chat/sync) reads them by cursor.
public enum EventLog {
    /// Appends one event for each user. Cursors are allocated in ascending user order, so two
    /// transactions that touch the same users always take the row locks in the same order and
    /// cannot deadlock on them.
    public static func append(_ db: PGConnection, to userIds: [Int64], type: String, payload: JSON) throws {
        let users = Array(Set(userIds)).sorted()
        guard !users.isEmpty else { return }
        try db.query("""
            WITH bumped AS (
                INSERT INTO user_event_cursors AS c (user_id, last_cursor)
                SELECT u, 1 FROM unnest($1::bigint[]) WITH ORDINALITY AS t(u, n) ORDER BY n
                ON CONFLICT (user_id) DO UPDATE SET last_cursor = c.last_cursor + 1
                RETURNING user_id, last_cursor
            )
            INSERT INTO user_events (user_id, cursor, type, payload)
            SELECT user_id, last_cursor, $2, $3::jsonb FROM bumped
            """, [PGArray(users), type, payload.text])
    }
}

/// A bigint[] parameter in PostgreSQL's array literal form (`{1,2,3}`), still a bound value.
public struct PGArray: PGBindable {
    public var values: [Int64]
    public init(_ values: [Int64]) { self.values = values }
    public var pgText: String { "{" + values.map(String.init).joined(separator: ",") + "}" }
}
