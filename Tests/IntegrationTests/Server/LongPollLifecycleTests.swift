import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// What happens to parked long-polls (/chat/sync) around the process model: a reload answers every
/// parked request at once (clients reconnect to the new workers, which wake them as before), and a
/// client that goes away releases its parked request (nothing leaks in the workers).
final class LongPollLifecycleTests: StackTestCase {

    func supervisorPid() throws -> pid_t {
        guard let pidFile = stack.pidFile,
              let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0 else {
            throw XCTSkip("no running supervisor (CHAT_TEST_PIDFILE)")
        }
        return pid
    }

    /// The supervisor's live worker processes.
    static func workers(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && fields[0] != "Z" && pid_t(fields[1]) == parent ? pid : nil
        }
    }

    static func openDescriptors(_ pids: [pid_t]) -> Int {
        pids.reduce(0) { $0 + ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\($1)/fd"))?.count ?? 0) }
    }

    /// Waits until the supervisor has `count` workers that have not changed for a second.
    func settledWorkers(_ supervisor: pid_t, timeout: Double = 15) -> [pid_t] {
        let deadline = Date().addingTimeInterval(timeout)
        var last = Self.workers(of: supervisor).sorted()
        var since = Date()
        while Date() < deadline {
            usleep(200_000)
            let now = Self.workers(of: supervisor).sorted()
            if now != last { last = now; since = Date() } else if Date().timeIntervalSince(since) > 1 { return now }
        }
        return last
    }

    /// The long-polls parked in every worker of the host, from the status page (whose slots are
    /// refreshed twice a second).
    func parkedLongPolls() -> Int64 {
        let total = client.get("/_status").dataObject["total"] as? [String: Any] ?? [:]
        return int64(total["parked_long_polls"]) ?? 0
    }

    func testReloadAnswersEveryParkedSyncAndDeliveryContinues() throws {
        let supervisor = try supervisorPid()
        let sender = client.newAccount(name: "Sender")
        let receiver = client.newAccount(name: "Receiver")
        client.msgMakeFriends(sender, receiver)
        let start = client.msgSync(receiver, since: 0, timeout: 0)
        let since = start.next ?? 0

        // Park 20 syncs (of four users: each worker keeps at most max_parked_per_user of one
        // user), then reload.
        let watchers = [receiver] + (0..<3).map { client.newAccount(name: "Watcher\($0)") }
        let sinces = watchers.map { client.msgSync($0, since: 0, timeout: 0).next ?? 0 }
        let parked = (0..<20).map { client.msgSyncInBackground(watchers[$0 % 4], since: sinces[$0 % 4], timeout: 25) }
        XCTAssertTrue(StackProcesses.eventually(within: 10) { self.parkedLongPolls() >= 20 }, "the 20 syncs never parked")
        XCTAssertEqual(kill(supervisor, SIGHUP), 0)
        let reloadedAt = DispatchTime.now().uptimeNanoseconds
        for (index, sync) in parked.enumerated() {
            guard let page = sync.wait(seconds: 15) else { XCTFail("parked sync \(index) was not answered"); continue }
            XCTAssertEqual(page.reply.status, 200, "sync \(index): \(page.reply.text)")
            XCTAssertEqual(page.reply.code, 1, "sync \(index): \(page.reply.text)")
            XCTAssertEqual(page.events.count, 0, "nothing was sent yet")
            XCTAssertEqual(page.next, sinces[index % 4], "the cursor stays where it was")
            // Answered because of the reload, long before the 25 s time-out.
            XCTAssertLessThan(Double(sync.answeredAt &- reloadedAt) / 1e9, 10, "sync \(index) waited for its time-out")
        }
        _ = settledWorkers(supervisor)

        // The new workers park and wake as before.
        let parkedBefore = parkedLongPolls()
        let again = client.msgSyncInBackground(receiver, since: since, timeout: 20)
        XCTAssertTrue(StackProcesses.eventually(within: 10) { self.parkedLongPolls() > parkedBefore }, "the sync never parked")
        let sent = client.msgSend(sender, to: receiver.userId, content: "after the reload")
        XCTAssertNotNil(sent, "the message after the reload was not stored")
        guard let page = again.wait(seconds: 10) else { return XCTFail("the sync after the reload was not woken") }
        XCTAssertEqual(page.events.filter { $0.type == "message" }.count, 1, page.reply.text)
        XCTAssertLessThan(again.elapsed, 5, "woken by the message, not by the time-out")
    }

    func testClientsThatGoAwayReleaseTheirParkedRequests() throws {
        let supervisor = try supervisorPid()
        // 25 users with 4 syncs each: within max_parked_per_user however the workers share them.
        let accounts = (0..<25).map { client.newAccount(name: "Leaver\($0)") }
        let sinces = accounts.map { client.msgSync($0, since: 0, timeout: 0).next ?? 0 }
        let workers = settledWorkers(supervisor)
        let baseline = Self.openDescriptors(workers)
        guard let url = URL(string: stack.baseURL), let host = url.host, let port = url.port else {
            return XCTFail("cannot read the base URL \(stack.baseURL)")
        }

        // 100 clients park a sync over plain sockets… (the workers' other descriptors, kept-alive
        // nginx connections and database connections, come and go by a few: the margins allow that)
        let count = 100
        var sockets: [Int32] = []
        for index in 0..<count {
            let account = accounts[index % accounts.count], since = sinces[index % accounts.count]
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, host, &address.sin_addr)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            XCTAssertEqual(connected, 0, "connect: errno \(errno)")
            let request = "GET /chat/sync?since=\(since)&timeout=25 HTTP/1.1\r\nHost: \(host)\r\nAuthorization: Bearer \(account.token)\r\n\r\n"
            _ = request.withCString { write(fd, $0, strlen($0)) }
            sockets.append(fd)
        }
        // … and the workers hold one nginx connection for each.
        var parkedPeak = 0
        for _ in 0..<30 {
            usleep(100_000)
            parkedPeak = max(parkedPeak, Self.openDescriptors(workers) - baseline)
            if parkedPeak >= count { break }
        }
        XCTAssertGreaterThanOrEqual(parkedPeak, count * 3 / 4, "the parked syncs should hold connections in the workers")

        // The clients go away: nginx closes its upstream connections and the workers let go.
        for fd in sockets { close(fd) }
        var remaining = Int.max
        for _ in 0..<50 {
            usleep(100_000)
            remaining = Self.openDescriptors(workers) - baseline
            if remaining <= 12 { break }
        }
        XCTAssertLessThanOrEqual(remaining, 12, "parked requests of departed clients were not released")
        print("[long-poll] \(count) parked: +\(parkedPeak) descriptors in the workers; after the clients left: \(remaining >= 0 ? "+" : "")\(remaining)")

        // The accounts still sync normally.
        let after = client.msgSync(accounts[0], since: sinces[0], timeout: 0)
        XCTAssertEqual(after.reply.code, 1, after.reply.text)
    }
}
