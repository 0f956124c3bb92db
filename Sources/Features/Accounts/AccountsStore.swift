import ChatHTTP
import ChatPostgres
import ChatSecurity

/// Every statement of the accounts feature: users and profiles, sessions, verification codes,
/// login failures and rate limits. Methods run one statement and return typed values read by
/// column name; the `static` builders return statements that must ride with the session check
/// (`WITH who AS (…)`) in the handler's one round trip.
struct AccountsStore {
    let db: PGConnection

    /// Housekeeping: expired sessions and codes, and rate-limit history older than its window.
    static let cleanupJobs: [PeriodicJobs.Job] = [
        .init(name: "sessions.expire", sql: "DELETE FROM sessions WHERE last_used_at < now() - interval '30 days'"),
        .init(name: "sms_codes.expire", sql: "DELETE FROM sms_codes WHERE expires_at < now()"),
        .init(name: "sms_sends.trim", sql: "DELETE FROM sms_sends WHERE sent_at < now() - interval '1 day'"),
        .init(name: "login_failures.trim",
              sql: "DELETE FROM login_failures WHERE failed_at < now() - interval '15 minutes'"),
        rateLimitHitsCleanup,
    ]

    static let rateLimitHitsCleanup = PeriodicJobs.Job(
        name: "rate_limit_hits.trim", sql: "DELETE FROM rate_limit_hits WHERE window_end < now() - interval '1 minute'")

    // MARK: users

    func isRegistered(mobile: String) throws -> Bool {
        try !db.query("SELECT 1 FROM users WHERE mobile = \(mobile)").isEmpty
    }

    func userId(mobile: String) throws -> Int64? {
        try db.query("SELECT id FROM users WHERE mobile = \(mobile)").first?.decode("id")
    }

    /// The new user's id; nil when the mobile was registered meanwhile. A recommender that does
    /// not exist is recorded as none.
    func createUser(mobile: String, pwdHash: String, name: String, headUrl: String, recommender: Int64?) throws -> Int64? {
        let rows = try db.query("""
            INSERT INTO users (mobile, pwd_hash, name, head_url, recommend_user_id)
            VALUES (\(mobile), \(pwdHash), \(name), \(headUrl), (SELECT id FROM users WHERE id = \(recommender)))
            ON CONFLICT (mobile) DO NOTHING RETURNING id
            """)
        return try rows.first?.decode("id")
    }

    func setPassword(userId: Int64, pwdHash: String) throws {
        try db.query("UPDATE users SET pwd_hash = \(pwdHash), updated_at = now() WHERE id = \(userId)")
    }

    // MARK: login

    /// Serialises the login attempts on one number until the transaction ends.
    func lockLogins(mobile: String) throws {
        try db.query("SELECT pg_advisory_xact_lock(hashtext('login:' || \(mobile)))")
    }

    /// The number's wrong passwords within the window, and the seconds until the oldest of them
    /// leaves it (at least 1).
    func loginFailures(mobile: String, windowMinutes: Int) throws -> (count: Int64, retryAfterSeconds: Int64) {
        let window = SQLParameter(windowMinutes)
        let rows = try db.query("""
            SELECT count(*) AS failures, GREATEST(1, ceil(extract(epoch FROM min(failed_at) + make_interval(mins => \(window)) - now()))) AS retry_after
            FROM login_failures WHERE mobile = \(mobile) AND failed_at > now() - make_interval(mins => \(window))
            """)
        let row = try rows.onlyRow("no login failure count")
        return (try row.decode("failures"), try row.decode("retry_after"))
    }

    func credentials(mobile: String) throws -> (userId: Int64, pwdHash: String)? {
        guard let row = try db.query("SELECT id, pwd_hash FROM users WHERE mobile = \(mobile)").first else { return nil }
        return (try row.decode("id"), try row.decode("pwd_hash"))
    }

    /// Records a wrong password (before it is known to be one); its id takes it back.
    func recordLoginFailure(mobile: String) throws -> Int64 {
        let rows = try db.query("INSERT INTO login_failures (mobile) VALUES (\(mobile)) RETURNING id")
        let row = try rows.onlyRow("no login failure id")
        return try row.decode("id")
    }

