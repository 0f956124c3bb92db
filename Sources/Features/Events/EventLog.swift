import ChatConfig
import ChatHTTP
import ChatPostgres

/// The per-user event stream: what another user's action changed for you (a request arrived,
/// was accepted, you joined or left a group, a group was renamed, …). Features append events in
/// the same transaction as the change they describe; delivery (/chat/sync) reads them by cursor.
public enum EventLog {
    /// The NOTIFY channel telling every worker which users have new events (comma-separated ids).
    public static let channel = "chat_events"

    /// Events are kept 30 days. What goes is always a prefix of a user's stream, and never their
    /// newest event: a client whose cursor falls before what is kept gets `reset` from sync (it
    /// reloads with `ready`) instead of silently missing events.
    public static let cleanupJobs: [PeriodicJobs.Job] = [
        .init(name: "user_events.trim", sql: """
            DELETE FROM user_events e
            USING (SELECT user_id, max(cursor) AS upto FROM user_events
                   WHERE created_at < now() - interval '30 days' GROUP BY user_id) old,
                  user_event_cursors c
            WHERE e.user_id = old.user_id AND c.user_id = old.user_id
              AND e.cursor <= old.upto AND e.cursor < c.last_cursor
            """),
    ]

    /// Events collected in one transaction, written together just before it commits.
    final class Batch {
        var users: [Int64] = []
        var types: [String] = []
        var payloads: [String] = []
    }

    /// Records one event for each user, written when the transaction commits (at once outside one).
    ///
    /// All of a transaction's events are written by one statement at its very end, which takes
    /// the users' cursor locks in ascending user order and as the last locks of the transaction:
    /// two transactions can therefore never wait for each other's cursor rows in a cycle.
    public static func append(_ db: PGConnection, to userIds: [Int64], type: String, payload: JSON) throws {
        let users = Array(Set(userIds))
        guard !users.isEmpty else { return }
        let batch: Batch
        if let existing = db.transactionState["events"] as? Batch {
            batch = existing
        } else {
            batch = Batch()
            db.setTransactionState("events", batch)
            try db.onCommit { try flush(db, batch) }
        }
        let text = payload.text
        for user in users {
            batch.users.append(user)
            batch.types.append(type)
            batch.payloads.append(text)
        }
    }

    static func flush(_ db: PGConnection, _ batch: Batch) throws {
        guard !batch.users.isEmpty else { return }
        try db.query("""
            WITH ev AS (
                SELECT * FROM unnest(\(PGArray(batch.users))::bigint[], \(PGTextArray(batch.types))::text[], \(PGTextArray(batch.payloads))::text[]) WITH ORDINALITY AS e(user_id, type, payload, n)
            ), counts AS (
                SELECT user_id, count(*) AS k FROM ev GROUP BY user_id
            ), bumped AS (
                INSERT INTO user_event_cursors AS c (user_id, last_cursor)
                SELECT user_id, k FROM counts ORDER BY user_id
                ON CONFLICT (user_id) DO UPDATE SET last_cursor = c.last_cursor + EXCLUDED.last_cursor
                RETURNING user_id, last_cursor
            ), numbered AS (
                SELECT ev.user_id, ev.type, ev.payload,
                       b.last_cursor - count(*) OVER (PARTITION BY ev.user_id)
                           + row_number() OVER (PARTITION BY ev.user_id ORDER BY ev.n) AS cursor
                FROM ev JOIN bumped b ON b.user_id = ev.user_id
            )
            INSERT INTO user_events (user_id, cursor, type, payload)
            SELECT user_id, cursor, type, payload::jsonb FROM numbered
            """)
        notifyAfterCommit(db, batch.users)
        batch.users.removeAll()
    }

    /// Sends the notifications of this process (set by the worker at start); without one (commands,
    /// tests) each commit sends its own.
    nonisolated(unsafe) public static var notifier: BackgroundWrites<Int64>?

    /// Tells every worker (on every host) which users have news, once the transaction committed.
    ///
    /// Not inside the transaction: PostgreSQL serialises all commits that carry a NOTIFY, disk
    /// flush included, which would cap how many messages per second the whole cluster can store.
    /// In a worker the users go to `notifier`, which sends them a moment later together with
    /// those of other commits. If the process dies between the commit and the notification, the
    /// users' parked long-polls see the news at their time-out instead (nothing is lost).
    package static func notifyAfterCommit(_ db: PGConnection, _ users: [Int64]) {
        guard !users.isEmpty else { return }
        if let notifier {
            db.afterCommit { notifier.post(users) }
            return
        }
        let payload = Array(Set(users)).sorted().map(String.init).joined(separator: ",")
        db.afterCommit {
            do {
                try db.query("SELECT pg_notify(\(channel), \(payload))")
            } catch {
                Log.warn("events.notify_failed", ["error": String(describing: error)])
            }
        }
    }
}
