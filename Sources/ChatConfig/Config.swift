import Foundation
import ChatSecurity

/// Server configuration: one `key = value` file, every key overridable from the environment
/// as `CHAT_<KEY>` (upper-cased, `.` → `_`). Unknown keys are refused so that a typo in
/// production fails loudly instead of silently falling back to a default.
public struct Config: Sendable {
    public var listen = "/run/chat-fcgi/chat.sock"
    public var socketMode: UInt16 = 0o660
    /// Group given the unix socket (nginx's group), so that 0660 lets nginx in; nil: unchanged.
    public var socketGroup: String? = nil
    public var workers = 0
    public var threads = 8
    public var pidFile: String? = nil
    public var database = "dbname=chat"
    public var sqlDir = "sql"
    public var uploadsDir = "/var/lib/chat-fcgi/uploads"
    public var uploadsURL = "/uploads"
    public var maxFormBytes = 1 << 20
    public var maxImageBytes = 20 << 20
    public var maxFileBytes = 200 << 20
    public var slowRequestMs = 1000
    /// Memory per worker process for rendered friend and member lists (VersionedCache), MiB.
    public var listCacheMiB = 64
    /// Memory per worker process for getUserById's sessions, profiles and relations (0: off), MiB.
    public var profileCacheMiB = 32
    public var shutdownTimeoutSeconds = 30
    /// Longest a single read or write on an nginx connection may block (a stalled peer), seconds.
    public var bodyTimeoutSeconds = 30
    /// Uploads one worker process serves at once (0: half its threads, at least 1); more get 503.
    public var maxUploadsPerWorker = 0
    /// Bytes one user may upload per UTC day, MiB (0: no quota).
    public var uploadQuotaMiBPerDay = 2048
    /// Parked long-polls one user may hold; a new one answers the oldest at once.
    public var maxParkedPerUser = 8
    /// Parked long-polls one worker process holds at most; beyond it a sync answers at once.
    public var maxParkedPerWorker = 4096
    /// How long a request waits for an unreachable database before it gets 503, milliseconds.
    public var dbWaitMs = 2000
    public var smsSender = "outbox"
    public var smsOutbox = "/var/lib/chat-fcgi/sms-outbox.jsonl"
    public var smsCommand: String? = nil
    public var secretKey: [UInt8] = []
    public var paymentSecret: [UInt8] = []
    public var versions: [Int: AppVersion] = [1: AppVersion(), 2: AppVersion()]
    public var logLevel = "info"
    // MARK: abuse limits (see docs/API.md §2.0; keys in abuseKeys, parsed by applyAbuseKey)
    /// Country prefixes (E.164, with `+`) that verification codes may be sent to.
    public var smsAllowedPrefixes: [String] = ["+86"]
    /// At most one code per number in this many seconds, and this many a day.
    public var smsPerNumberIntervalSeconds = 60
    public var smsPerNumberPerDay = 10
    /// Per-account and per-address limits of the enumerable routes, shared by all workers.
    public var rateLimits: [String: RateLimit] = Config.defaultRateLimits
    /// Addresses (REMOTE_ADDR, exact) that skip the per-address limits.
    public var rateLimitExemptAddresses: Set<String> = []
    /// Messages per user (sendMsg), counted in each worker process separately.
    public var sendMsgLimit = RateLimit(count: 120, seconds: 60)

    /// `count` requests per `seconds`, written `count/seconds` in the file (`0/…` turns it off).
    public struct RateLimit: Sendable, Equatable {
        public var count: Int
        public var seconds: Int
        public init(count: Int, seconds: Int) { self.count = count; self.seconds = seconds }

        static func parse(_ text: String, key: String) throws -> RateLimit {
            let parts = text.split(separator: "/").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let count = Int(parts[0]), let seconds = Int(parts[1]),
                  (0...1_000_000).contains(count), (1...604_800).contains(seconds) else {
                throw ConfigError(description: "\(key): expected count/seconds, e.g. 30/3600")
            }
            return RateLimit(count: count, seconds: seconds)
        }
    }