    /// The user's password hash, the row held (FOR SHARE) until the transaction ends; nil: no such user.
    func heldPasswordHash(userId: Int64) throws -> String? {
        try db.query("SELECT pwd_hash FROM users WHERE id = \(userId) FOR SHARE").first?.decode("pwd_hash")
    }

    func forgetLoginFailure(id: Int64) throws {
        try db.query("DELETE FROM login_failures WHERE id = \(id)")
    }

    func clearLoginFailures(mobile: String) throws {
        try db.query("DELETE FROM login_failures WHERE mobile = \(mobile)")
    }

    // MARK: profiles

    /// The signed-in user's row for `ready`, with the session check first: the profile, whether a
    /// payment password is set (`has_pay_pwd`) and the ready parts' columns (each with its alias).
    static func readyUser(who: SQL, extraColumns: [SQL]) -> SQL {
        let partColumns = extraColumns.map { column -> SQL in ", \(column)" }
        return """
            WITH who AS (\(who))
            SELECT who.who_id, who.who_stale, \(Profile.columns), u.pay_pwd_hash IS NOT NULL AS has_pay_pwd\
            \(SQL.joined(partColumns, separator: ""))
            FROM who JOIN users u ON u.id = who.who_id
            """
    }

    /// The session check (while pending), the profile of `destId` and the session user's relation
    /// to it (`relation_remark`, `relation_blocked`) in ONE statement. No row: no live session; a
    /// row with a NULL `profile_user_id`: no such user.
    static func userById(who: SQL, destId: Int64, relation: AccountsFeature.RelationColumns?) -> SQL {
        let relation = relation?("who.who_id", "u.id")
        let relationColumns: SQL = relation.map { relation -> SQL in ", \(relation.columns)" } ?? ""
        return """
            WITH who AS (\(who))
            SELECT who.who_id, who.who_stale, \(Profile.columns)\(relationColumns)
            FROM who LEFT JOIN users u ON u.id = \(destId) \(relation?.joins ?? "")
            """
    }

    /// The profile of a user who may be found by `mobile`, and whether they are `me`'s friend
    /// (to show the mobile in full), in one statement.
    func searchableProfile(mobile: String, seenBy me: Int64,
                           relation: AccountsFeature.RelationColumns?) throws -> (profile: ProfileRow, isFriend: Bool)? {
        let relation = relation?("\(me)::bigint", "u.id")
        let rows = try db.query("""
            SELECT \(Profile.columns), \(relation?.columns ?? "NULL AS relation_remark")
            FROM users u \(relation?.joins ?? "") WHERE u.mobile = \(mobile) AND u.search_mobile
            """)
        guard let row = rows.first else { return nil }
        return (ProfileRow(row: row, columns: try Profile.Columns(rows)), try row.decode("relation_remark", as: String?.self) != nil)
    }

    func profile(userId: Int64) throws -> ProfileRow? {
        let result = try db.query("SELECT \(Profile.columns) FROM users u WHERE u.id = \(userId)")
        guard let row = result.first else { return nil }
        return ProfileRow(row: row, columns: try Profile.Columns(result))
    }

    /// Changes the fields that are not nil. COALESCE keeps the columns that were not sent; the
    /// statement text stays constant.
    func updateProfile(userId: Int64, city: String?, name: String?, nickName: String?,
                       province: String?, sex: String?, sign: String?) throws {
        try db.query("""
            UPDATE users SET city = COALESCE(\(city), city), name = COALESCE(\(name), name),
                nick_name = COALESCE(\(nickName), nick_name), province = COALESCE(\(province), province),
                sex = COALESCE(\(sex), sex), sign = COALESCE(\(sign), sign), updated_at = now()
            WHERE id = \(userId)
            """)
    }

    func setHead(userId: Int64, url: String) throws {
        try db.query("UPDATE users SET head_url = \(url), updated_at = now() WHERE id = \(userId)")
    }

    /// Holds these users' Profile columns steady until the current transaction ends (see `Profile.holdSteady`).
    func holdSteady(_ users: [Int64]) throws {
        try db.query("SELECT 1 FROM users WHERE id = ANY(\(PGArray(users))::bigint[]) ORDER BY id FOR SHARE")
    }

