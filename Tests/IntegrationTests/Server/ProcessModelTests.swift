import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// The process model under load, against the running stack (`make test`): a worker killed with
/// SIGKILL is replaced and costs at most the requests it had in flight; a graceful reload (SIGHUP)
/// fails no request at all; a PostgreSQL restart, quiet or under load, fails no request (every
/// thread checks its connection before use, and waits for the database within db_wait_ms); a graceful stop lets a request in flight finish.
///
/// Every loop here is bounded by time and by count, and each test finishes well within 30 s.
final class ProcessModelTests: XCTestCase {

    // MARK: kill -9 of a worker

    func testKillNineOfAWorkerUnderLoadIsSurvived() throws {
        let env = try PMEnvironment()
        let account = try env.newAccount("KillNine")
        let before = try env.stableWorkers()
        XCTAssertGreaterThan(before.count, 0, "the supervisor has no workers")

        let recorder = PMRecorder()
        let load = PMLoad(client: env.load, recorder: recorder, token: account.token)
        load.start(concurrency: 16, duration: 6)

        PMClock.sleep(until: load.startedAt + 1.5)
        let victim = before.sorted()[0]
        let killedAt = PMClock.now
        XCTAssertEqual(kill(victim, SIGKILL), 0, "kill -9 \(victim): errno \(errno)")

        // The supervisor notices (SIGCHLD) and starts a replacement.
        var after = Set<pid_t>()
        var replacedAt: Double? = nil
        while PMClock.now < killedAt + 8 {
            after = PMProcess.children(of: env.supervisor)
            if after.count == before.count && !after.contains(victim) {
                replacedAt = PMClock.now
                break
            }
            usleep(50_000)
        }
        XCTAssertNotNil(replacedAt, "no replacement within 8 s: workers before \(before.sorted()), now \(after.sorted())")
        XCTAssertFalse(after.contains(victim), "the killed worker \(victim) is still a child")
        XCTAssertEqual(after.subtracting(before).count, 1,
                       "expected exactly one new worker pid: before \(before.sorted()), after \(after.sorted())")
        XCTAssertTrue(after.isSuperset(of: before.subtracting([victim])),
                      "the other workers must be untouched: before \(before.sorted()), after \(after.sorted())")

        XCTAssertTrue(load.wait(timeout: 25), "the load did not finish in time")
        let samples = recorder.samples
        let failures = samples.filter { !$0.ok }
        let inFlightAtKill = failures.filter { $0.start <= killedAt && $0.end >= killedAt }
        let soonAfter = failures.filter { $0.start > killedAt && $0.start < killedAt + 1 }
        let late = failures.filter { $0.start >= killedAt + 1 }
        let okAfterKill = samples.filter { $0.ok && $0.start >= killedAt + 1 }.count
        print("""
            [process-model] kill -9 worker \(victim): \(samples.count) requests, \(failures.count) failed \
            (\(inFlightAtKill.count) in flight at the kill, \(soonAfter.count) started within 1 s after it, \
            \(late.count) later); \(okAfterKill) succeeded from 1 s after the kill; \
            replacement after \(replacedAt.map { String(format: "%.2f s", $0 - killedAt) } ?? "-"); \
            workers \(before.sorted()) -> \(after.sorted())
            """)
        XCTAssertGreaterThan(samples.count, 50, "the load ran too few requests to mean anything")
        XCTAssertGreaterThan(okAfterKill, 0, "no request succeeded after the kill")
        XCTAssertEqual(late.count, 0, "requests started >= 1 s after the kill failed: \(PMSample.describe(late))")
        XCTAssertLessThanOrEqual(failures.count, env.threadsPerWorker,
                                 "more failures than one worker has threads: \(PMSample.describe(failures))")

        env.assertWorking(token: account.token)
    }

    // MARK: graceful reload

