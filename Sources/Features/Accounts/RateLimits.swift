import Foundation
import ChatConfig
import ChatHTTP
import ChatPostgres

/// Limits on the routes that could walk the user base (queryUser, register, findPwd,
/// getValidateNum): per account (the target mobile, the calling user) and per client address.
///
/// The counters live in PostgreSQL (`rate_limit_hits`, sql/0008), so every worker on every host
/// counts against the same numbers. Each counter is a fixed window that starts with its first hit:
/// one row per bucket with the window's end and the hits in it; a hit after the end starts a new
/// window. All buckets of one request are counted in ONE statement (an upsert), atomically, and a
/// request counts whether or not it is refused. Old rows are removed by the periodic job below.
public struct RateLimiter {
    public let limits: [String: Config.RateLimit]
    public let exemptAddresses: Set<String>

    public init(config: Config) {
        limits = config.rateLimits
        exemptAddresses = config.rateLimitExemptAddresses
    }

    public init(limits: [String: Config.RateLimit], exemptAddresses: Set<String> = []) {
        self.limits = limits
        self.exemptAddresses = exemptAddresses
    }

    /// What is counted: a limit's name (a key of `limits`, e.g. `query_user.per_user`) and the
    /// counted thing (a user id, a mobile, an address).
    public typealias Subject = (limit: String, key: String)

    public static let cleanupJob = AccountsStore.rateLimitHitsCleanup

    /// The buckets (name, window seconds, limit) for these subjects: limits set to 0 and the
    /// per-address limits of exempt addresses are left out. Sorted, so that concurrent upserts
    /// take the rows' locks in one order.
    func buckets(_ subjects: [Subject]) -> [(bucket: String, seconds: Int, count: Int)] {
        var out: [(bucket: String, seconds: Int, count: Int)] = []
        for subject in subjects {
            guard let limit = limits[subject.limit], limit.count > 0 else { continue }
            if subject.limit.hasSuffix(".per_address") && (subject.key.isEmpty || exemptAddresses.contains(subject.key)) { continue }
            // The window is part of the bucket, so a changed setting starts afresh.
            out.append(("\(subject.limit):\(limit.seconds):\(subject.key)", limit.seconds, limit.count))
        }
        return out.sorted { $0.bucket < $1.bucket }
    }

    /// Counts one request against each subject's limit; throws 429 with `Retry-After` (the
    /// longest wait of the limits it is over) when any is exceeded.
    public func hit(_ subjects: [Subject], db: PGConnection) throws {
        let buckets = buckets(subjects)
        guard !buckets.isEmpty else { return }
        let counted = try AccountsStore(db: db).hitRateLimits(buckets: buckets.map(\.bucket),
                                                              seconds: buckets.map { Int64($0.seconds) })
        var retryAfter = 0
        for hit in counted {
            guard let limit = buckets.first(where: { $0.bucket == hit.bucket }) else { continue }
            if hit.hits > Int64(limit.count) { retryAfter = max(retryAfter, hit.secondsLeft) }
        }
        if retryAfter > 0 {
            throw HTTPError.tooManyRequests("too many requests; try again later", retryAfterSeconds: retryAfter)
        }
    }
}

/// A per-user message rate, counted in this worker process only (no shared state, no system call,
/// no database): a fixed window per user that starts with the user's first message in it. With
/// W workers a user may send up to W times the limit in a window when the requests spread over
/// all of them; it bounds floods, not single messages. Stale entries are dropped when the table grows.
public final class LocalRateLimiter: @unchecked Sendable {
    public let limit: Config.RateLimit
    private let lock = NSLock()
    private var windows: [Int64: (end: UInt64, count: Int)] = [:]
    private var nextSweep: UInt64 = 0
    private let now: () -> UInt64

    public init(limit: Config.RateLimit, now: @escaping () -> UInt64 = monotonicNanos) {
        self.limit = limit
        self.now = now
    }

    /// Counts one message of `userId`; nil when it may go, else the seconds until the window ends.
    public func admit(_ userId: Int64) -> Int? {
        guard limit.count > 0 else { return nil }
        let t = now()
        let window = UInt64(limit.seconds) * 1_000_000_000
        lock.lock()
        defer { lock.unlock() }
        if windows.count > 10_000 && t >= nextSweep {
            windows = windows.filter { $0.value.end > t }
            nextSweep = t + window
        }
        if let entry = windows[userId], entry.end > t {
            if entry.count >= limit.count {
                return max(1, Int((entry.end - t + 999_999_999) / 1_000_000_000))
            }
            windows[userId] = (entry.end, entry.count + 1)
            return nil
        }
        windows[userId] = (t + window, 1)
        return nil
    }

    /// `admit`, as the 429 a handler throws.
    public func check(_ userId: Int64) throws {
        if let wait = admit(userId) {
            throw HTTPError.tooManyRequests("too many messages; slow down", retryAfterSeconds: wait)
        }
    }
}
