import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// What the app does with broken clients and starved resources: a FastCGI request with a negative
/// length, a worker out of descriptors; and how the local stack is locked down.
final class ConnectionHardeningTests: StackTestCase {
    var appSocket: String {
        get throws {
            guard let dir = stack.stackDir else { throw XCTSkip("CHAT_TEST_STACK_DIR is not set") }
            return dir + "/run/chat.sock"
        }
    }

    /// A direct FastCGI client that sends `CONTENT_LENGTH: -5` gets 400, and the app serves on.
    func testANegativeContentLengthIsRefused() throws {
        for path in ["/chat/doLogin", "/chat/uploadImage", "/chat/doUploads", "/getVersion"] {
            let connection = try PMFastCGI.Connection(socketPath: try appSocket)
            try connection.send(PMFastCGI.record(PMFastCGI.beginRequest, [0, 1, 0, 0, 0, 0, 0, 0]))
            let pairs = [("REQUEST_METHOD", "POST"), ("SCRIPT_NAME", path), ("DOCUMENT_URI", path),
                         ("QUERY_STRING", "fileExt=png&device=1"), ("REMOTE_ADDR", "127.0.0.1"),
                         ("CONTENT_TYPE", "application/x-www-form-urlencoded"), ("CONTENT_LENGTH", "-5")]
            try connection.send(PMFastCGI.record(PMFastCGI.params, pairs.flatMap { PMFastCGI.nameValue($0.0, $0.1) }[...]))
            try connection.send(PMFastCGI.record(PMFastCGI.params, []))
            try connection.send(PMFastCGI.record(PMFastCGI.stdin, Array("a=b".utf8)[...]))
            try connection.endBody()
            let reply = try connection.readResponse(timeout: 5)
            XCTAssertEqual(reply.status, 400, "\(path): \(reply.text)")
            XCTAssertEqual(reply.info, "invalid Content-Length", path)
        }
        assertOK(client.get("/getVersion", ["device": "1"]))
    }

    /// The app's socket is not world-writable, and nginx's workers are not root.
    func testTheSocketIsGroupOnlyAndNginxWorkersAreUnprivileged() throws {
        guard getuid() == 0 else { throw XCTSkip("the stack runs nginx unprivileged only when started by root") }
        var info = stat()
        XCTAssertEqual(stat(try appSocket, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o660, "socket mode \(String(info.st_mode & 0o777, radix: 8))")
        let prefix = stack.stackDir ?? ""
        let workers = StackProcesses.processes(commandPrefix: "nginx: worker process").filter { pid in
            // This stack's workers: their master's command line names this stack's folder.
            guard let parent = StackProcesses.status(pid, "PPid").flatMap({ pid_t($0) }),
                  let command = PMProcess.readSmallFile("/proc/\(parent)/cmdline") else { return false }
            return command.contains(prefix)
        }
        XCTAssertFalse(workers.isEmpty, "no nginx worker of this stack found")
        for pid in workers {
            let uid = StackProcesses.status(pid, "Uid")?.split(separator: "\t").first.map(String.init) ?? "?"
            XCTAssertNotEqual(uid, "0", "nginx worker \(pid) runs as root")
        }
    }

    /// A worker that runs out of descriptors logs it, stops taking connections for a moment
    /// (instead of spinning on the listening socket), and serves on once descriptors are back.
    func testAWorkerOutOfDescriptorsBacksOffInsteadOfSpinning() throws {
        let workers = try StackProcesses.workers(stack)
        guard workers.count > 1 else { throw XCTSkip("needs two workers") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else { throw XCTSkip("no prlimit") }
        let socketPath = try appSocket
        // The worker the kernel hands new connections to (EPOLLEXCLUSIVE wakes one, often the same).
        let counts = workers.map { StackProcesses.descriptorCount($0) }
        var probe: PMFastCGI.Connection? = try PMFastCGI.Connection(socketPath: socketPath)
        var taker: pid_t? = nil
        _ = StackProcesses.eventually(within: 3) {
            taker = zip(workers, counts).first { StackProcesses.descriptorCount($0.0) > $0.1 }?.0
            return taker != nil
        }
        probe = nil
        _ = probe
        let worker = try XCTUnwrap(taker, "no worker accepted the probe connection")
        usleep(100_000)
        let open = StackProcesses.descriptorCount(worker)
        func setLimit(_ soft: String) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--pid", String(worker), "--nofile=\(soft):"]
            try process.run()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "prlimit failed")
        }
        let original = PMProcess.readSmallFile("/proc/\(worker)/limits")?.split(separator: "\n")
            .first { $0.hasPrefix("Max open files") }?.split(separator: " ", omittingEmptySubsequences: true)
            .dropFirst(3).first.map(String.init) ?? "20000"
        try setLimit(String(open + 3))
        var held: [PMFastCGI.Connection] = []
        defer {
            held.removeAll()
            try? setLimit(original)
        }
        let log = LogTail(stack.appLogPath ?? "")
        let marker = "[worker \(worker)] accept.failed"
        // Idle connections until this worker has failed an accept (the other worker takes the rest).
        for _ in 0..<100 where !log.text.contains(marker) {
            held.append(try PMFastCGI.Connection(socketPath: socketPath))
            usleep(5_000)
        }
        XCTAssertTrue(StackProcesses.eventually(within: 5) { log.text.contains(marker) },
                      "the worker never logged accept.failed")
        let cpuBefore = StackProcesses.cpuSeconds(worker)
        usleep(2_000_000)
        let cpu = StackProcesses.cpuSeconds(worker) - cpuBefore
        print("[hardening] worker \(worker) out of descriptors: \(String(format: "%.2f", cpu)) s of CPU in 2 s")
        XCTAssertLessThan(cpu, 0.5, "a worker out of descriptors spun on its listening socket")
        // The stack serves throughout, and once descriptors are back.
        assertOK(client.get("/getVersion", ["device": "1"]))
        held.removeAll()
        try setLimit(original)
        XCTAssertEqual(kill(worker, 0), 0, "the worker died")
        for _ in 0..<20 { assertOK(client.get("/getVersion", ["device": "1"])) }
    }

    /// Every JSON answer says nosniff; a 405 names what is allowed; no token is "missing token".
    func testErrorAnswersCarryTheirHeaders() throws {
        var request = URLRequest(url: URL(string: stack.baseURL + "/getVersion?device=1")!)
        request.httpMethod = "PUT"
        let put = client.perform(request)
        assertReply(put, status: 405, code: -1)
        XCTAssertEqual(put.header("Allow"), "GET, POST")
        XCTAssertEqual(put.header("X-Content-Type-Options"), "nosniff")
        let ok = client.get("/getVersion", ["device": "1"])
        XCTAssertEqual(ok.header("X-Content-Type-Options"), "nosniff")
        let missing = client.get("/chat/ready")
        assertReply(missing, status: 401, code: -1, infoContains: "missing token")
        let wrong = client.get("/chat/ready", ["token": String(repeating: "0", count: 64)])
        assertReply(wrong, status: 401, code: -1, infoContains: "invalid or expired token")
    }
}