    func testReloadUnderLoadFailsNoRequest() throws {
        let env = try PMEnvironment()
        let account = try env.newAccount("Reload")
        let before = try env.stableWorkers()
        XCTAssertGreaterThan(before.count, 0, "the supervisor has no workers")

        let recorder = PMRecorder()
        let load = PMLoad(client: env.load, recorder: recorder, token: account.token)
        load.start(concurrency: 16, duration: 7)

        PMClock.sleep(until: load.startedAt + 1.5)
        XCTAssertEqual(kill(env.supervisor, SIGHUP), 0, "SIGHUP to the supervisor: errno \(errno)")
        PMClock.sleep(until: load.startedAt + 4)
        XCTAssertEqual(kill(env.supervisor, SIGHUP), 0, "second SIGHUP to the supervisor: errno \(errno)")

        XCTAssertTrue(load.wait(timeout: 25), "the load did not finish in time")
        let samples = recorder.samples
        let failures = samples.filter { !$0.ok }
        print("[process-model] 2 reloads under load: \(samples.count) requests, \(failures.count) failed")
        XCTAssertGreaterThan(samples.count, 50, "the load ran too few requests to mean anything")
        XCTAssertEqual(failures.count, 0, "a graceful reload must fail no request: \(PMSample.describe(failures))")

        // The old generations drain and exit; the new one has the same size and only new pids.
        var after = Set<pid_t>()
        let deadline = PMClock.now + 10
        while PMClock.now < deadline {
            after = PMProcess.children(of: env.supervisor)
            if after.count == before.count && after.isDisjoint(with: before) { break }
            usleep(100_000)
        }
        print("[process-model] workers before the reloads \(before.sorted()), after \(after.sorted())")
        XCTAssertEqual(after.count, before.count, "worker count after the reloads: \(after.sorted())")
        XCTAssertTrue(after.isDisjoint(with: before),
                      "every worker must be new after a reload: before \(before.sorted()), after \(after.sorted())")
        XCTAssertEqual(kill(env.supervisor, 0), 0, "the supervisor must survive reloads")

        env.assertWorking(token: account.token)
    }

    // MARK: PostgreSQL restart

