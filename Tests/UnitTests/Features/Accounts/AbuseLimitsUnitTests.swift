import XCTest
@testable import ChatConfig
@testable import ChatHTTP
@testable import Accounts

/// The pieces of the abuse limits that need no database: configuration, the per-worker message
/// limiter, the buckets of the shared limiter, the SMS allow-list and texts.
final class AbuseLimitsUnitTests: XCTestCase {

    // MARK: configuration

    func testDefaultsAndParsedLimits() throws {
        let defaults = Config()
        XCTAssertEqual(defaults.smsAllowedPrefixes, ["+86"])
        XCTAssertEqual(defaults.smsPerNumberIntervalSeconds, 60)
        XCTAssertEqual(defaults.smsPerNumberPerDay, 10)
        XCTAssertEqual(defaults.rateLimits["query_user.per_user"], Config.RateLimit(count: 60, seconds: 3600))
        XCTAssertEqual(defaults.sendMsgLimit, Config.RateLimit(count: 120, seconds: 60))
        XCTAssertTrue(defaults.rateLimitExemptAddresses.isEmpty)

        let config = try Config.load(path: nil, environment: [
            "CHAT_SMS_ALLOWED_PREFIXES": "+86, +852",
            "CHAT_SMS_PER_NUMBER_INTERVAL_S": "5",
            "CHAT_SMS_PER_NUMBER_PER_DAY": "3",
            "CHAT_RATE_LIMIT_QUERY_USER_PER_USER": "7/30",
            "CHAT_RATE_LIMIT_SEND_MSG_PER_USER": "0/1",
            "CHAT_RATE_LIMIT_EXEMPT_ADDRESSES": "127.0.0.1,10.0.0.1",
        ], requireSecrets: false)
        XCTAssertEqual(config.smsAllowedPrefixes, ["+86", "+852"])
        XCTAssertEqual(config.smsPerNumberIntervalSeconds, 5)
        XCTAssertEqual(config.smsPerNumberPerDay, 3)
        XCTAssertEqual(config.rateLimits["query_user.per_user"], Config.RateLimit(count: 7, seconds: 30))
        XCTAssertEqual(config.rateLimits["register.per_mobile"], Config.RateLimit(count: 10, seconds: 3600))
        XCTAssertEqual(config.sendMsgLimit.count, 0)
        XCTAssertEqual(config.rateLimitExemptAddresses, ["127.0.0.1", "10.0.0.1"])
    }

    func testBadLimitValuesFailLoudly() {
        for (key, value) in [("rate_limit.register.per_mobile", "10"), ("rate_limit.register.per_mobile", "10/0"),
                             ("rate_limit.no_such.per_user", "1/1"), ("sms_allowed_prefixes", "86"),
                             ("sms_per_number_per_day", "0")] {
            var config = Config()
            XCTAssertThrowsError(try config.apply([key: value]), "\(key) = \(value)")
        }
    }

    // MARK: per-worker message limiter

    func testLocalLimiterAllowsTheLimitPerWindowAndTellsTheWait() {
        var clock: UInt64 = 1_000_000_000
        let limiter = LocalRateLimiter(limit: Config.RateLimit(count: 3, seconds: 10), now: { clock })
        for _ in 0..<3 { XCTAssertNil(limiter.admit(1)) }
        XCTAssertEqual(limiter.admit(1), 10)
        XCTAssertNil(limiter.admit(2), "another user has a window of their own")
        clock += 4_500_000_000
        XCTAssertEqual(limiter.admit(1), 6, "rounded up")
        XCTAssertThrowsError(try limiter.check(1)) { error in
            XCTAssertEqual((error as? HTTPError)?.status, 429)
            XCTAssertEqual((error as? HTTPError)?.retryAfterSeconds, 6)
        }
        clock += 5_500_000_000
        XCTAssertNil(limiter.admit(1), "a new window")
        XCTAssertNil(LocalRateLimiter(limit: Config.RateLimit(count: 0, seconds: 1)).admit(1), "0: off")
    }

    // MARK: shared limiter

    func testBucketsLeaveOutExemptAddressesAndLimitsSetToZero() {
        let limiter = RateLimiter(limits: ["a.per_user": .init(count: 5, seconds: 60), "a.per_address": .init(count: 9, seconds: 30),
                                           "b.per_mobile": .init(count: 0, seconds: 60)],
                                  exemptAddresses: ["127.0.0.1"])
        XCTAssertEqual(limiter.buckets([("a.per_user", "42"), ("a.per_address", "10.1.2.3"), ("b.per_mobile", "+86")]).map(\.bucket),
                       ["a.per_address:30:10.1.2.3", "a.per_user:60:42"])
        XCTAssertEqual(limiter.buckets([("a.per_address", "127.0.0.1"), ("a.per_address", "")]).count, 0)
        XCTAssertEqual(limiter.buckets([("unknown", "x")]).count, 0)
    }

    // MARK: SMS

    func testAllowListAndPurposeTexts() {
        struct NoSender: SMSSender { func send(mobile: String, code: String, text: String) throws {} }
        let codes = VerificationCodes(secret: [1, 2, 3], sender: NoSender(), allowedPrefixes: ["+86", "+852"])
        XCTAssertTrue(codes.mayReceive("+8613800138000"))
        XCTAssertTrue(codes.mayReceive("+85291234567"))
        XCTAssertFalse(codes.mayReceive("+14155550123"))
        XCTAssertFalse(codes.mayReceive("+8"))
        var texts = Set<String>()
        for purpose in VerificationCodes.Purpose.allCases {
            let text = VerificationCodes.text(code: "123456", purpose: purpose)
            XCTAssertTrue(text.contains("123456"))
            texts.insert(text)
        }
        XCTAssertEqual(texts.count, VerificationCodes.Purpose.allCases.count, "each purpose has its own text")
        XCTAssertTrue(VerificationCodes.text(code: "1", purpose: .findPwd).contains("reset your password"))
    }
}
