import Foundation
import XCTest

/// A request that runs longer than `slow_request_ms` (1,000 ms on the test stack) is logged while
/// it runs, with its path and how long it has been running.
final class SlowRequestLogTests: StackTestCase {
    func testARequestRunningLongerThanTheLimitIsLoggedWithItsPath() throws {
        guard let logPath = stack.appLogPath else { throw XCTSkip("no app log under $CHAT_TEST_STACK_DIR") }
        let account = client.newAccount(name: "Slow")
        let before = readWholeFile(logPath).components(separatedBy: "request.slow").count

        // doUploads streams its body (nginx does not buffer it), so a client that sends half a
        // body, pauses 2.5 s and then sends the rest keeps the request running that long.
        let (host, port) = stack.hostAndPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port.bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(connected, 0)
        let body = [UInt8]("%PDF-1.4\n".utf8) + [UInt8](repeating: 0x41, count: 200_000)
        let head = "POST /chat/doUploads?fileExt=pdf HTTP/1.1\r\nHost: \(host)\r\nAuthorization: Bearer \(account.token)\r\n"
            + "Content-Type: application/octet-stream\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        func send(_ bytes: [UInt8]) {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                offset += n
            }
        }
        send(Array(head.utf8))
        send(Array(body[0..<100_000]))
        usleep(2_500_000)
        send(Array(body[100_000...]))
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        let text = String(decoding: answer, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200"), text)
        XCTAssertTrue(text.contains("\"code\":1"), text)

        // The watchdog looks every 250 ms; the line is written while the request runs.
        let log = readWholeFile(logPath)
        let slowLines = log.components(separatedBy: "\n").filter { $0.contains("request.slow") }
        XCTAssertGreaterThan(slowLines.count, before - 1, "no request.slow line in \(logPath)")
        XCTAssertTrue(slowLines.contains { $0.contains("path=/chat/doUploads") && $0.contains("running_ms=") },
                      "request.slow lines: \(slowLines.suffix(3))")
        // And it never carries the token.
        XCTAssertFalse(log.contains(account.token))
    }
}
