import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// Long-polls are bounded per user (max_parked_per_user in each worker: a new one answers the
/// oldest at once), and a parked one whose session ended is answered 401, not with the news.
final class LongPollLimitsTests: StackTestCase {
    func testAUserHoldsABoundedNumberOfParkedSyncs() throws {
        let workers = try StackProcesses.workers(stack).count
        let perUser = Int(stack.configValue("max_parked_per_user") ?? "") ?? 8
        let user = client.newAccount(name: "ManySyncs")
        let waker = client.newAccount(name: "ManySyncsWaker")
        let cursor = client.msgDrain(user).next
        let bound = perUser * workers
        let total = bound + 6
        var pending: [MsgPendingSync] = []
        for _ in 0..<total {
            pending.append(client.msgSyncInBackground(user, since: cursor, timeout: 25))
            usleep(40_000)
        }
        func answered() -> [MsgSyncPage] { pending.compactMap { $0.wait(seconds: 0) } }
        XCTAssertTrue(StackProcesses.eventually(within: 5) { answered().count >= total - bound },
                      "\(answered().count) of \(total) parked syncs answered early; at most \(bound) may stay parked")
        for page in answered() {
            assertOK(page.reply)
            XCTAssertEqual(page.events.count, 0, "an early answer has nothing new: \(page.reply.text)")
        }
        print("[long-poll] \(total) syncs of one user on \(workers) workers: \(answered().count) answered early")

        // The rest are still parked, and all answer with the next event.
        XCTAssertEqual(client.requestFriend(waker, user.userId).status, 200)
        for (index, request) in pending.enumerated() {
            XCTAssertNotNil(request.wait(seconds: 10), "sync \(index) never answered after the wake")
        }
    }

    func testAParkedSyncWhoseSessionEndedGets401() throws {
        let user = client.newAccount(name: "EndedSession")
        let waker = client.newAccount(name: "EndedSessionWaker")
        let cursor = client.msgDrain(user).next
        let pending = client.msgSyncInBackground(user, since: cursor, timeout: 20)
        usleep(600_000) // parked by now
        // A new login on the same kind of device ends the session the parked request came with.
        let again = client.login(mobile: user.mobile, password: user.password, device: 1)
        XCTAssertEqual(again.code, 1, again.text)
        XCTAssertEqual(client.requestFriend(waker, user.userId).status, 200)
        guard let page = pending.wait(seconds: 10) else { return XCTFail("the parked sync never answered") }
        assertReply(page.reply, status: 401, code: -1)
    }

    /// nginx lets one client address hold at most 40 open syncs (where its per-address limits
    /// apply: HTTPS, and production); the 41st gets 429 at once.
    func testOneAddressHoldsAtMostFortyOpenSyncs() throws {
        let env = ProcessInfo.processInfo.environment
        guard let https = stack.httpsURL, !https.isEmpty, let cert = env["CHAT_TEST_TLS_CERT"],
              FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") else {
            throw XCTSkip("needs the stack's HTTPS port, its certificate and curl")
        }
        // Ten users with four syncs each: well within max_parked_per_user in any worker.
        let users = (0..<10).map { client.newAccount(name: "Address\($0)") }
        let cursors = users.map { client.msgDrain($0).next }
        func sync(_ index: Int, timeout: Int) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", cert, "--max-time", "20",
                                 "-H", "Authorization: Bearer \(users[index % 10].token)",
                                 https + "/chat/sync?since=\(cursors[index % 10])&timeout=\(timeout)"]
            process.standardOutput = Pipe()
            try process.run()
            return process
        }
        func status(_ process: Process) -> String {
            process.waitUntilExit()
            let pipe = process.standardOutput as! Pipe
            return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        let open = try (0..<40).map { try sync($0, timeout: 4) }
        usleep(1_500_000)
        let extra = try sync(0, timeout: 4)
        let started = Date()
        XCTAssertEqual(status(extra), "429", "the 41st open sync of one address")
        XCTAssertLessThan(Date().timeIntervalSince(started), 2, "the 41st was refused at once")
        XCTAssertEqual(Set(open.map(status)), ["200"], "the first 40 waited and were answered")
        XCTAssertEqual(status(try sync(1, timeout: 0)), "200", "a sync once they are done")
    }
}