    func testPostgresRestartIsFollowedByWorkingRequests() throws {
        let env = try PMEnvironment()
        guard let script = env.stack.stackScript, FileManager.default.fileExists(atPath: script) else {
            throw XCTSkip("CHAT_TEST_STACK_SCRIPT is not set: cannot restart PostgreSQL")
        }
        let account = try env.newAccount("PGRestart")
        let other = try env.newAccount("PGRestartOther")
        let dbRequests: [PMRequest] = [
            PMRequest(path: "/chat/ready", query: [:], token: account.token),
            PMRequest(path: "/chat/getUserById", query: ["destId": String(other.userId)], token: account.token),
        ]

        // Warm-up: more concurrent clients than the app has threads, so that every thread of every
        // worker serves database requests and holds a PostgreSQL connection.
        let warm = PMRecorder()
        let warmLoad = PMLoad(client: env.load, recorder: warm, requests: dbRequests)
        warmLoad.start(concurrency: 24, duration: 2)
        XCTAssertTrue(warmLoad.wait(timeout: 20), "the warm-up did not finish in time")
        let warmFailures = warm.samples.filter { !$0.ok }
        XCTAssertEqual(warmFailures.count, 0, "warm-up failures: \(PMSample.describe(warmFailures))")

        // 1. A quiet restart: every connection the threads hold is now dead. The very first
        //    requests afterwards must succeed (each thread checks its connection before use).
        let quiet = try PMProcess.run(script, ["pg-restart"], timeout: 25)
        XCTAssertEqual(quiet.status, 0, "stack.sh pg-restart failed: \(quiet.output)")
        for request in dbRequests {
            let reply = env.load.perform(request)
            XCTAssertEqual(reply.status, 200, "first \(request.path) after the restart: \(reply.text)")
            XCTAssertEqual(reply.code, 1, "first \(request.path) after the restart: \(reply.text)")
        }
        // Then a burst wide enough to reach every thread (each meets its dead connection once).
        let burst = PMRecorder()
        let burstLoad = PMLoad(client: env.load, recorder: burst, requests: dbRequests)
        burstLoad.start(concurrency: 32, duration: 1.5)
        XCTAssertTrue(burstLoad.wait(timeout: 20), "the burst did not finish in time")
        let burstFailures = burst.samples.filter { !$0.ok }
        print("[process-model] quiet pg-restart: \(burst.samples.count) requests after it, \(burstFailures.count) failed")
        XCTAssertEqual(burstFailures.count, 0,
                       "requests after the PostgreSQL restart failed: \(PMSample.describe(burstFailures))")

        // 2. A restart under load loses no request: one that finds the database gone waits for it
        //    (db_wait_ms) and is served, or is run again on a new connection when the connection
        //    broke before anything of it could have been kept.
        let recorder = PMRecorder()
        let load = PMLoad(client: env.load, recorder: recorder, requests: dbRequests)
        load.start(concurrency: 16, duration: 30)  // stopped explicitly below
        PMClock.sleep(until: load.startedAt + 1)
        let restartBegan = PMClock.now
        let busy = try PMProcess.run(script, ["pg-restart"], timeout: 25)
        let restartEnded = PMClock.now
        XCTAssertEqual(busy.status, 0, "stack.sh pg-restart failed: \(busy.output)")
        PMClock.sleep(until: restartEnded + 2.5)
        load.stop()
        XCTAssertTrue(load.wait(timeout: 20), "the load did not finish in time")
        let samples = recorder.samples
        let during = samples.filter { !$0.ok && $0.start < restartEnded }
        let after = samples.filter { $0.start >= restartEnded }
        let afterFailures = after.filter { !$0.ok }
        print(String(format: "[process-model] pg-restart under load (%.2f s): %d requests, %d failed during it; %d after it, %d failed",
                     restartEnded - restartBegan, samples.count, during.count, after.count, afterFailures.count))
        XCTAssertGreaterThan(after.count, 0, "no request ran after the restart")
        XCTAssertEqual(during.count, 0, "requests failed during the PostgreSQL restart: \(PMSample.describe(during))")
        XCTAssertEqual(afterFailures.count, 0,
                       "requests started after the PostgreSQL restart failed: \(PMSample.describe(afterFailures))")

        env.assertWorking(token: account.token)
    }

    // MARK: graceful stop