    struct PrivacySettings {
        var needAuth: Bool
        var newNotification: Bool
        var searchMobile: Bool
    }

    /// Changes the settings that are not nil; the settings after the change, nil: no such user.
    func updatePrivacy(userId: Int64, needAuth: Bool?, newNotification: Bool?, searchMobile: Bool?) throws -> PrivacySettings? {
        let rows = try db.query("""
            UPDATE users SET need_auth = COALESCE(\(needAuth), need_auth), new_notification = COALESCE(\(newNotification), new_notification),
                search_mobile = COALESCE(\(searchMobile), search_mobile), updated_at = now()
            WHERE id = \(userId) RETURNING need_auth, new_notification, search_mobile
            """)
        guard let row = rows.first else { return nil }
        return PrivacySettings(needAuth: try row.decode("need_auth"), newNotification: try row.decode("new_notification"),
                               searchMobile: try row.decode("search_mobile"))
    }

    // MARK: real-name verification

    func mobileAndAuthStatus(userId: Int64) throws -> (mobile: String, authStatus: Int64)? {
        guard let row = try db.query("SELECT mobile, auth_status FROM users WHERE id = \(userId)").first else { return nil }
        return (try row.decode("mobile"), try row.decode("auth_status"))
    }

    /// Records (or replaces) the user's submission, to be decided anew, and puts the user under review.
    func submitVerification(userId: Int64, realName: String, idNoMasked: String, idNoSealed: [UInt8]) throws {
        try db.query("""
            INSERT INTO identity_verifications (user_id, real_name, id_no_masked, id_no_sealed)
            VALUES (\(userId), \(realName), \(idNoMasked), \(PGBytes(idNoSealed)))
            ON CONFLICT (user_id) DO UPDATE SET real_name = EXCLUDED.real_name, id_no_masked = EXCLUDED.id_no_masked,
                id_no_sealed = EXCLUDED.id_no_sealed, submitted_at = now(), decided_at = NULL
            """)
        try db.query("UPDATE users SET auth_status = 1, updated_at = now() WHERE id = \(userId)")
    }

    /// Approves or rejects a verification under review; false when the user has none.
    func decideVerification(userId: Int64, approve: Bool) throws -> Bool {
        let rows = try db.query("""
            UPDATE users SET auth_status = \(approve ? 2 : 3), updated_at = now() WHERE id = \(userId) AND auth_status = 1 RETURNING id
            """)
        return !rows.isEmpty
    }

    func markVerificationDecided(userId: Int64) throws {
        try db.query("UPDATE identity_verifications SET decided_at = now() WHERE user_id = \(userId)")
    }

    // MARK: sessions

    /// `Sessions.changeId` in SQL, of a bytea expression (NULL for NULL).
    static func changeId(ofTokenHash tokenHash: SQL) -> SQL {
        "('x' || encode(substr(\(tokenHash), 1, 8), 'hex'))::bit(64)::bigint"
    }

    /// The one definition of a live session, for every statement that checks one: its user
    /// (`who_id`) and whether its last use should be recorded (`who_stale`); no row when there is
    /// no live session.
    static func liveSession(tokenHash: [UInt8]) -> SQL {
        """
        SELECT s.user_id AS who_id, s.last_used_at < now() - interval '1 minute' AS who_stale FROM sessions s
        WHERE s.token_hash = \(PGBytes(tokenHash)) AND s.last_used_at > now() - interval '30 days'
        """
    }

    func liveSession(tokenHash: [UInt8]) throws -> (userId: Int64, stale: Bool)? {
        guard let row = try db.query(AccountsStore.liveSession(tokenHash: tokenHash)).first else { return nil }
        return (try row.decode("who_id"), try row.decode("who_stale"))
    }

