import Foundation
#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// The stack's processes as the operating system sees them: the supervisor, its workers, their
/// open descriptors, CPU time, and nginx's workers.
enum StackProcesses {
    /// The supervisor's pid from `$CHAT_TEST_PIDFILE`, or the test is skipped.
    static func supervisor(_ stack: Stack) throws -> pid_t {
        guard let file = stack.pidFile, let text = try? String(contentsOfFile: file, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0 else {
            throw XCTSkip("no running supervisor (CHAT_TEST_PIDFILE)")
        }
        return pid
    }

    static func workers(_ stack: Stack) throws -> [pid_t] {
        PMProcess.children(of: try supervisor(stack)).sorted()
    }

    /// Open descriptors of one process.
    static func descriptorCount(_ pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }

    /// User plus system CPU time of a process, in seconds.
    static func cpuSeconds(_ pid: pid_t) -> Double {
        guard let stat = PMProcess.readSmallFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After "(comm)": state is field 0, utime 11, stime 12 (clock ticks).
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// A field of /proc/<pid>/status, such as "Uid".
    static func status(_ pid: pid_t, _ field: String) -> String? {
        guard let text = PMProcess.readSmallFile("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// Processes whose command line starts with `prefix` (e.g. "nginx: worker process").
    static func processes(commandPrefix prefix: String) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry), let command = PMProcess.readSmallFile("/proc/\(entry)/cmdline") else { return nil }
            return command.hasPrefix(prefix) ? pid : nil
        }
    }

    /// Polls `condition` every 50 ms until it holds or `seconds` pass; returns whether it held.
    static func eventually(within seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }
}

/// A raw TCP connection to nginx, for clients that misbehave on purpose (trickling bodies).
final class RawHTTPConnection {
    let fd: Int32

    init(host: String, port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, connected == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    /// Sends what it can; false when the peer closed.
    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }
}
