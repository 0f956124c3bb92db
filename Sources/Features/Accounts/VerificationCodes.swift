import ChatConfig
import ChatHTTP
import ChatPostgres
import ChatSecurity

/// SMS verification codes: issue with per-number limits, verify with an attempt limit.
///
/// Codes are stored only as an HMAC under the server secret, so a database dump does not reveal
/// live codes. Any feature that needs a code for a number (register, findPwd, updateAuth,
/// setPayPwd) verifies it here; a successful verification consumes the code.
public struct VerificationCodes {
    public let secret: [UInt8]
    public let sender: SMSSender
    /// Country prefixes codes may be sent to (`sms_allowed_prefixes`).
    public let allowedPrefixes: [String]
    /// At most one code per number in this many seconds (0: no such limit), and `perDay` a day.
    public let intervalSeconds: Int
    public let perDay: Int

    public static let lifetimeSeconds = 300
    public static let maxAttempts = 5
    /// How long a client is asked to wait after a failed delivery.
    public static let deliveryRetryAfterSeconds = 30

    /// What a code is for: its text says so (the routes that take a code: register, findPwd,
    /// updateAuth and setPayPwd).
    public enum Purpose: String, CaseIterable, Sendable {
        case register, findPwd, updateAuth, setPayPwd
        /// A number not told which: one that is already registered.
        case account

        var use: String {
            switch self {
            case .register: return "to register your account"
            case .findPwd: return "to reset your password"
            case .updateAuth: return "to confirm your real-name verification"
            case .setPayPwd: return "to set your payment password"
            case .account: return "to reset your password or confirm a change to your account"
            }
        }
    }

    public init(secret: [UInt8], sender: SMSSender, allowedPrefixes: [String] = ["+86"],
                intervalSeconds: Int = 60, perDay: Int = 10) {
        self.secret = secret
        self.sender = sender
        self.allowedPrefixes = allowedPrefixes
        self.intervalSeconds = intervalSeconds
        self.perDay = perDay
    }

    func mac(mobile: String, code: String) -> [UInt8] {
        Crypto.hmacSHA256(key: secret, message: Array("sms-code:\(mobile):\(code)".utf8))
    }

    /// Whether codes may be sent to this (well-formed E.164) number.
    public func mayReceive(_ mobile: String) -> Bool {
        allowedPrefixes.contains { mobile.hasPrefix($0) }
    }

    /// The message: what the code is, what it is for, how long it lasts.
    static func text(code: String, purpose: Purpose) -> String {
        "Your verification code is \(code), \(purpose.use). It is valid for \(lifetimeSeconds / 60) minutes. "
            + "Do not share it with anyone."
    }

    /// Sends a new code, replacing the old one. 400 for a number outside the allowed country
    /// prefixes; 429 (with Retry-After) beyond the per-number limits.
    ///
    /// The code and the send are recorded in a transaction (serialised per number, so the limits
    /// hold under races), and the message goes out only after it committed. If delivery then
    /// fails, both are taken back (the code, unless a newer one replaced it, and the send, so
    /// nothing counts against the limits) and the answer is 503 with Retry-After.
    public func issue(mobile: String, purpose: Purpose, db: PGConnection) throws {
        guard mayReceive(mobile) else {
            throw HTTPError.badRequest("invalid parameter: mobile (verification codes cannot be sent to this country code)")
        }
        let code = Crypto.randomDigits(6)
        let codeMac = mac(mobile: mobile, code: code)
        let store = AccountsStore(db: db)
        let sendId: Int64 = try db.transaction {
            try store.lockCodes(mobile: mobile)
            let recent = try store.recentSends(mobile: mobile, intervalSeconds: intervalSeconds)
            if intervalSeconds > 0 && recent.withinInterval >= 1 {
                throw HTTPError.tooManyRequests("a code was sent to this number moments ago",
                                                retryAfterSeconds: Int(recent.intervalRetryAfter))
            }
            if recent.withinDay >= Int64(perDay) {
                throw HTTPError.tooManyRequests("too many codes for this number today", retryAfterSeconds: Int(recent.dayRetryAfter))
            }
            try store.saveCode(mobile: mobile, mac: codeMac, lifetimeSeconds: VerificationCodes.lifetimeSeconds)
            return try store.recordSend(mobile: mobile)
        }
        do {
            try sender.send(mobile: mobile, code: code, text: VerificationCodes.text(code: code, purpose: purpose))
        } catch {
            // The error describes the sender's failure, never the code or the text.
            Log.error("sms.send_failed", ["error": String(describing: error)])
            do {
                try store.takeBackSend(mobile: mobile, mac: codeMac, sendId: sendId)
            } catch {
                Log.error("sms.take_back_failed", ["error": String(describing: error)])
            }
            throw HTTPError.unavailable("the verification code could not be sent; try again later",
                                        retryAfterSeconds: VerificationCodes.deliveryRetryAfterSeconds)
        }
    }

    /// Checks a code; a right one is consumed, a wrong one uses up one of the attempts.
    /// Runs in its own transaction so that a wrong attempt counts even when the caller fails.
    public func verify(mobile: String, code: String, db: PGConnection) throws -> Bool {
        guard code.utf8.count == 6, code.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        let store = AccountsStore(db: db)
        return try db.transaction {
            guard let stored = try store.lockedCode(mobile: mobile), stored.isLive,
                  stored.attempts < Int64(VerificationCodes.maxAttempts) else {
                return false
            }
            if Crypto.constantTimeEquals(stored.mac, mac(mobile: mobile, code: code)) {
                try store.consumeCode(mobile: mobile)
                return true
            }
            try store.countWrongAttempt(mobile: mobile)
            return false
        }
    }
}
