import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

// Helpers for the abuse-limit tests: the stack's configured limits, and requests from other client
// addresses.

extension Stack {
    /// The value of `key` for the stack: its `CHAT_<KEY>` override, else its chat-fcgi.conf
    /// (`$CHAT_TEST_CONFIG`; the last line wins).
    func configValue(_ key: String) -> String? {
        let override = "CHAT_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
        if let value = ProcessInfo.processInfo.environment[override] { return value }
        guard let path = configPath, !path.isEmpty else { return nil }
        var found: String?
        for line in readWholeFile(path).split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { continue }
            if trimmed[..<equals].trimmingCharacters(in: .whitespaces) == key {
                found = String(trimmed[trimmed.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            }
        }
        return found
    }

    /// Seconds between two codes to one number (`sms_per_number_interval_s`, default 60).
    var smsIntervalSeconds: Int { configValue("sms_per_number_interval_s").flatMap { Int($0) } ?? 60 }

    /// A `rate_limit.<name>` setting as (count, seconds), or the given default.
    func rateLimit(_ name: String, default fallback: (Int, Int)) -> (count: Int, seconds: Int) {
        guard let value = configValue("rate_limit." + name) else { return fallback }
        let parts = value.split(separator: "/").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.count == 2 ? (parts[0], parts[1]) : fallback
    }

    /// The number of worker processes of the stack.
    var workerCount: Int {
        let configured = configValue("workers").flatMap { Int($0) } ?? 0
        return configured > 0 ? configured : ProcessInfo.processInfo.activeProcessorCount
    }
}

/// A loopback address other than 127.0.0.1, new for each call in a run (127.0.0.2 and up), so that
/// a test's per-address counters start at zero.
enum LoopbackAddresses {
    private static let lock = NSLock()
    private static var next = Int.random(in: 0..<200)

    static func fresh() -> String {
        lock.lock()
        defer { lock.unlock() }
        next += 1
        let n = next % 250_000
        return "127.\(n / 62_500 % 4 + 1).\(n / 250 % 250).\(n % 250 + 2)"
    }
}

extension StackClient {
    /// A form POST from `address` (a loopback address), with a Bearer token when given.
    func post(from address: String, _ path: String, _ params: [String: String], token: String? = nil) -> Reply {
        var headers = ["Content-Type": "application/x-www-form-urlencoded"]
        if let token { headers["Authorization"] = "Bearer \(token)" }
        return RawHTTP.send(stack, method: "POST", target: path, headers: headers,
                            body: Data(StackClient.form(params).utf8), sourceAddress: address)
    }
}

/// A 429 in the envelope with a positive Retry-After of at most `maxSeconds`.
func assertTooManyRequests(_ reply: Reply, maxSeconds: Int, _ context: String = "",
                           file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(reply.status, 429, "expected 429: \(reply.status) \(reply.text.prefix(300)) \(context)", file: file, line: line)
    assertIsEnvelope(reply, context, file: file, line: line)
    XCTAssertEqual(reply.code, -1, context, file: file, line: line)
    let retryAfter = Int(reply.header("Retry-After") ?? "") ?? 0
    XCTAssertGreaterThan(retryAfter, 0, "Retry-After '\(reply.header("Retry-After") ?? "none")' \(context)", file: file, line: line)
    XCTAssertLessThanOrEqual(retryAfter, maxSeconds, "Retry-After \(retryAfter) \(context)", file: file, line: line)
    XCTAssertEqual(int64(reply.json["retryAfterSeconds"]).map(Int.init) ?? retryAfter, retryAfter, context, file: file, line: line)
}
