import Foundation
import ChatConfig
import ChatHTTP
import ChatPostgres

/// Delivers a verification text to a mobile number.
public protocol SMSSender: Sendable {
    func send(mobile: String, code: String, text: String) throws
}

public struct SMSSendError: Error, CustomStringConvertible {
    public var description: String
}

/// The embedded default: appends one JSON object per line to an outbox file, so that a developer
/// (and the tests) can read the codes without an SMS provider.
public struct OutboxSMSSender: SMSSender {
    public let path: String

    public init(path: String) { self.path = path }

    public func send(mobile: String, code: String, text: String) throws {
        let line = JSON.object([
            ("mobile", .string(mobile)), ("code", .string(code)), ("text", .string(text)), ("time", .int(epochMillis())),
        ]).serialized() + [0x0A]
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SMSSendError(description: "cannot open the SMS outbox (errno \(errno))") }
        defer { close(fd) }
        // One write per line with O_APPEND: lines from concurrent workers never interleave.
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else { throw SMSSendError(description: "short write to the SMS outbox") }
    }
}

/// Runs an operator's command with the number and text as arguments (never through a shell),
/// also given as CHAT_SMS_MOBILE / CHAT_SMS_TEXT in its environment. Exit status 0 means sent.
public struct CommandSMSSender: SMSSender {
    public let command: String
    public let timeoutSeconds: Double

    public init(command: String, timeoutSeconds: Double = 10) {
        self.command = command
        self.timeoutSeconds = timeoutSeconds
    }

    public func send(mobile: String, code: String, text: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command)
        process.arguments = [mobile, text]
        var environment = ProcessInfo.processInfo.environment
        environment["CHAT_SMS_MOBILE"] = mobile
        environment["CHAT_SMS_TEXT"] = text
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw SMSSendError(description: "cannot run the SMS command")
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                throw SMSSendError(description: "the SMS command timed out")
            }
            usleep(5_000)
        }
        guard process.terminationStatus == 0 else {
            throw SMSSendError(description: "the SMS command failed with status \(process.terminationStatus)")
        }
    }
}