    /// Stopping the shared stack would break the tests that run after this one, so this starts a
    /// second, private supervisor from the same binary and configuration (its own socket, pid file,
    /// one worker), talks FastCGI to it directly, and stops that one with SIGTERM while an upload
    /// is in the middle of its body.
    func testGracefulStopLetsInFlightRequestsFinish() throws {
        let env = try PMEnvironment()
        guard let binary = env.stack.binary, FileManager.default.isExecutableFile(atPath: binary),
              let configPath = env.stack.configPath, FileManager.default.fileExists(atPath: configPath) else {
            throw XCTSkip("CHAT_TEST_BINARY / CHAT_TEST_CONFIG are not set: cannot start a private supervisor")
        }
        let account = try env.newAccount("GracefulStop")

        let dir = NSTemporaryDirectory() + "pm-\(getpid())-\(Int.random(in: 1000...9999))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socketPath = dir + "/chat.sock"
        let logPath = dir + "/serve.log"

        var environment = ProcessInfo.processInfo.environment
        environment["CHAT_LISTEN"] = socketPath
        environment["CHAT_PID_FILE"] = dir + "/chat-fcgi.pid"
        environment["CHAT_WORKERS"] = "1"
        environment["CHAT_THREADS"] = "2"
        environment["CHAT_SHUTDOWN_TIMEOUT_S"] = "20"
        let process = try PMChild(path: binary, arguments: ["serve", "--config", configPath],
                                  environment: environment, outputPath: logPath)
        let supervisor = process.pid
        defer {
            if process.isRunning {
                for child in PMProcess.children(of: supervisor) { kill(child, SIGKILL) }
                process.killGroup(SIGKILL)
                _ = process.wait(timeout: 5)
            }
        }
        func serveLog() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        // Ready when a trivial request is answered.
        var ready = false
        let readyDeadline = PMClock.now + 15
        while PMClock.now < readyDeadline && process.isRunning {
            if let reply = try? PMFastCGI.request(socketPath: socketPath, path: "/getVersion", method: "GET"),
               reply.status == 200 {
                ready = true
                break
            }
            usleep(100_000)
        }
        guard ready else {
            XCTFail("the private supervisor did not answer within 15 s; log:\n\(serveLog())")
            return
        }
        XCTAssertEqual(PMProcess.children(of: supervisor).count, 1, "one worker expected")

        // An upload whose body arrives in two halves, with the SIGTERM in between.
        let size = 4 << 20
        var body = [UInt8](repeating: 0, count: size)
        body[0] = 0x50; body[1] = 0x4B; body[2] = 0x03; body[3] = 0x04   // "PK\3\4": a zip
        let connection = try PMFastCGI.Connection(socketPath: socketPath)
        try connection.begin(path: "/chat/doUploads", method: "POST", query: "fileExt=zip",
                             contentType: "application/octet-stream", contentLength: size,
                             authorization: "Bearer " + account.token)
        // If the server answers early (say 401) it closes the connection: show that answer.
        func send(_ step: () throws -> Void) throws {
            do { try step() } catch {
                let early = (try? connection.readResponse(timeout: 2)).map { "HTTP \($0.status) \($0.text)" } ?? "no response"
                throw PMFailure(description: "sending the upload failed (\(error)); the server said: \(early)")
            }
        }
        try send { try connection.sendBody(body[0..<(size / 2)]) }
        usleep(300_000)  // the worker is now inside the handler, reading the body
        let stopSent = PMClock.now
        XCTAssertEqual(kill(supervisor, SIGTERM), 0, "SIGTERM: errno \(errno)")
        usleep(1_500_000)
        XCTAssertTrue(process.isRunning, "the supervisor exited while a request was still in flight")
        try send { try connection.sendBody(body[(size / 2)...]) }
        try send { try connection.endBody() }
        let reply = try connection.readResponse(timeout: 15)
        XCTAssertEqual(reply.status, 200, "the upload in flight at SIGTERM: \(reply.text); log:\n\(serveLog())")
        XCTAssertEqual(reply.code, 1, "the upload in flight at SIGTERM: \(reply.text)")
        XCTAssertEqual((reply.dataObject["size"] as? NSNumber)?.intValue, size, reply.text)

        // Then the supervisor finishes its stop promptly and cleanly, removing its socket.
        XCTAssertTrue(process.wait(timeout: 15), "the supervisor did not exit after the request finished; log:\n\(serveLog())")
        if !process.isRunning {
            XCTAssertEqual(process.exitStatus, 0, "exit status; log:\n\(serveLog())")
            print(String(format: "[process-model] graceful stop: upload in flight finished (HTTP %d), supervisor exited %.2f s after SIGTERM",
                         reply.status, PMClock.now - stopSent))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: socketPath), "the socket must be removed on stop")

        // The stored file is test debris: remove it.
        if let url = reply.dataObject["url"] as? String, let uploads = env.stack.uploadsDir,
           let range = url.range(of: "/uploads/") {
            try? FileManager.default.removeItem(atPath: uploads + "/" + url[range.upperBound...])
        }
    }
}

// MARK: - Environment

/// The stack, its supervisor and the clients a process-model test needs.
private struct PMEnvironment {
    let stack: Stack
    let client: StackClient
    let load: PMClient
    let supervisor: pid_t
    let threadsPerWorker: Int

