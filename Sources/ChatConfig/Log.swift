import Foundation

/// Line-oriented logging to stderr: `time level event key=value ...`.
///
/// Every `write(2)` holds whole lines only, at most `AccessBuffer.limit` (PIPE_BUF) bytes of them,
/// which keeps lines from different threads and processes whole. Events are written at once;
/// access lines (one per request) are gathered per thread and written together by one thread,
/// every `AccessBuffer.flushInterval` (a crash loses at most that much of them).
/// Callers pass only values that are safe to record: never a token, password, code or id number.
public enum Log {
    public enum Level: Int, Sendable { case debug = 0, info, warn, error }
    nonisolated(unsafe) public static var minimum: Level = .info
    nonisolated(unsafe) public static var processTag = "main"

    public static func debug(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { write(.debug, event, fields) }
    public static func info(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { write(.info, event, fields) }
    public static func warn(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { write(.warn, event, fields) }
    public static func error(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { write(.error, event, fields) }

    /// The access line, once per request: built directly (the general `fields` path boxes every
    /// value in `Any`, whose dynamic casts showed up in profiles).
    public static func access(method: String, path: String, status: Int, millis: String, requestId: String, userId: Int64) {
        guard Level.info.rawValue >= minimum.rawValue else { return }
        var line = timestamp()
        line.reserveCapacity(160)
        line += " info ["
        line += processTag
        line += "] access method="
        line += quote(method)
        line += " path="
        line += quote(path)
        line += " status="
        line += String(status)
        line += " ms="
        line += millis
        line += " rid="
        line += quote(requestId)
        line += " uid="
        line += String(userId)
        line += "\n"
        AccessBuffer.current().append(line)
    }

    /// Writes every thread's gathered access lines now (at shutdown).
    public static func flushAccess() { AccessBuffer.flushAll() }

    /// A request thread's access lines not yet written. A write per line was a sizeable share of a
    /// request's system calls; here the `log-flush` thread writes every
    /// thread's lines every `flushInterval`, ~30 lines per write. A request thread only appends
    /// (under its buffer's own lock, never held across a write), so it never waits for the disk:
    /// writes to a busy log file can block for a long time when the kernel throttles writers.
    final class AccessBuffer: @unchecked Sendable {
        /// PIPE_BUF: a write up to this size to a pipe is never interleaved with another.
        static let limit = 4096
        static let flushInterval: TimeInterval = 0.1
        /// If the flusher falls this far behind, the request thread writes its own lines.
        static let backlogLimit = 1 << 20

        private let lock = NSLock()
        private var bytes: [UInt8] = []

        private static let registryLock = NSLock()
        nonisolated(unsafe) private static var all: [AccessBuffer] = []
        nonisolated(unsafe) private static var flusherStarted = false
        private static let key: pthread_key_t = {
            var key = pthread_key_t()
            pthread_key_create(&key, nil) // buffers live as long as the process (in `all`)
            return key
        }()

        static func current() -> AccessBuffer {
            if let pointer = pthread_getspecific(key) {
                return Unmanaged<AccessBuffer>.fromOpaque(pointer).takeUnretainedValue()
            }
            let buffer = AccessBuffer()
            registryLock.lock()
            all.append(buffer)
            let startFlusher = !flusherStarted
            flusherStarted = true
            registryLock.unlock()
            pthread_setspecific(key, Unmanaged.passUnretained(buffer).toOpaque())
            if startFlusher {
                let thread = Thread {
                    while true {
                        Thread.sleep(forTimeInterval: flushInterval)
                        flushAll()
                    }
                }
                thread.name = "log-flush"
                thread.start()
            }
            return buffer
        }

        func append(_ line: String) {
            var line = line
            var backlog: [UInt8]?
            line.withUTF8 { utf8 in
                lock.lock()
                bytes.append(contentsOf: utf8)
                if bytes.count > AccessBuffer.backlogLimit { backlog = take() }
                lock.unlock()
            }
            if let backlog { AccessBuffer.write(backlog) }
        }

        /// The lines gathered so far; called with `lock` held.
        private func take() -> [UInt8] {
            let taken = bytes
            bytes.removeAll(keepingCapacity: true)
            return taken
        }

        static func flushAll() {
            registryLock.lock()
            let buffers = all
            registryLock.unlock()
            for buffer in buffers {
                buffer.lock.lock()
                let taken = buffer.bytes.isEmpty ? [] : buffer.take()
                buffer.lock.unlock()
                if !taken.isEmpty { write(taken) }
            }
        }

        /// Writes whole lines, at most `limit` bytes per write (a longer line alone).
        static func write(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { raw in
                for range in chunks(of: bytes, limit: limit) {
                    var offset = range.lowerBound
                    while offset < range.upperBound {
                        let n = Foundation.write(2, raw.baseAddress! + offset, range.upperBound - offset)
                        if n <= 0 { if errno == EINTR { continue } else { return } }
                        offset += n
                    }
                }
            }
        }

        /// Consecutive ranges of whole lines, each at most `limit` bytes unless one line is longer.
        static func chunks(of bytes: [UInt8], limit: Int) -> [Range<Int>] {
            var ranges: [Range<Int>] = []
            var start = 0
            while start < bytes.count {
                var end = min(start + limit, bytes.count)
                if end < bytes.count {
                    // Back to the end of the last whole line; a single longer line goes as it is.
                    var cut = end
                    while cut > start && bytes[cut - 1] != 0x0A { cut -= 1 }
                    if cut > start {
                        end = cut
                    } else {
                        while end < bytes.count && bytes[end - 1] != 0x0A { end += 1 }
                    }
                }
                ranges.append(start..<end)
                start = end
            }
            return ranges
        }
    }

    static func write(_ level: Level, _ event: String, _ fields: KeyValuePairs<String, Any>) {
        guard level.rawValue >= minimum.rawValue else { return }
        var line = timestamp()
        line += " " + ["debug", "info", "warn", "error"][level.rawValue]
        line += " [" + processTag + "] " + event
        for (key, value) in fields {
            line += " " + key + "=" + quote(String(describing: value))
        }
        line += "\n"
        raw(line)
    }

    public static func raw(_ line: String) {
        var copy = line
        copy.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Foundation.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { if errno == EINTR { continue } else { return } }
                offset += n
            }
        }
    }

    static func quote(_ value: String) -> String {
        if !value.isEmpty && !value.utf8.contains(where: { $0 <= 0x20 || $0 == UInt8(ascii: "\"") || $0 >= 0x7F }) {
            return value
        }
        // Control characters are escaped, so that no value (a path, a client's text) can forge a
        // line or hide one on a terminal.
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `2026-01-02T03:04:05.678Z`, built by hand: `String(format:)` showed up in profiles of the
    /// access log, which writes one line per request.
    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var tmv = tm()
        var seconds = tv.tv_sec
        gmtime_r(&seconds, &tmv)
        var out = [UInt8](repeating: 0, count: 24)
        func put(_ value: Int, _ at: Int, _ digits: Int) {
            var v = value
            for i in stride(from: at + digits - 1, through: at, by: -1) {
                out[i] = UInt8(48 + v % 10)
                v /= 10
            }
        }
        put(Int(tmv.tm_year) + 1900, 0, 4); out[4] = 45
        put(Int(tmv.tm_mon) + 1, 5, 2); out[7] = 45
        put(Int(tmv.tm_mday), 8, 2); out[10] = 84
        put(Int(tmv.tm_hour), 11, 2); out[13] = 58
        put(Int(tmv.tm_min), 14, 2); out[16] = 58
        put(Int(tmv.tm_sec), 17, 2); out[19] = 46
        put(Int(tv.tv_usec / 1000), 20, 3); out[23] = 90
        return String(decoding: out, as: UTF8.self)
    }
}

/// Monotonic clock in nanoseconds, for durations.
@inline(__always) public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Wall clock in milliseconds since the epoch (the API's time unit).
@inline(__always) public func epochMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
