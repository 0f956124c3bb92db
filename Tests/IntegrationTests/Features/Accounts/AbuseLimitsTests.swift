import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// Enumeration and abuse limits (API.md §2 "Limits"): per account and per client address on
/// queryUser, register, findPwd and getValidateNum; the SMS country allow-list and texts; the
/// atomic login throttle; logins racing a password reset.
final class AbuseLimitsTests: StackTestCase {

    // MARK: per account

    func testQueryUserIsLimitedPerCallingUser() {
        let limit = stack.rateLimit("query_user.per_user", default: (60, 3600))
        let alice = client.newAccount(name: "Walker")
        // Distinct numbers, so that only the per-user limit can be reached.
        for index in 0..<limit.count {
            let reply = client.authed("/chat/queryUser", alice.token, ["mobile": StackClient.newMobile()])
            XCTAssertEqual(reply.status, 200, "lookup \(index + 1) of \(limit.count): \(reply.text)")
        }
        assertTooManyRequests(client.authed("/chat/queryUser", alice.token, ["mobile": StackClient.newMobile()]),
                              maxSeconds: limit.seconds, "lookup \(limit.count + 1)")
        // Another user is not affected.
        let bob = client.newAccount(name: "Other")
        assertOK(client.authed("/chat/queryUser", bob.token, ["mobile": alice.mobile]))
    }

    func testQueryUserIsLimitedPerTargetMobile() {
        let limit = stack.rateLimit("query_user.per_mobile", default: (20, 3600))
        let perUser = stack.rateLimit("query_user.per_user", default: (60, 3600))
        let target = client.newAccount(name: "Target")
        let looker = client.newAccount(name: "Looker")
        let second = client.newAccount(name: "Looker2")
        let firstShare = min(limit.count, perUser.count - 1)
        for _ in 0..<firstShare { assertOK(client.authed("/chat/queryUser", looker.token, ["mobile": target.mobile])) }
        for _ in firstShare..<limit.count { assertOK(client.authed("/chat/queryUser", second.token, ["mobile": target.mobile])) }
        // The number has been looked up `limit` times: by anyone, it is refused now.
        assertTooManyRequests(client.authed("/chat/queryUser", second.token, ["mobile": target.mobile]),
                              maxSeconds: limit.seconds)
        let third = client.newAccount(name: "Looker3")
        assertTooManyRequests(client.authed("/chat/queryUser", third.token, ["mobile": target.mobile]),
                              maxSeconds: limit.seconds, "a fresh caller")
        // Other numbers still work for that caller.
        assertOK(client.authed("/chat/queryUser", third.token, ["mobile": looker.mobile]))
    }

    func testRegisterIsLimitedPerMobile() {
        let limit = stack.rateLimit("register.per_mobile", default: (10, 3600))
        let mobile = StackClient.newMobile()
        let password = StackClient.md5Hex("walk-\(mobile)")
        for index in 0..<limit.count {
            // No code was sent: each attempt is 3 (wrong code).
            assertReply(client.register(mobile: mobile, password: password, code: String(100000 + index)), status: 200, code: 3)
        }
        assertTooManyRequests(client.register(mobile: mobile, password: password, code: "123456"), maxSeconds: limit.seconds)
        // Another number is not affected.
        assertReply(client.register(mobile: StackClient.newMobile(), password: password, code: "123456"), status: 200, code: 3)
    }

    func testFindPwdIsLimitedPerMobile() {
        let limit = stack.rateLimit("find_pwd.per_mobile", default: (10, 3600))
        let mobile = StackClient.newMobile()
        let params = ["mobile": mobile, "pwd": StackClient.md5Hex("x"), "validateNum": "123456"]
        for _ in 0..<limit.count { assertReply(client.post("/chat/findPwd", params), status: 200, code: 2) }
        assertTooManyRequests(client.post("/chat/findPwd", params), maxSeconds: limit.seconds,
                              "a number that is not registered cannot be probed without limit")
    }

    // MARK: per address