    init() throws {
        stack = try Stack.current()
        guard let pidFile = stack.pidFile else { throw XCTSkip("CHAT_TEST_PIDFILE is not set") }
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else {
            throw XCTSkip("no supervisor pid in \(pidFile)")
        }
        guard kill(pid, 0) == 0 else { throw XCTSkip("the supervisor \(pid) from \(pidFile) is not running") }
        supervisor = pid
        client = StackClient(stack: stack)
        load = PMClient(baseURL: stack.baseURL)
        threadsPerWorker = stack.configValue("threads").flatMap { Int($0) } ?? 8
    }

    /// The supervisor's workers once the set has not changed for a second (a previous test may
    /// have left a reload draining or a replacement starting).
    func stableWorkers(timeout: Double = 10) throws -> Set<pid_t> {
        let deadline = PMClock.now + timeout
        var last = PMProcess.children(of: supervisor)
        var since = PMClock.now
        while PMClock.now < deadline {
            usleep(100_000)
            let current = PMProcess.children(of: supervisor)
            if current != last {
                last = current
                since = PMClock.now
            } else if !current.isEmpty && PMClock.now - since >= 1 {
                return current
            }
        }
        XCTFail("the supervisor's workers did not settle within \(timeout) s: \(last.sorted())")
        return last
    }

    /// A registered, logged-in user; throws (failing the test with a clear message) when that
    /// did not work, instead of letting an empty token turn every later request into a 401.
    func newAccount(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> StackClient.Account {
        let account = client.newAccount(name: name, file: file, line: line)
        guard !account.token.isEmpty, account.userId > 0 else {
            throw PMFailure(description: "could not register and log in a user (\(name)): see the failures above")
        }
        return account
    }

    /// After the disturbance: requests work, a few times each.
    func assertWorking(token: String, file: StaticString = #filePath, line: UInt = #line) {
        for _ in 0..<5 {
            let version = client.get("/getVersion")
            XCTAssertEqual(version.status, 200, version.text, file: file, line: line)
            XCTAssertEqual(version.code, 1, version.text, file: file, line: line)
            let ready = client.get("/chat/ready", headers: ["Authorization": "Bearer " + token])
            XCTAssertEqual(ready.status, 200, ready.text, file: file, line: line)
            XCTAssertEqual(ready.code, 1, ready.text, file: file, line: line)
        }
    }
}

private struct PMFailure: Error, CustomStringConvertible { let description: String }

// MARK: - Load

private enum PMClock {
    /// Monotonic seconds.
    static var now: Double { ProcessInfo.processInfo.systemUptime }

    static func sleep(until time: Double) {
        let remaining = time - now
        if remaining > 0 { usleep(UInt32(min(remaining, 30) * 1_000_000)) }
    }
}

private struct PMRequest {
    let path: String
    let query: [String: String]
    let token: String?
}

private struct PMSample {
    let start: Double
    let end: Double
    let ok: Bool
    let path: String
    let detail: String

    static func describe(_ samples: [PMSample], limit: Int = 8) -> String {
        guard let first = samples.first else { return "none" }
        let shown = samples.prefix(limit).map {
            String(format: "%@ at +%.3f s (%.3f s): %@", $0.path, $0.start - first.start, $0.end - $0.start, $0.detail)
        }
        return "\(samples.count): " + shown.joined(separator: "; ") + (samples.count > limit ? "; …" : "")
    }
}

/// Thread-safe collection of request outcomes.
private final class PMRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [PMSample] = []

    func add(_ sample: PMSample) {
        lock.lock()
        list.append(sample)
        lock.unlock()
    }

    var samples: [PMSample] {
        lock.lock()
        defer { lock.unlock() }
        return list.sorted { $0.start < $1.start }
    }
}

/// An HTTP client for load: its own URLSession with short time-outs, so that no loop can hang.
private final class PMClient: @unchecked Sendable {
    let session: URLSession
    let baseURL: String

    init(baseURL: String) {
        self.baseURL = baseURL
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        configuration.timeoutIntervalForResource = 15
        configuration.httpMaximumConnectionsPerHost = 64
        session = URLSession(configuration: configuration)
    }

