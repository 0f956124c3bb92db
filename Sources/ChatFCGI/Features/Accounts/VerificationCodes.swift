/// SMS verification codes: issue with per-number limits, verify with an attempt limit.
///
/// Codes are stored only as an HMAC under the server secret, so a database dump does not reveal
/// live codes. Any feature that needs a code for a number (register, findPwd, updateAuth,
/// setPayPwd) verifies it here; a successful verification consumes the code.
public struct VerificationCodes {
    public let secret: [UInt8]
    public let sender: SMSSender

    public static let lifetimeSeconds = 300
    public static let maxAttempts = 5
    public static let perMinute = 1
    public static let perDay = 10

    public init(secret: [UInt8], sender: SMSSender) {
        self.secret = secret
        self.sender = sender
    }

    func mac(mobile: String, code: String) -> [UInt8] {
        Crypto.hmacSHA256(key: secret, message: Array("sms-code:\(mobile):\(code)".utf8))
    }

    /// Sends a new code, replacing the old one. Throws 429 beyond the limits.
    public func issue(mobile: String, db: PGConnection) throws {
        try db.transaction {
            // Serialise concurrent requests for one number, so the limits hold under races.
            try db.query("SELECT pg_advisory_xact_lock(hashtext('sms:' || $1))", [mobile])
            let recent = try db.query("""
                SELECT count(*) FILTER (WHERE sent_at > now() - interval '1 minute'),
                       count(*) FILTER (WHERE sent_at > now() - interval '1 day')
                FROM sms_sends WHERE mobile = $1 AND sent_at > now() - interval '1 day'
                """, [mobile])
            let row = recent[0]
            if row.int64Value(0) >= Int64(VerificationCodes.perMinute) {
                throw HTTPError.tooManyRequests("a code was sent less than a minute ago")
            }
            if row.int64Value(1) >= Int64(VerificationCodes.perDay) {
                throw HTTPError.tooManyRequests("too many codes for this number today")
            }
            let code = Crypto.randomDigits(6)
            try db.query("""
                INSERT INTO sms_codes (mobile, code_mac, attempts, expires_at)
                VALUES ($1, $2, 0, now() + make_interval(secs => $3))
                ON CONFLICT (mobile) DO UPDATE SET code_mac = EXCLUDED.code_mac, attempts = 0, expires_at = EXCLUDED.expires_at
                """, [mobile, PGBytes(mac(mobile: mobile, code: code)), VerificationCodes.lifetimeSeconds])
            try db.query("INSERT INTO sms_sends (mobile) VALUES ($1)", [mobile])
            // Sent inside the transaction: if delivery fails, nothing counts against the limits.
            do {
                try sender.send(mobile: mobile, code: code,
                                text: "Your verification code is \(code). It is valid for 5 minutes.")
            } catch {
                Log.error("sms.send_failed", ["error": String(describing: error)])
                throw HTTPError.internalError
            }
        }
    }

    /// Checks a code; a right one is consumed, a wrong one uses up one of the attempts.
    /// Runs in its own transaction so that a wrong attempt counts even when the caller fails.
    public func verify(mobile: String, code: String, db: PGConnection) throws -> Bool {
        guard code.utf8.count == 6, code.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        return try db.transaction {
            let rows = try db.query("""
                SELECT code_mac, attempts, expires_at > now() FROM sms_codes WHERE mobile = $1 FOR UPDATE
                """, [mobile])
            guard let row = rows.first, row.boolValue(2), row.int64Value(1) < Int64(VerificationCodes.maxAttempts) else {
                return false
            }
            let stored = Crypto.fromHex(String(row.text(0).dropFirst(2))) ?? []
            if Crypto.constantTimeEquals(stored, mac(mobile: mobile, code: code)) {
                try db.query("DELETE FROM sms_codes WHERE mobile = $1", [mobile])
                return true
            }
            try db.query("UPDATE sms_codes SET attempts = attempts + 1 WHERE mobile = $1", [mobile])
            return false
        }
    }
}