    /// Each route's per-address limit, reached from a client address of its own; 127.0.0.1
    /// (exempt on the test stack) and other addresses are not affected.
    func testEachRouteIsLimitedPerClientAddress() throws {
        let account = client.newAccount(name: "Addr")
        let routes: [(name: String, path: String, params: () -> [String: String], token: String?, expectedCode: Int)] = [
            ("get_validate_num.per_address", "/chat/getValidateNum", { ["mobile": StackClient.newMobile()] }, nil, 1),
            ("register.per_address", "/chat/register", {
                ["mobile": StackClient.newMobile(), "pwd": StackClient.md5Hex("p"), "name": "n", "validateNum": "123456"]
            }, nil, 3),
            ("find_pwd.per_address", "/chat/findPwd", {
                ["mobile": StackClient.newMobile(), "pwd": StackClient.md5Hex("p"), "validateNum": "123456"]
            }, nil, 2),
            ("query_user.per_address", "/chat/queryUser", { ["mobile": StackClient.newMobile()] }, account.token, 1),
        ]
        for route in routes {
            let limit = stack.rateLimit(route.name, default: (50, 3600))
            guard limit.count <= 100 else {
                XCTFail("\(route.name) is \(limit.count) on this stack: too many requests for a test")
                continue
            }
            let address = LoopbackAddresses.fresh()
            for index in 0..<limit.count {
                let reply = client.post(from: address, route.path, route.params(), token: route.token)
                guard reply.status != 0 else { throw XCTSkip("cannot connect from \(address)") }
                assertReply(reply, status: 200, code: route.expectedCode, "\(route.path) \(index + 1) from \(address)")
            }
            assertTooManyRequests(client.post(from: address, route.path, route.params(), token: route.token),
                                  maxSeconds: limit.seconds, "\(route.path) from \(address)")
            // Another address, and the exempt test client, are not affected.
            assertReply(client.post(from: LoopbackAddresses.fresh(), route.path, route.params(), token: route.token),
                        status: 200, code: route.expectedCode, "\(route.path) from a fresh address")
            let local = route.token.map { client.authed(route.path, $0, route.params()) } ?? client.post(route.path, route.params())
            assertReply(local, status: 200, code: route.expectedCode, "\(route.path) from 127.0.0.1")
        }
    }

    // MARK: SMS

    func testCodesAreSentOnlyToAllowedCountryCodes() {
        let mobile = "+1415" + String(format: "%07d", Int.random(in: 0..<10_000_000))
        let reply = client.post("/chat/getValidateNum", ["mobile": mobile])
        assertReply(reply, status: 400, code: -1, infoContains: "mobile")
        XCTAssertNil(client.latestCode(for: mobile), "nothing is sent to a number outside the allow-list")
        // The allowed prefix of the fixtures works.
        assertOK(client.post("/chat/getValidateNum", ["mobile": StackClient.newMobile()]))
    }