    func perform(_ request: PMRequest) -> Reply {
        let query = request.query.isEmpty ? "" : "?" + StackClient.form(request.query)
        var urlRequest = URLRequest(url: URL(string: baseURL + request.path + query)!)
        urlRequest.httpMethod = "GET"
        urlRequest.timeoutInterval = 10
        if let token = request.token { urlRequest.setValue("Bearer " + token, forHTTPHeaderField: "Authorization") }
        let done = DispatchSemaphore(value: 0)
        let box = PMReplyBox()
        let task = session.dataTask(with: urlRequest) { data, response, error in
            let http = response as? HTTPURLResponse
            var headers: [String: String] = [:]
            for (key, value) in http?.allHeaderFields ?? [:] {
                headers[String(describing: key).lowercased()] = String(describing: value)
            }
            box.reply = Reply(status: http?.statusCode ?? 0, headers: headers, body: data ?? Data())
            box.error = error.map { "\($0.localizedDescription)" }
            done.signal()
        }
        task.resume()
        if done.wait(timeout: .now() + 20) == .timedOut {
            task.cancel()
            return Reply(status: 0, headers: [:], body: Data("client time-out".utf8))
        }
        if box.reply.status == 0, let error = box.error {
            return Reply(status: 0, headers: [:], body: Data(error.utf8))
        }
        return box.reply
    }
}

private final class PMReplyBox: @unchecked Sendable {
    var reply = Reply(status: 0, headers: [:], body: Data())
    var error: String? = nil
}

/// `concurrency` threads, each looping over the requests until the duration ends (or `stop()`),
/// at most `maxPerLoop` requests each.
private final class PMLoad: @unchecked Sendable {
    let client: PMClient
    let recorder: PMRecorder
    let requests: [PMRequest]
    let group = DispatchGroup()
    private let lock = NSLock()
    private var stopped = false
    private(set) var startedAt: Double = 0

    init(client: PMClient, recorder: PMRecorder, requests: [PMRequest]) {
        self.client = client
        self.recorder = recorder
        self.requests = requests
    }

    /// The default mix: the trivial /getVersion and an authenticated /chat/ready.
    convenience init(client: PMClient, recorder: PMRecorder, token: String) {
        self.init(client: client, recorder: recorder, requests: [
            PMRequest(path: "/getVersion", query: [:], token: nil),
            PMRequest(path: "/chat/ready", query: [:], token: token),
        ])
    }

    var isStopped: Bool { lock.withLock { stopped } }
    func stop() { lock.withLock { stopped = true } }

    func start(concurrency: Int, duration: Double, maxPerLoop: Int = 20_000) {
        startedAt = PMClock.now
        let deadline = startedAt + duration
        for index in 0..<concurrency {
            group.enter()
            let thread = Thread { [self] in
                var count = 0
                while PMClock.now < deadline && count < maxPerLoop && !isStopped {
                    let request = requests[(index + count) % requests.count]
                    let start = PMClock.now
                    let reply = client.perform(request)
                    let ok = reply.status == 200 && reply.code == 1
                    let detail = ok ? "" : "HTTP \(reply.status) \(reply.text.prefix(160))"
                    recorder.add(PMSample(start: start, end: PMClock.now, ok: ok, path: request.path, detail: detail))
                    count += 1
                }
                group.leave()
            }
            thread.name = "pm-load-\(index)"
            thread.start()
        }
    }

    /// Waits for every loop to end; false on time-out (the loops are then told to stop).
    func wait(timeout: Double) -> Bool {
        let finished = group.wait(timeout: .now() + timeout) == .success
        if !finished { stop() }
        return finished
    }
}

// MARK: - Processes

enum PMProcess {
    /// Live (not zombie) children of `parent`, from /proc/<pid>/stat.
    static func children(of parent: pid_t) -> Set<pid_t> {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var result = Set<pid_t>()
        for entry in entries {
            guard let pid = pid_t(entry), let stat = readSmallFile("/proc/\(entry)/stat"),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After "(comm)": state, ppid, …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, fields[0] != "Z", pid_t(fields[1]) == parent { result.insert(pid) }
        }
        return result
    }