    /// Makes `tokenHash` the session of the user's device kind; the change id of the session it
    /// replaced, if any. `old` is read (and its row locked) before the insert replaces the row:
    /// read only from RETURNING, it would be read after, and find nothing.
    func replaceSession(userId: Int64, device: Int, tokenHash: [UInt8]) throws -> Int64? {
        let user = SQLParameter(userId)
        let deviceKind = SQLParameter(device)
        let rows = try db.query("""
            WITH old AS (SELECT token_hash FROM sessions WHERE user_id = \(user) AND device = \(deviceKind) FOR UPDATE)
            INSERT INTO sessions (token_hash, user_id, device)
            SELECT \(PGBytes(tokenHash))::bytea, \(user)::bigint, \(deviceKind)::smallint FROM (SELECT count(*) FROM old) AS old_read_first
            ON CONFLICT (user_id, device) DO UPDATE
            SET token_hash = EXCLUDED.token_hash, created_at = now(), last_used_at = now()
            RETURNING \(AccountsStore.changeId(ofTokenHash: "(SELECT token_hash FROM old)")) AS old_change_id
            """)
        return try rows.first?.decode("old_change_id", as: Int64?.self)
    }

    /// Records a use; the condition makes every update after the first of a minute a no-op.
    func touchSession(tokenHash: [UInt8]) throws {
        try db.query("""
            UPDATE sessions SET last_used_at = now()
            WHERE token_hash = \(PGBytes(tokenHash)) AND last_used_at < now() - interval '1 minute'
            """)
    }

    /// Records the uses of many sessions (hex token hashes) in one statement. A session ended
    /// meanwhile matches nothing.
    func touchSessions(hexTokenHashes: [String]) throws {
        try db.query("""
            UPDATE sessions SET last_used_at = now()
            WHERE token_hash = ANY (ARRAY(SELECT decode(h, 'hex') FROM unnest(\(PGTextArray(hexTokenHashes))::text[]) AS t(h)))
              AND last_used_at < now() - interval '1 minute'
            """)
    }

    /// Ends every session of the user; their change ids.
    func endSessions(userId: Int64) throws -> [Int64] {
        let ended = try db.query("""
            DELETE FROM sessions WHERE user_id = \(userId) RETURNING \(AccountsStore.changeId(ofTokenHash: "token_hash")) AS change_id
            """)
        let changeId = try ended.column("change_id", as: Int64.self)
        return try ended.rows.map { try $0[changeId] }
    }

    // MARK: verification codes

    /// Serialises the codes sent to one number until the transaction ends.
    func lockCodes(mobile: String) throws {
        try db.query("SELECT pg_advisory_xact_lock(hashtext('sms:' || \(mobile)))")
    }

    /// The codes sent to a number within the last `intervalSeconds` and within the last day, and
    /// the seconds until each of those counts goes down (at least 1).
    struct RecentSends {
        var withinInterval: Int64
        var withinDay: Int64
        var intervalRetryAfter: Int64
        var dayRetryAfter: Int64
    }

    func recentSends(mobile: String, intervalSeconds: Int) throws -> RecentSends {
        let interval = SQLParameter(intervalSeconds)
        let rows = try db.query("""
            SELECT count(*) FILTER (WHERE sent_at > now() - make_interval(secs => \(interval)::double precision)) AS within_interval,
                   count(*) AS within_day,
                   GREATEST(1, ceil(extract(epoch FROM max(sent_at) + make_interval(secs => \(interval)::double precision) - now()))) AS interval_retry_after,
                   GREATEST(1, ceil(extract(epoch FROM min(sent_at) + interval '1 day' - now()))) AS day_retry_after
            FROM sms_sends WHERE mobile = \(mobile) AND sent_at > now() - interval '1 day'
            """)
        let row = try rows.onlyRow("no SMS send count")
        return RecentSends(withinInterval: try row.decode("within_interval"), withinDay: try row.decode("within_day"),
                           intervalRetryAfter: try row.decode("interval_retry_after"),
                           dayRetryAfter: try row.decode("day_retry_after"))
    }

    /// Stores a new code for the number (as its MAC), replacing the old one and its attempts.
    func saveCode(mobile: String, mac: [UInt8], lifetimeSeconds: Int) throws {
        try db.query("""
            INSERT INTO sms_codes (mobile, code_mac, attempts, expires_at)
            VALUES (\(mobile), \(PGBytes(mac)), 0, now() + make_interval(secs => \(lifetimeSeconds)))
            ON CONFLICT (mobile) DO UPDATE SET code_mac = EXCLUDED.code_mac, attempts = 0, expires_at = EXCLUDED.expires_at
            """)
    }