    /// The limits by name (`rate_limit.<name>` in the file): route and what is counted.
    public static let defaultRateLimits: [String: RateLimit] = [
        "query_user.per_user": RateLimit(count: 60, seconds: 3600),
        "query_user.per_mobile": RateLimit(count: 20, seconds: 3600),
        "query_user.per_address": RateLimit(count: 300, seconds: 3600),
        "register.per_mobile": RateLimit(count: 10, seconds: 3600),
        "register.per_address": RateLimit(count: 50, seconds: 3600),
        "find_pwd.per_mobile": RateLimit(count: 10, seconds: 3600),
        "find_pwd.per_address": RateLimit(count: 50, seconds: 3600),
        "get_validate_num.per_address": RateLimit(count: 50, seconds: 3600),
    ]

    static let abuseKeys: [String] = ["sms_allowed_prefixes", "sms_per_number_interval_s", "sms_per_number_per_day",
                                      "rate_limit.exempt_addresses", "rate_limit.send_msg.per_user"]
        + defaultRateLimits.keys.sorted().map { "rate_limit." + $0 }

    /// Applies one of `abuseKeys`; false for any other key.
    mutating func applyAbuseKey(_ key: String, _ value: String) throws -> Bool {
        func list() -> [String] {
            value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        switch key {
        case "sms_allowed_prefixes":
            let prefixes = list()
            guard prefixes.allSatisfy({ $0.count >= 2 && $0.count <= 8 && $0.hasPrefix("+")
                                        && $0.dropFirst().allSatisfy { ("0"..."9").contains($0) } }) else {
                throw ConfigError(description: "sms_allowed_prefixes: expected prefixes like +86, +1 (comma-separated)")
            }
            smsAllowedPrefixes = prefixes
        case "rate_limit.exempt_addresses": rateLimitExemptAddresses = Set(list())
        case "rate_limit.send_msg.per_user": sendMsgLimit = try RateLimit.parse(value, key: key)
        default:
            guard key.hasPrefix("rate_limit."), Config.defaultRateLimits[String(key.dropFirst(11))] != nil else { return false }
            rateLimits[String(key.dropFirst(11))] = try RateLimit.parse(value, key: key)
        }
        return true
    }
    // MARK: end of abuse limits
    /// The path the configuration came from, handed to workers so they read the same file.
    public var path: String? = nil

    public struct AppVersion: Sendable, Equatable {
        public var version: String
        public var url: String
        public var force: Bool
        public var note: String
        public init(version: String = "1.0.0", url: String = "", force: Bool = false, note: String = "") {
            (self.version, self.url, self.force, self.note) = (version, url, force, note)
        }
    }

    public init() {}

    public struct ConfigError: Error, CustomStringConvertible {
        public var description: String
        package init(description: String) { self.description = description }
    }

    /// Loads `path` (if given) and applies environment overrides; then checks what must hold.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                            requireSecrets: Bool = true) throws -> Config {
        var values: [String: String] = [:]
        if let path {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigError(description: "cannot read config file \(path)")
            }
            for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = rawLine.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                guard let eq = line.firstIndex(of: "=") else {
                    throw ConfigError(description: "\(path):\(number + 1): expected key = value")
                }
                let key = line[..<eq].trimmingCharacters(in: .whitespaces)
                let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
                values[key] = value
            }
        }
        for key in knownKeys {
            let envName = "CHAT_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
            if let value = environment[envName] { values[key] = value }
        }
        var config = Config()
        config.path = path
        try config.apply(values)
        if requireSecrets {
            guard config.secretKey.count >= 32 else {
                throw ConfigError(description: "secret_key_file must name a file with at least 32 random bytes as hex")
            }
            guard config.paymentSecret.count >= 32 else {
                throw ConfigError(description: "payment_secret_file must name a file with at least 32 random bytes as hex")
            }
        }
        return config
    }

    static let knownKeys: [String] = [
        "listen", "socket_mode", "workers", "threads", "pid_file", "database", "sql_dir", "uploads_dir",
        "uploads_url", "max_form_bytes", "max_image_bytes", "max_file_bytes", "slow_request_ms",
        "list_cache_mib", "profile_cache_mib", "socket_group", "body_timeout_s", "max_uploads_per_worker",
        "upload_quota_mib_per_day", "max_parked_per_user", "max_parked_per_worker", "db_wait_ms",
        "shutdown_timeout_s", "sms_sender", "sms_outbox", "sms_command", "secret_key_file",
        "payment_secret_file", "log_level",
        "version.android", "version.android.url", "version.android.force", "version.android.note",
        "version.ios", "version.ios.url", "version.ios.force", "version.ios.note",
    ] + abuseKeys

    mutating func apply(_ values: [String: String]) throws {
        for (key, value) in values {
            func int(_ range: ClosedRange<Int>) throws -> Int {
                guard let n = Int(value), range.contains(n) else {
                    throw ConfigError(description: "\(key): expected an integer in \(range.lowerBound)...\(range.upperBound)")
                }
                return n
            }
            switch key {
            case "listen": listen = value
            case "socket_mode":
                guard let mode = UInt16(value, radix: 8), mode <= 0o777 else {
                    throw ConfigError(description: "socket_mode: expected an octal mode like 0660")
                }
                socketMode = mode
            case "workers": workers = try int(0...256)
            case "threads": threads = try int(1...256)
            case "pid_file": pidFile = value.isEmpty ? nil : value
            case "database": database = value
            case "sql_dir": sqlDir = value
            case "uploads_dir": uploadsDir = value
            case "uploads_url":
                uploadsURL = value.hasSuffix("/") ? String(value.dropLast()) : value
            case "max_form_bytes": maxFormBytes = try int(1024...(64 << 20))
            case "max_image_bytes": maxImageBytes = try int(1024...(1 << 30))
            case "max_file_bytes": maxFileBytes = try int(1024...(16 << 30))
            case "slow_request_ms": slowRequestMs = try int(1...3_600_000)
            case "list_cache_mib": listCacheMiB = try int(0...65536)
            case "profile_cache_mib": profileCacheMiB = try int(0...65536)
            case "shutdown_timeout_s": shutdownTimeoutSeconds = try int(1...3600)
            case "socket_group": socketGroup = value.isEmpty ? nil : value
            case "body_timeout_s": bodyTimeoutSeconds = try int(1...3600)
            case "max_uploads_per_worker": maxUploadsPerWorker = try int(0...4096)
            case "upload_quota_mib_per_day": uploadQuotaMiBPerDay = try int(0...(1 << 30))
            case "max_parked_per_user": maxParkedPerUser = try int(1...1024)
            case "max_parked_per_worker": maxParkedPerWorker = try int(1...1_000_000)
            case "db_wait_ms": dbWaitMs = try int(0...60_000)
            case "sms_per_number_interval_s": smsPerNumberIntervalSeconds = try int(0...86_400)
            case "sms_per_number_per_day": smsPerNumberPerDay = try int(1...10_000)
            case "sms_sender":
                guard value == "outbox" || value == "command" else {
                    throw ConfigError(description: "sms_sender: expected outbox or command")
                }
                smsSender = value
            case "sms_outbox": smsOutbox = value
            case "sms_command": smsCommand = value.isEmpty ? nil : value
            case "secret_key_file": secretKey = try Config.readSecret(value, key: key)
            case "payment_secret_file": paymentSecret = try Config.readSecret(value, key: key)
            case "log_level": logLevel = value
            default:
                if try applyAbuseKey(key, value) {
                } else if key.hasPrefix("version.") {
                    let parts = key.split(separator: ".")
                    let device = parts[1] == "ios" ? 2 : (parts[1] == "android" ? 1 : 0)
                    guard device != 0 else { throw ConfigError(description: "unknown key \(key)") }
                    var v = versions[device] ?? AppVersion()
                    switch parts.count == 2 ? "" : String(parts[2]) {
                    case "": v.version = value
                    case "url": v.url = value
                    case "force": v.force = (value == "1" || value == "true")
                    case "note": v.note = value
                    default: throw ConfigError(description: "unknown key \(key)")
                    }
                    versions[device] = v
                } else {
                    throw ConfigError(description: "unknown key \(key)")
                }
            }
        }
        if workers == 0 { workers = ProcessInfo.processInfo.activeProcessorCount }
        if maxUploadsPerWorker == 0 { maxUploadsPerWorker = max(1, threads / 2) }
        if smsSender == "command" && smsCommand == nil {
            throw ConfigError(description: "sms_sender = command needs sms_command")
        }
    }

    /// Reads a secret file holding hex; the secret itself never appears in an error.
    static func readSecret(_ path: String, key: String) throws -> [UInt8] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(description: "\(key): cannot read \(path)")
        }
        guard let bytes = Crypto.fromHex(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ConfigError(description: "\(key): \(path) must hold hex")
        }
        return bytes
    }
}