    func latestText(for mobile: String) -> String? {
        for line in readWholeFile(stack.smsOutbox).split(separator: "\n").reversed() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if object["mobile"] as? String == mobile { return object["text"] as? String }
        }
        return nil
    }

    func testTheTextSaysWhatTheCodeIsFor() {
        let fresh = StackClient.newMobile()
        let code = client.requestCode(for: fresh)
        let text = latestText(for: fresh) ?? ""
        XCTAssertTrue(text.contains(code) && text.contains("register"), "a new number's code is for registering: \(text)")
        for (purpose, words) in [("findPwd", "reset your password"), ("updateAuth", "real-name"), ("setPayPwd", "payment password")] {
            let mobile = StackClient.newMobile()
            assertOK(client.post("/chat/getValidateNum", ["mobile": mobile, "purpose": purpose]))
            let text = latestText(for: mobile) ?? ""
            XCTAssertTrue(text.contains(words), "\(purpose): \(text)")
        }
        assertReply(client.post("/chat/getValidateNum", ["mobile": StackClient.newMobile(), "purpose": "nonsense"]),
                    status: 400, code: -1, infoContains: "purpose")
    }

    /// The per-number interval is configurable (the test stack's is a few seconds): the second
    /// request within it is 429 with a Retry-After within the interval; after it, a new code goes.
    func testTheCodeIntervalIsTheConfiguredOne() {
        let interval = stack.smsIntervalSeconds
        let mobile = StackClient.newMobile()
        let first = client.requestCode(for: mobile)
        assertTooManyRequests(client.post("/chat/getValidateNum", ["mobile": mobile]), maxSeconds: interval)
        guard interval <= 15 else { return }  // a production-like interval: no waiting it out here
        Thread.sleep(forTimeInterval: Double(interval) + 0.5)
        assertOK(client.post("/chat/getValidateNum", ["mobile": mobile]))
        let second = client.latestCode(for: mobile)
        XCTAssertNotNil(second)
        // The new code replaced the old one.
        if second != first {
            assertReply(client.register(mobile: mobile, password: StackClient.md5Hex("i"), code: first), status: 200, code: 3)
        }
        assertOK(client.register(mobile: mobile, password: StackClient.md5Hex("i"), code: second ?? ""))
    }

    // MARK: login

    func testSixteenSimultaneousWrongPasswordsCountFive() throws {
        let account = client.newAccount(name: "Throttle")
        let wrong = StackClient.md5Hex("wrong-\(account.mobile)")
        let replies = raceThreads(16) { _ in self.client.login(mobile: account.mobile, password: wrong, device: 3) }
        let counted = replies.filter { $0.status == 200 && $0.code == 3 }.count
        let refused = replies.filter { $0.status == 429 && $0.code == -1 }.count
        XCTAssertEqual(counted, 5, replies.map { "\($0.status)/\($0.code ?? 0)" }.joined(separator: ","))
        XCTAssertEqual(refused, 11)
        let recorded = try StackDB.int(stack, "SELECT count(*) FROM login_failures WHERE mobile = '\(account.mobile)'")
        XCTAssertEqual(recorded, 5, "exactly five wrong passwords are recorded")
        // Now even the right password waits.
        assertTooManyRequests(client.login(mobile: account.mobile, password: account.password), maxSeconds: 15 * 60)
    }

    /// Logins with the old password racing findPwd: whatever session they got, none is valid once
    /// the reset is done.
    func testNoSessionOfTheOldPasswordOutlivesAReset() throws {
        let account = client.newAccount(name: "Racer")
        Thread.sleep(forTimeInterval: Double(stack.smsIntervalSeconds) + 1)
        let code = client.requestCode(for: account.mobile)
        let newPassword = StackClient.md5Hex("reset-\(account.mobile)")
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var tokens: [String] = []
            var resetDone = false
            var afterReset = 0
        }
        let box = Box()
        let threads = 6
        let results = raceThreads(threads + 1) { index -> Reply? in
            if index == threads {
                Thread.sleep(forTimeInterval: 0.5)
                let started = Date()
                let reply = self.client.post("/chat/findPwd", ["mobile": account.mobile, "pwd": newPassword, "validateNum": code])
                box.lock.lock(); box.resetDone = true; box.lock.unlock()
                print("[abuse] findPwd took \(Date().timeIntervalSince(started)) s during the logins")
                return reply
            }
            // Each thread logs in with the old password until a few tries after the reset.
            var tries = 0
            while tries < 200 {
                tries += 1
                box.lock.lock()
                let done = box.resetDone
                if done { box.afterReset += 1 }
                let stop = box.afterReset > threads * 3
                box.lock.unlock()
                if stop { break }
                let reply = self.client.login(mobile: account.mobile, password: account.password, device: index % 3 + 1)
                if reply.code == 1, let token = reply.dataObject["token"] as? String {
                    box.lock.lock(); box.tokens.append(token); box.lock.unlock()
                }
            }
            return nil
        }
        let reset = results[threads]
        XCTAssertNotNil(reset)
        if let reset { assertOK(reset, "findPwd") }
        XCTAssertFalse(box.tokens.isEmpty, "some logins with the old password succeeded before the reset")
        print("[abuse] \(box.tokens.count) sessions made with the old password")
        var alive = 0
        for token in box.tokens where client.get("/chat/ready", ["token": token]).status != 401 { alive += 1 }
        XCTAssertEqual(alive, 0, "\(alive) of \(box.tokens.count) sessions made with the old password are still valid")
        let stored = try StackDB.int(stack, "SELECT count(*) FROM sessions WHERE user_id = \(account.userId)")
        XCTAssertEqual(stored, 0, "no session is left from before the reset")
        // The old password's tries after the reset were wrong passwords: forget them, then log in.
        try StackDB.query(stack, "DELETE FROM login_failures WHERE mobile = '\(account.mobile)'")
        assertOK(client.login(mobile: account.mobile, password: newPassword), "the new password works")
    }
}

