import Foundation
import XCTest
@testable import ChatPostgres
@testable import ChatFastCGI

/// The worker's FastCGI loop in-process, spoken to over a unix socket the way nginx does
/// (FCGI_KEEP_CONN), without nginx.
final class FastCGIServerTests: XCTestCase {
    /// Any free thread serves a request on any kept-alive connection: a request that holds one
    /// thread delays nothing on the process's other connections.
    ///
    /// Six connections on two threads: had each thread owned the connections it accepted (at most
    /// four each, as before the shared epoll set), the blocked thread would own at least one of
    /// the other five, whose request would then wait for the block to end.
    func testABusyThreadDelaysNoOtherConnection() throws {
        let harness = try Harness(threads: 2)
        defer { harness.stop() }
        let connections = try (0..<6).map { _ in try harness.connect() }
        for (index, connection) in connections.enumerated() {
            XCTAssertEqual(try connection.get("/warm/\(index)"), "/warm/\(index)")
        }

        try connections[0].send("/block")
        XCTAssertTrue(harness.blocked.wait(timeout: .now() + 5) == .success, "the /block request never started")
        for (index, connection) in connections.enumerated().dropFirst() {
            XCTAssertEqual(try connection.get("/fast/\(index)"), "/fast/\(index)",
                           "connection \(index) waited for the busy thread")
        }
        harness.gate.signal()
        XCTAssertEqual(try connections[0].receive(), "/block")
        // Kept alive after all that: the blocked connection takes the next request too.
        XCTAssertEqual(try connections[0].get("/again"), "/again")
    }

    /// Draining closes the idle kept-alive connections (nginx then opens new ones to the new
    /// workers) and stops the threads.
    func testDrainingClosesIdleConnectionsAndStops() throws {
        let harness = try Harness(threads: 2)
        let connections = try (0..<3).map { _ in try harness.connect() }
        for connection in connections { XCTAssertEqual(try connection.get("/x"), "/x") }
        harness.server.beginDraining()
        for connection in connections {
            XCTAssertTrue(try connection.readsEndOfFile(), "an idle connection stayed open while draining")
        }
        XCTAssertTrue(harness.server.waitUntilStopped(timeoutSeconds: 5))
        harness.stop()
    }

    /// A peer that connects and sends nothing holds no thread: with one thread, another
    /// connection is served at once.
    func testAConnectionThatSendsNothingHoldsNoThread() throws {
        let harness = try Harness(threads: 1)
        defer { harness.stop() }
        let silent = try harness.connect()
        usleep(200_000)
        let other = try harness.connect()
        XCTAssertEqual(try other.get("/after-silent"), "/after-silent")
        XCTAssertEqual(try silent.get("/late"), "/late", "the silent connection is served once it speaks")
    }

    /// A body that stalls frees its thread after the I/O deadline; the handler sees a failed
    /// body, not a short one, and the connection is closed.
    func testAStalledBodyFreesItsThreadAfterTheDeadline() throws {
        let harness = try Harness(threads: 1, ioTimeoutSeconds: 1)
        defer { harness.stop() }
        let stalled = try harness.connect()
        try stalled.sendHead("/readbody", contentLength: 1000, body: Array(repeating: 0x61, count: 10))
        usleep(100_000)
        let started = Date()
        let other = try harness.connect()
        XCTAssertEqual(try other.get("/next", timeout: 5), "/next")
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
        XCTAssertEqual(harness.bodyOutcomes.last, "failed after 10 bytes")
        XCTAssertTrue(try stalled.readsEndOfFileAfterAnswer(), "the connection of a failed body must close")
    }

    // MARK: harness