    /// Counts a send against the number's limits; its id takes it back.
    func recordSend(mobile: String) throws -> Int64 {
        let rows = try db.query("INSERT INTO sms_sends (mobile) VALUES (\(mobile)) RETURNING id")
        let row = try rows.onlyRow("no SMS send id")
        return try row.decode("id")
    }

    /// Takes back a send that was not delivered: the code (unless a newer one replaced it) and the send.
    func takeBackSend(mobile: String, mac: [UInt8], sendId: Int64) throws {
        try db.query("""
            WITH code AS (DELETE FROM sms_codes WHERE mobile = \(mobile) AND code_mac = \(PGBytes(mac)))
            DELETE FROM sms_sends WHERE id = \(sendId)
            """)
    }

    /// The number's code, its row locked until the transaction ends.
    func lockedCode(mobile: String) throws -> (mac: [UInt8], attempts: Int64, isLive: Bool)? {
        let rows = try db.query("""
            SELECT code_mac, attempts, expires_at > now() AS is_live FROM sms_codes WHERE mobile = \(mobile) FOR UPDATE
            """)
        guard let row = rows.first else { return nil }
        // bytea comes as text in hex form: `\x…`.
        let mac = Crypto.fromHex(String(try row.decode("code_mac", as: String.self).dropFirst(2))) ?? []
        return (mac, try row.decode("attempts"), try row.decode("is_live"))
    }

    func consumeCode(mobile: String) throws {
        try db.query("DELETE FROM sms_codes WHERE mobile = \(mobile)")
    }

    func countWrongAttempt(mobile: String) throws {
        try db.query("UPDATE sms_codes SET attempts = attempts + 1 WHERE mobile = \(mobile)")
    }

    // MARK: rate limits

    /// Counts one hit in each bucket (window `seconds`, started by its first hit) in ONE upsert;
    /// each bucket's hits in its window and the seconds left of it. The buckets come sorted, so
    /// that concurrent upserts take the rows' locks in one order.
    func hitRateLimits(buckets: [String], seconds: [Int64]) throws -> [(bucket: String, hits: Int64, secondsLeft: Int)] {
        let rows = try db.query("""
            INSERT INTO rate_limit_hits AS r (bucket, window_end, hits)
            SELECT t.bucket, now() + make_interval(secs => t.secs::double precision), 1
            FROM unnest(\(PGTextArray(buckets))::text[], \(PGArray(seconds))::bigint[]) AS t(bucket, secs) ORDER BY t.bucket
            ON CONFLICT (bucket) DO UPDATE
            SET hits = CASE WHEN r.window_end <= now() THEN 1 ELSE r.hits + 1 END,
                window_end = CASE WHEN r.window_end <= now() THEN EXCLUDED.window_end ELSE r.window_end END
            RETURNING r.bucket, r.hits, GREATEST(1, ceil(extract(epoch FROM r.window_end - now())))::bigint AS seconds_left
            """)
        let bucket = try rows.column("bucket", as: String.self)
        let hits = try rows.column("hits", as: Int64.self)
        let secondsLeft = try rows.column("seconds_left", as: Int.self)
        return try rows.rows.map { (try $0[bucket], try $0[hits], try $0[secondsLeft]) }
    }
}

/// A row holding `Profile.columns`, with where they are in its result.
struct ProfileRow {
    let row: PGRow
    let columns: Profile.Columns

    var userId: Int64 { get throws { try row[columns.userId] } }

    func json(revealMobile: Bool) throws -> JSON { try Profile.json(row, columns, revealMobile: revealMobile) }
}

/// A statement that always returns a row (an aggregate, an INSERT … RETURNING) returned none.
private struct MissingRow: Error, CustomStringConvertible {
    let description: String
}

extension PGResult {
    /// The row of a statement that always returns one.
    fileprivate func onlyRow(_ what: String) throws -> PGRow {
        guard let row = first else { throw MissingRow(description: what) }
        return row
    }
}