    /// Reads a /proc file (their size is reported as 0, so read until end of file).
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Runs a script with this process's environment; output goes to a temporary file.
    static func run(_ script: String, _ arguments: [String], timeout: Double) throws -> (status: Int32, output: String) {
        let outputPath = NSTemporaryDirectory() + "pm-run-\(getpid())-\(Int.random(in: 0..<1_000_000)).log"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let child = try PMChild(path: "/bin/bash", arguments: [script] + arguments,
                                environment: ProcessInfo.processInfo.environment, outputPath: outputPath)
        let deadline = PMClock.now + timeout
        while child.isRunning && PMClock.now < deadline { usleep(50_000) }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        if child.isRunning {
            child.killGroup(SIGKILL)
            _ = child.wait(timeout: 5)
            return (-1, "timed out after \(timeout) s: " + text)
        }
        return (child.exitStatus ?? -1, text)
    }
}

/// A child process started with posix_spawn in its own process group, reaped with waitpid.
///
/// Not Foundation's `Process`: on Linux it notices an exit only once every descendant has closed a
/// descriptor the child inherited, and the postmaster that `pg_ctl restart` leaves behind (or a
/// worker of a supervisor) keeps it open, so `isRunning` would stay true for ever.
private final class PMChild {
    struct Failure: Error, CustomStringConvertible { let description: String }

    let pid: pid_t
    private var status: Int32? = nil

    init(path: String, arguments: [String], environment: [String: String], outputPath: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw Failure(description: "posix_spawn \(path): error \(rc)") }
        self.pid = pid
    }

    /// True until the child has exited (and been reaped here).
    var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        let rc = waitpid(pid, &raw, WNOHANG)
        if rc == pid || (rc < 0 && errno == ECHILD) {
            status = rc == pid ? raw : -1
            return false
        }
        return true
    }

    /// The exit code (-1 when killed by a signal), once it exited.
    var exitStatus: Int32? {
        guard !isRunning, let raw = status else { return nil }
        return (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : -1
    }

    func wait(timeout: Double) -> Bool {
        let deadline = PMClock.now + timeout
        while isRunning && PMClock.now < deadline { usleep(20_000) }
        return !isRunning
    }

    func signal(_ signal: Int32) { if isRunning { kill(pid, signal) } }

    /// The whole process group (the child and whatever it started that did not move away).
    func killGroup(_ signal: Int32) { kill(-pid, signal) }
}

// MARK: - A minimal FastCGI client (for the private supervisor, which has no nginx in front)

enum PMFastCGI {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static let beginRequest: UInt8 = 1
    static let endRequest: UInt8 = 3
    static let params: UInt8 = 4
    static let stdin: UInt8 = 5
    static let stdout: UInt8 = 6

    /// One whole request without a body.
    static func request(socketPath: String, path: String, method: String) throws -> Reply {
        let connection = try Connection(socketPath: socketPath)
        try connection.begin(path: path, method: method, query: "", contentType: "", contentLength: 0, authorization: nil)
        try connection.endBody()
        return try connection.readResponse(timeout: 5)
    }