    /// Calls `body` with the unix socket address of `path` (for bind or connect).
    static func withAddress(of path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8).prefix(raw.count - 1))
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    final class Harness {
        let server: FastCGIServer
        let path: String
        let listenFD: Int32
        /// Signalled when a /block request starts; /block then waits for `gate`.
        let blocked = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        private var stopped = false

        /// What each /readbody request saw of its body.
        private let outcomesLock = NSLock()
        private var outcomes: [String] = []
        var bodyOutcomes: [String] { outcomesLock.withLock { outcomes } }

        init(threads: Int, ioTimeoutSeconds: Int = 30) throws {
            FastCGIServer.initializeLibrary()
            path = NSTemporaryDirectory() + "fcgi-test-\(getpid())-\(UUID().uuidString.prefix(8)).sock"
            listenFD = try Harness.listen(at: path)
            let blocked = self.blocked, gate = self.gate
            var record: (String) -> Void = { _ in }
            server = FastCGIServer(listenFD: listenFD, threads: threads, slowRequestMillis: 60_000,
                                   ioTimeoutSeconds: ioTimeoutSeconds) {
                return { exchange in
                    let uri = exchange.param("DOCUMENT_URI") ?? "?"
                    if uri == "/block" {
                        blocked.signal()
                        _ = gate.wait(timeout: .now() + 20)
                    }
                    if uri == "/readbody" {
                        var buffer = [UInt8](repeating: 0, count: 4096)
                        var total = 0
                        while true {
                            let n = buffer.withUnsafeMutableBytes { exchange.readBody(into: $0) }
                            if n == 0 { break }
                            total += n
                        }
                        record(exchange.bodyFailed ? "failed after \(total) bytes" : "read \(total) bytes")
                    }
                    exchange.write(Array("Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n\(uri)".utf8))
                }
            }
            record = { [unowned self] text in outcomesLock.withLock { outcomes.append(text) } }
            server.start()
        }

        func connect() throws -> Client { try Client(path: path) }

        func stop() {
            if stopped { return }
            stopped = true
            gate.signal()
            server.beginDraining()
            _ = server.waitUntilStopped(timeoutSeconds: 5)
            close(listenFD)
            unlink(path)
        }

        static func listen(at path: String) throws -> Int32 {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw POSIXError(.EIO) }
            let bound = FastCGIServerTests.withAddress(of: path) { bind(fd, $0, $1) }
            guard bound == 0, Glibc.listen(fd, 64) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
            // As the supervisor does: every thread waits on it, one wins each accept.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            return fd
        }
    }

    /// One kept-alive connection, speaking FastCGI like nginx with `fastcgi_keep_conn on`.
    final class Client {
        let fd: Int32
        private var pending: [UInt8] = []

        init(path: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            let connected = FastCGIServerTests.withAddress(of: path) { Glibc.connect(fd, $0, $1) }
            guard fd >= 0, connected == 0 else { throw POSIXError(.ECONNREFUSED) }
            // A request that waits behind a busy thread shows as a time-out, not a hang.
            var timeout = timeval(tv_sec: 3, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        func get(_ uri: String, timeout: Int = 3) throws -> String {
            var limit = timeval(tv_sec: timeout, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            try send(uri)
            return try receive()
        }

        /// BEGIN_REQUEST, the params with a CONTENT_LENGTH, and only the first part of the body.
        func sendHead(_ uri: String, contentLength: Int, body: [UInt8]) throws {
            var out = Client.record(type: 1, content: [0, 1, 1, 0, 0, 0, 0, 0])
            var params: [UInt8] = []
            for (name, value) in [("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", uri), ("SCRIPT_NAME", uri),
                                  ("QUERY_STRING", ""), ("CONTENT_LENGTH", String(contentLength))] {
                params += [UInt8(name.utf8.count), UInt8(value.utf8.count)] + Array(name.utf8) + Array(value.utf8)
            }
            out += Client.record(type: 4, content: params) + Client.record(type: 4, content: [])
                + Client.record(type: 5, content: body)
            let written = out.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == out.count else { throw POSIXError(.EPIPE) }
        }

        /// Reads the answer, then expects the server to close the connection.
        func readsEndOfFileAfterAnswer() throws -> Bool {
            _ = try receive()
            return try readsEndOfFile()
        }

        /// BEGIN_REQUEST (responder, keep the connection), the params, and empty PARAMS and STDIN.
        func send(_ uri: String) throws {
            var out = Client.record(type: 1, content: [0, 1, 1, 0, 0, 0, 0, 0])
            var params: [UInt8] = []
            for (name, value) in [("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", uri), ("SCRIPT_NAME", uri),
                                  ("QUERY_STRING", ""), ("CONTENT_LENGTH", "")] {
                params += [UInt8(name.utf8.count), UInt8(value.utf8.count)] + Array(name.utf8) + Array(value.utf8)
            }
            out += Client.record(type: 4, content: params) + Client.record(type: 4, content: [])
                + Client.record(type: 5, content: [])
            let written = out.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == out.count else { throw POSIXError(.EPIPE) }
        }

        /// The STDOUT content after the CGI headers, once END_REQUEST arrived.
        func receive() throws -> String {
            var stdout: [UInt8] = []
            while true {
                let header = try read(8)
                let length = Int(header[4]) << 8 | Int(header[5])
                let content = try read(length + Int(header[6]))
                switch header[1] {
                case 6: stdout += content.prefix(length)
                case 3:
                    let text = String(decoding: stdout, as: UTF8.self)
                    guard let split = text.range(of: "\r\n\r\n") else { throw POSIXError(.EBADMSG) }
                    return String(text[split.upperBound...])
                default: continue
                }
            }
        }

        /// True when the server closed the connection (read returns 0) within the time-out.
        func readsEndOfFile() throws -> Bool {
            var byte: UInt8 = 0
            return Glibc.read(fd, &byte, 1) == 0
        }

        private func read(_ count: Int) throws -> [UInt8] {
            while pending.count < count {
                var buffer = [UInt8](repeating: 0, count: 65536)
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { throw POSIXError(n == 0 ? .ECONNRESET : .ETIMEDOUT) }
                pending += buffer.prefix(n)
            }
            defer { pending.removeFirst(count) }
            return Array(pending.prefix(count))
        }

        static func record(type: UInt8, content: [UInt8]) -> [UInt8] {
            [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0, 0] + content
        }
    }
}