/// A verification code whose delivery fails: the stack is switched to `sms_sender = command` with a
/// command that always fails (by editing its configuration and a graceful reload), and back.
final class SMSDeliveryFailureTests: StackTestCase {

    func supervisor() throws -> pid_t {
        guard let pidFile = stack.pidFile, let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0 else {
            throw XCTSkip("no running supervisor (CHAT_TEST_PIDFILE)")
        }
        return pid
    }

    /// Reloads and waits until fresh numbers get `status` from getValidateNum (the new workers
    /// answer), then a moment more for the old ones to stop taking requests.
    func reload(_ pid: pid_t, untilStatus status: Int) -> Bool {
        guard kill(pid, SIGHUP) == 0 else { return false }
        let deadline = Date().addingTimeInterval(40)
        var seen = 0
        while Date() < deadline {
            seen = client.post("/chat/getValidateNum", ["mobile": StackClient.newMobile()]).status == status ? seen + 1 : 0
            if seen >= 3 {
                Thread.sleep(forTimeInterval: 1.5)
                return true
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return false
    }

    func testAFailedDeliveryCountsNothingAndIs503() throws {
        guard let path = stack.configPath, !path.isEmpty else { throw XCTSkip("CHAT_TEST_CONFIG is not set") }
        let pid = try supervisor()
        let original = readWholeFile(path)
        let failing = FileManager.default.isExecutableFile(atPath: "/bin/false") ? "/bin/false" : "/usr/bin/false"
        try (original + "\n# SMSDeliveryFailureTests (restored at its end)\nsms_sender = command\nsms_command = \(failing)\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        var restored = false
        defer {
            if !restored {
                try? original.write(toFile: path, atomically: true, encoding: .utf8)
                _ = reload(pid, untilStatus: 200)
            }
        }
        XCTAssertTrue(reload(pid, untilStatus: 503), "the reloaded workers did not start failing deliveries")

        let mobile = StackClient.newMobile()
        let failed = client.post("/chat/getValidateNum", ["mobile": mobile])
        XCTAssertEqual(failed.status, 503, failed.text)
        assertIsEnvelope(failed)
        XCTAssertGreaterThan(Int(failed.header("Retry-After") ?? "") ?? 0, 0, "Retry-After on 503")
        let quoted = "'\(mobile)'"
        XCTAssertEqual(try StackDB.int(stack, "SELECT count(*) FROM sms_codes WHERE mobile = \(quoted)"), 0, "no code stays")
        XCTAssertEqual(try StackDB.int(stack, "SELECT count(*) FROM sms_sends WHERE mobile = \(quoted)"), 0, "no send counts")

        try original.write(toFile: path, atomically: true, encoding: .utf8)
        restored = true
        XCTAssertTrue(reload(pid, untilStatus: 200), "the workers did not come back to the outbox")
        // The failed attempt did not use up the number's interval: a code goes at once.
        assertOK(client.post("/chat/getValidateNum", ["mobile": mobile]))
        XCTAssertNotNil(client.latestCode(for: mobile))
    }
}