    static func record(_ type: UInt8, _ content: ArraySlice<UInt8>) -> [UInt8] {
        precondition(content.count <= 0xFFFF)
        let padding = (8 - content.count % 8) % 8
        var bytes: [UInt8] = [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), UInt8(padding), 0]
        bytes += content
        bytes += [UInt8](repeating: 0, count: padding)
        return bytes
    }

    static func nameValue(_ name: String, _ value: String) -> [UInt8] {
        func length(_ n: Int) -> [UInt8] {
            n < 128 ? [UInt8(n)] : [UInt8((n >> 24) & 0x7F) | 0x80, UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
        }
        let n = Array(name.utf8), v = Array(value.utf8)
        return length(n.count) + length(v.count) + n + v
    }

    final class Connection {
        let fd: Int32

        init(socketPath: String) throws {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let pathBytes = Array(socketPath.utf8)
            guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                close(fd)
                throw Failure(description: "socket path too long")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, b) in pathBytes.enumerated() { raw[i] = b }
                raw[pathBytes.count] = 0
            }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard rc == 0 else {
                let e = errno
                close(fd)
                throw Failure(description: "connect \(socketPath): errno \(e)")
            }
            self.fd = fd
        }

        deinit { close(fd) }

        func send(_ bytes: [UInt8]) throws {
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
                offset += n
            }
        }

        func begin(path: String, method: String, query: String, contentType: String, contentLength: Int,
                   authorization: String?) throws {
            // Role 1 (responder), flags 0: the server closes the connection after the response.
            try send(record(beginRequest, [0, 1, 0, 0, 0, 0, 0, 0]))
            var pairs: [(String, String)] = [
                ("REQUEST_METHOD", method), ("SCRIPT_NAME", path), ("DOCUMENT_URI", path),
                ("REQUEST_URI", query.isEmpty ? path : path + "?" + query), ("QUERY_STRING", query),
                ("CONTENT_TYPE", contentType), ("CONTENT_LENGTH", contentLength > 0 ? String(contentLength) : ""),
                ("SERVER_PROTOCOL", "HTTP/1.1"), ("REMOTE_ADDR", "127.0.0.1"), ("REQUEST_SCHEME", "http"),
                ("HTTP_X_REQUEST_ID", "pm" + String(format: "%016llx", UInt64.random(in: 0...UInt64.max))),
            ]
            if let authorization { pairs.append(("HTTP_AUTHORIZATION", authorization)) }
            let content = pairs.flatMap { nameValue($0.0, $0.1) }
            try send(record(params, content[...]))
            try send(record(params, []))
        }

        func sendBody(_ body: ArraySlice<UInt8>) throws {
            var start = body.startIndex
            while start < body.endIndex {
                let end = min(start + 32_768, body.endIndex)
                try send(record(stdin, body[start..<end]))
                start = end
            }
        }

        func endBody() throws { try send(record(stdin, [])) }

        private func readExactly(_ count: Int, deadline: Double) throws -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            var offset = 0
            while offset < count {
                let remaining = deadline - PMClock.now
                guard remaining > 0 else { throw Failure(description: "FastCGI read time-out") }
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&pfd, 1, Int32(min(remaining, 1) * 1000))
                if ready <= 0 { continue }
                let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
                guard n > 0 else { throw Failure(description: "FastCGI connection closed before the response ended") }
                offset += n
            }
            return bytes
        }

        /// Reads records until END_REQUEST; parses the CGI response (Status header, body).
        func readResponse(timeout: Double) throws -> Reply {
            let deadline = PMClock.now + timeout
            var out: [UInt8] = []
            while true {
                let header = try readExactly(8, deadline: deadline)
                let length = Int(header[4]) << 8 | Int(header[5])
                let padding = Int(header[6])
                let content = length + padding > 0 ? try readExactly(length + padding, deadline: deadline) : []
                if header[1] == stdout { out += content[0..<length] }
                if header[1] == endRequest { break }
            }
            let separator: [UInt8] = [13, 10, 13, 10]
            var split = out.count
            if out.count >= 4 {
                for i in 0...(out.count - 4) where Array(out[i..<(i + 4)]) == separator {
                    split = i
                    break
                }
            }
            let head = String(decoding: out[0..<split], as: UTF8.self)
            let body = split + 4 <= out.count ? Data(out[(split + 4)...]) : Data()
            var headers: [String: String] = [:]
            var status = 200
            for line in head.components(separatedBy: "\r\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                headers[name] = value
                if name == "status", let code = Int(value.prefix(3)) { status = code }
            }
            return Reply(status: status, headers: headers, body: body)
        }
    }
}
