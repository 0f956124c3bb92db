import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// API.md §1 and §2 over HTTP: verification codes, registration, login, sessions, the profile
/// endpoints, real-name verification, user lookup. The tests that need a second code for an
/// existing number (findPwd, updateAuth) are in `VerificationCodeFlowTests` below, which runs last.
final class AccountsFlowTests: StackTestCase {

    override func setUpWithError() throws {
        try super.setUpWithError()
        EarlyAccounts.warmUp(client)
    }

    // MARK: getValidateNum

    func testGetValidateNumSendsASixDigitCodeAndAllowsOneAMinute() {
        let mobile = StackClient.newMobile()
        let first = client.post("/chat/getValidateNum", ["mobile": mobile])
        assertOK(first)
        XCTAssertTrue(first.data is NSNull, "data must be null: \(first.text)")
        let code = client.latestCode(for: mobile) ?? ""
        XCTAssertNotNil(code.range(of: "^[0-9]{6}$", options: .regularExpression), "code in the outbox: '\(code)'")
        XCTAssertFalse(first.text.contains(code), "the code must not be in the response")

        // A second request within the minute: 429, in the envelope, and no new code is sent.
        let second = client.post("/chat/getValidateNum", ["mobile": mobile])
        assertReply(second, status: 429, code: -1)
        XCTAssertEqual(client.latestCode(for: mobile), code, "a refused request must not send (or replace) a code")
        XCTAssertFalse(second.text.contains(code))

        // The limit is per number: another number is not affected.
        assertOK(client.get("/chat/getValidateNum", ["mobile": StackClient.newMobile()]))
    }

    func testConcurrentCodeRequestsForOneNumberSendExactlyOne() {
        let mobile = StackClient.newMobile()
        let replies = concurrently(8) { _ in self.client.post("/chat/getValidateNum", ["mobile": mobile]) }
        XCTAssertEqual(replies.filter { $0.status == 200 && $0.code == 1 }.count, 1, replies.map(\.text).joined(separator: "\n"))
        XCTAssertEqual(replies.filter { $0.status == 429 && $0.code == -1 }.count, 7, replies.map { "\($0.status)" }.joined(separator: ","))
        let outbox = readWholeFile(stack.smsOutbox)
        let lines = outbox.split(separator: "\n").filter { $0.contains("\"\(mobile)\"") }
        XCTAssertEqual(lines.count, 1, "exactly one message in the outbox for \(mobile)")
    }

    // MARK: register

    func testRegisterReturnsTheNewIdInInfoAndData() {
        let mobile = StackClient.newMobile()
        let password = StackClient.md5Hex("register-\(mobile)")
        let code = client.requestCode(for: mobile)
        let reply = client.register(mobile: mobile, password: password, name: "Alice", code: code)
        assertOK(reply)
        let userId = int64(reply.dataObject["userId"])
        XCTAssertNotNil(userId, "data.userId: \(reply.text)")
        XCTAssertGreaterThan(userId ?? 0, 0)
        XCTAssertEqual(reply.info, userId.map(String.init), "info must be the new id as a string")
        XCTAssertFalse(reply.text.contains(password), "the password must not be echoed")
        XCTAssertFalse(reply.text.contains(code), "the code must not be echoed")

        // The same number again: 2 (already registered), whatever the code.
        let again = client.register(mobile: mobile, password: password, name: "Alice", code: code)
        assertReply(again, status: 200, code: 2)

        // The account works.
        let login = client.login(mobile: mobile, password: password)
        assertOK(login)
        XCTAssertEqual(int64(login.dataObject["userId"]), userId)
    }

    func testRegisterWithAWrongCodeIsThreeAndACodeIsSingleUse() {
        let mobile = StackClient.newMobile()
        let password = StackClient.md5Hex("single-\(mobile)")
        let code = client.requestCode(for: mobile)
        let wrong = code == "000000" ? "111111" : "000000"
        assertReply(client.register(mobile: mobile, password: password, code: wrong), status: 200, code: 3)
        // The user was not created.
        assertReply(client.login(mobile: mobile, password: password), status: 200, code: 2)
        // One wrong attempt does not burn the code.
        assertOK(client.register(mobile: mobile, password: password, code: code))

        // The code was consumed: it cannot reset the password afterwards.
        let reuse = client.post("/chat/findPwd", ["mobile": mobile, "pwd": StackClient.md5Hex("other"), "validateNum": code])
        assertReply(reuse, status: 200, code: 3)
        assertOK(client.login(mobile: mobile, password: password))
    }

    func testConcurrentRegistrationsWithOneCodeCreateOneUser() {
        let mobile = StackClient.newMobile()
        let code = client.requestCode(for: mobile)
        let replies = concurrently(6) { index in
            self.client.register(mobile: mobile, password: StackClient.md5Hex("race-\(index)"), name: "Race\(index)", code: code)
        }
        let winners = replies.filter { $0.status == 200 && $0.code == 1 }
        XCTAssertEqual(winners.count, 1, replies.map(\.text).joined(separator: "\n"))
        for reply in replies where reply.code != 1 {
            XCTAssertEqual(reply.status, 200, reply.text)
            XCTAssertTrue([2, 3].contains(reply.code ?? 0), "a losing registration is 2 or 3: \(reply.text)")
        }
        // Exactly one of the passwords works.
        let working = (0..<6).filter {
            client.login(mobile: mobile, password: StackClient.md5Hex("race-\($0)"), device: 3).code == 1
        }
        XCTAssertEqual(working.count, 1)
    }

    func testFiveWrongAttemptsExhaustACode() {
        let mobile = StackClient.newMobile()
        let password = StackClient.md5Hex("exhaust-\(mobile)")
        let code = client.requestCode(for: mobile)
        var wrongs: [String] = []
        var candidate = 100000
        while wrongs.count < 5 {
            if String(candidate) != code { wrongs.append(String(candidate)) }
            candidate += 1
        }
        for wrong in wrongs {
            assertReply(client.register(mobile: mobile, password: password, code: wrong), status: 200, code: 3)
        }
        // The right code no longer works after five wrong attempts.
        assertReply(client.register(mobile: mobile, password: password, code: code), status: 200, code: 3,
                    "the code must be dead after 5 wrong attempts")
        assertReply(client.login(mobile: mobile, password: password), status: 200, code: 2)
    }

    // MARK: doLogin

    func testLoginOutcomes() {
        let user = client.registerOnly(name: "Bob")
        // Unknown number: 2.
        assertReply(client.login(mobile: StackClient.newMobile(), password: user.password), status: 200, code: 2)
        // Wrong password: 3.
        let wrong = client.login(mobile: user.mobile, password: StackClient.md5Hex("wrong"))
        assertReply(wrong, status: 200, code: 3)
        XCTAssertTrue(wrong.data is NSNull || wrong.data == nil, "no data on a failed login: \(wrong.text)")

        let login = client.login(mobile: user.mobile, password: user.password, device: 2)
        assertOK(login)
        let token = login.dataObject["token"] as? String ?? ""
        XCTAssertGreaterThanOrEqual(token.count, 43, "a 256-bit token: '\(token)'")
        XCTAssertEqual(int64(login.dataObject["userId"]), user.userId)
        let profile = login.dataObject["user"] as? [String: Any] ?? [:]
        XCTAssertEqual(int64(profile["userId"]), user.userId)
        XCTAssertEqual(profile["mobile"] as? String, user.mobile, "your own profile shows your full number")
        XCTAssertEqual(profile["name"] as? String, "Bob")
        for key in ["userId", "mobile", "name", "nickName", "headUrl", "sex", "sign", "province", "city", "isAuth"] {
            XCTAssertNotNil(profile[key], "Profile lacks \(key): \(login.text)")
        }
        XCTAssertFalse(login.text.contains(user.password), "the password must not be echoed")
    }

    func testFiveWrongPasswordsLockTheNumberEvenForTheRightPassword() {
        let user = client.registerOnly()
        for attempt in 1...5 {
            assertReply(client.login(mobile: user.mobile, password: StackClient.md5Hex("wrong\(attempt)")),
                        status: 200, code: 3, "attempt \(attempt)")
        }
        let locked = client.login(mobile: user.mobile, password: user.password)
        assertReply(locked, status: 429, code: -1)
        XCTAssertNil((locked.dataObject["token"]), "no token while locked")
        XCTAssertFalse(locked.text.contains(user.password))
    }

    func testLoginWithoutDeviceIsAnAndroidLogin() {
        let user = client.registerOnly()
        let first = client.post("/chat/doLogin", ["mobile": user.mobile, "pwd": user.password])
        assertOK(first)
        let ios = client.login(mobile: user.mobile, password: user.password, device: 2)
        assertOK(ios)
        assertOK(client.get("/chat/ready", ["token": first.dataObject["token"] as? String ?? ""]))
        assertOK(client.login(mobile: user.mobile, password: user.password, device: 1))
        assertReply(client.get("/chat/ready", ["token": first.dataObject["token"] as? String ?? ""]), status: 401, code: -1,
                    "device defaults to 1 (Android)")
        assertOK(client.get("/chat/ready", ["token": ios.dataObject["token"] as? String ?? ""]))
    }

    // MARK: sessions

    func testTokenAsParameterOrBearerHeaderAndMissingOrUnknownToken() {
        let account = client.newAccount()
        assertOK(client.get("/chat/ready", ["token": account.token]))
        assertOK(client.post("/chat/ready", ["token": account.token]))
        assertOK(client.get("/chat/ready", headers: ["Authorization": "Bearer \(account.token)"]))

        assertReply(client.get("/chat/ready"), status: 401, code: -1)
        assertReply(client.get("/chat/ready", ["token": ""]), status: 401, code: -1)
        assertReply(client.get("/chat/ready", ["token": String(repeating: "a", count: 64)]), status: 401, code: -1)
        assertReply(client.get("/chat/ready", headers: ["Authorization": "Bearer " + String(account.token.reversed())]),
                    status: 401, code: -1)
        assertReply(client.get("/chat/ready", headers: ["Authorization": "Basic \(account.token)"]), status: 401, code: -1)
    }

    func testASecondLoginOnTheSameDeviceKindEndsTheFirstOnly() {
        let user = client.registerOnly()
        func login(_ device: Int) -> String {
            let reply = client.login(mobile: user.mobile, password: user.password, device: device)
            assertOK(reply, "login on device \(device)")
            return reply.dataObject["token"] as? String ?? ""
        }
        let android1 = login(1)
        let ios = login(2)
        let pc = login(3)
        assertOK(client.get("/chat/ready", ["token": android1]))
        let android2 = login(1)
        XCTAssertNotEqual(android1, android2)
        assertReply(client.get("/chat/ready", ["token": android1]), status: 401, code: -1,
                    "the first Android session must end when a second Android login happens")
        assertOK(client.get("/chat/ready", ["token": android2]))
        assertOK(client.get("/chat/ready", ["token": ios]), "an iOS session survives an Android login")
        assertOK(client.get("/chat/ready", ["token": pc]), "a PC session survives an Android login")
    }

    func testAUserIdParameterThatDiffersFromTheSessionIsRefused() {
        let account = client.newAccount()
        let other = account.userId + 1
        assertReply(client.get("/chat/ready", ["token": account.token, "userId": String(other)]), status: 403, code: -1)
        assertReply(client.post("/chat/updateProfile", ["token": account.token, "userId": String(other), "city": "X"]),
                    status: 403, code: -1)
        assertReply(client.authed("/chat/getUserById", account.token, ["userId": "abc", "destId": String(account.userId)]),
                    status: 403, code: -1)
        // Nothing changed through the refused call.
        let ready = client.get("/chat/ready", ["token": account.token])
        XCTAssertEqual((ready.dataObject["user"] as? [String: Any])?["city"] as? String, "")
        // The session's own id is accepted.
        assertOK(client.get("/chat/ready", ["token": account.token, "userId": String(account.userId)]))
    }

    // MARK: ready

    func testReadyForANewUser() {
        let account = client.newAccount(name: "Carol")
        let ready = client.get("/chat/ready", ["token": account.token])
        assertOK(ready)
        let data = ready.dataObject
        let user = data["user"] as? [String: Any] ?? [:]
        XCTAssertEqual(int64(user["userId"]), account.userId)
        XCTAssertEqual(user["mobile"] as? String, account.mobile)
        XCTAssertEqual(user["name"] as? String, "Carol")
        XCTAssertEqual(int64(user["isAuth"]), 0)
        for key in ["friends", "groups", "tops", "ignores", "blocks", "requests", "unread"] {
            let list = data[key] as? [Any]
            XCTAssertNotNil(list, "\(key) must be a list: \(ready.text)")
            XCTAssertEqual(list?.count, 0, "\(key) must be empty for a new user")
        }
        XCTAssertEqual(jsonBoolean(ready, key: "hasPayPwd"), false, "hasPayPwd must be the boolean false: \(ready.text)")
        XCTAssertEqual(int64(data["isAuth"]), 0)
        XCTAssertFalse(ready.text.contains(account.password), "no secret in ready")
        XCTAssertNil(data["payPwd"])
    }

    // MARK: updateProfile

    func testUpdateProfileChangesOnlyTheFieldsSent() {
        let account = client.newAccount(name: "Dave")
        let first = client.authed("/chat/updateProfile", account.token,
                                  ["city": "杭州", "province": "浙江", "sign": "hello 世界", "sex": "男"])
        assertOK(first)
        let profile = first.dataObject
        XCTAssertEqual(int64(profile["userId"]), account.userId, "returns the Profile: \(first.text)")
        XCTAssertEqual(profile["city"] as? String, "杭州")
        XCTAssertEqual(profile["province"] as? String, "浙江")
        XCTAssertEqual(profile["sign"] as? String, "hello 世界")
        XCTAssertEqual(profile["sex"] as? String, "男")
        XCTAssertEqual(profile["name"] as? String, "Dave", "name was not sent and must not change")

        let second = client.authed("/chat/updateProfile", account.token, ["nickName": "D", "sex": "女"])
        assertOK(second)
        XCTAssertEqual(second.dataObject["nickName"] as? String, "D")
        XCTAssertEqual(second.dataObject["sex"] as? String, "女")
        XCTAssertEqual(second.dataObject["city"] as? String, "杭州", "city was not sent and must not change")
        XCTAssertEqual(second.dataObject["sign"] as? String, "hello 世界")

        let cleared = client.authed("/chat/updateProfile", account.token, ["sex": ""])
        assertOK(cleared)
        XCTAssertEqual(cleared.dataObject["sex"] as? String, "", "sex may be set to empty")

        // 32 characters (not bytes) is the limit for name.
        let longest = String(repeating: "名", count: 32)
        let atLimit = client.authed("/chat/updateProfile", account.token, ["name": longest])
        assertOK(atLimit)
        XCTAssertEqual(atLimit.dataObject["name"] as? String, longest)

        // Refused: nothing at all changes (the valid field sent with it neither).
        assertReply(client.authed("/chat/updateProfile", account.token, ["name": longest + "x", "city": "北京"]),
                    status: 400, code: -1, infoContains: "name")
        assertReply(client.authed("/chat/updateProfile", account.token, ["sex": "M", "city": "北京"]),
                    status: 400, code: -1, infoContains: "sex")
        let ready = client.get("/chat/ready", ["token": account.token])
        let user = ready.dataObject["user"] as? [String: Any] ?? [:]
        XCTAssertEqual(user["name"] as? String, longest)
        XCTAssertEqual(user["city"] as? String, "杭州")
        XCTAssertEqual(user["nickName"] as? String, "D")
    }

    func testFormEncodingDetailsAndJSONEscaping() {
        let account = client.newAccount()
        // A charset parameter on the Content-Type, and '+' for a space.
        var request = URLRequest(url: URL(string: stack.baseURL + "/chat/updateProfile")!)
        request.httpMethod = "POST"
        request.setValue("application/x-www-form-urlencoded; charset=UTF-8", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(account.token)", forHTTPHeaderField: "Authorization")
        request.httpBody = Data("sign=hello+world%21&city=%E6%9D%AD%E5%B7%9E".utf8)
        let reply = client.perform(request)
        assertOK(reply)
        XCTAssertEqual(reply.dataObject["sign"] as? String, "hello world!")
        XCTAssertEqual(reply.dataObject["city"] as? String, "杭州")

        // Characters JSON must escape come back intact, and the reply stays valid JSON.
        let tricky = "a\"b\\c</script>\t\u{2028}é"
        let escaped = client.authed("/chat/updateProfile", account.token, ["sign": tricky])
        assertOK(escaped)
        XCTAssertEqual(escaped.dataObject["sign"] as? String, tricky)

        // Length is counted in characters: 32 emoji (non-BMP, 4 UTF-8 bytes each) is a valid name, 33 is not.
        let emoji32 = String(repeating: "😀", count: 32)
        let named = client.authed("/chat/updateProfile", account.token, ["name": emoji32])
        assertOK(named)
        XCTAssertEqual(named.dataObject["name"] as? String, emoji32)
        assertReply(client.authed("/chat/updateProfile", account.token, ["name": emoji32 + "😀"]), status: 400, code: -1,
                    infoContains: "name")

        // Nothing sent: nothing changes, the Profile comes back.
        let nothing = client.authed("/chat/updateProfile", account.token)
        assertOK(nothing)
        XCTAssertEqual(nothing.dataObject["name"] as? String, emoji32)
        XCTAssertEqual(nothing.dataObject["sign"] as? String, tricky)
    }

    // MARK: updateHead

    func testUpdateHeadAcceptsHttpsAndOwnUploadsOnly() {
        let account = client.newAccount()
        let https = "https://cdn.example.com/avatars/a.png"
        assertOK(client.authed("/chat/updateHead", account.token, ["headUrl": https]))
        XCTAssertEqual((client.get("/chat/ready", ["token": account.token]).dataObject["user"] as? [String: Any])?["headUrl"]
                       as? String, https)

        // A URL this server returned from an upload.
        let upload = client.uploadImage(token: account.token, data: TestImages.png(width: 3, height: 2), filename: "a.png")
        assertOK(upload)
        let uploaded = (upload.dataArray.first as? [String: Any])?["url"] as? String ?? ""
        XCTAssertFalse(uploaded.isEmpty, upload.text)
        assertOK(client.authed("/chat/updateHead", account.token, ["headUrl": uploaded]))
        XCTAssertEqual((client.get("/chat/ready", ["token": account.token]).dataObject["user"] as? [String: Any])?["headUrl"]
                       as? String, uploaded)

        // Refused, and the avatar stays the uploaded one.
        let refused = [
            "/uploads/2024/01/abcdefghijklmnopqrstuvwx.png",  // well-formed, but never stored
            "/uploads/../../etc/passwd",
            "javascript:alert(1)",
            "http://cdn.example.com/a.png",
            "https://" + String(repeating: "a", count: 510),  // over 512 characters
            "data:image/png;base64,AAAA",
        ]
        for url in refused {
            assertReply(client.authed("/chat/updateHead", account.token, ["headUrl": url]), status: 400, code: -1,
                        infoContains: "headUrl", url)
        }
        XCTAssertEqual((client.get("/chat/ready", ["token": account.token]).dataObject["user"] as? [String: Any])?["headUrl"]
                       as? String, uploaded)
    }

    // MARK: updatePrivateSetting, queryUser, getUserById

    func testSearchMobileOffHidesTheUserFromQueryUser() {
        let alice = client.newAccount(name: "Alice")
        let bob = client.newAccount(name: "Bob")

        let found = client.authed("/chat/queryUser", bob.token, ["mobile": alice.mobile])
        assertOK(found)
        XCTAssertEqual(int64(found.dataObject["userId"]), alice.userId)

        assertOK(client.authed("/chat/updatePrivateSetting", alice.token, ["searchMobile": "0"]))
        let hidden = client.authed("/chat/queryUser", bob.token, ["mobile": alice.mobile])
        assertOK(hidden)
        XCTAssertTrue(hidden.data is NSNull, "a hidden user must be data null: \(hidden.text)")
        XCTAssertFalse(hidden.text.contains(String(alice.userId)))

        let unknown = client.authed("/chat/queryUser", bob.token, ["mobile": StackClient.newMobile()])
        assertOK(unknown)
        XCTAssertTrue(unknown.data is NSNull)
        // Indistinguishable: the same envelope.
        XCTAssertEqual(hidden.status, unknown.status)
        XCTAssertEqual(hidden.code, unknown.code)
        XCTAssertEqual(hidden.info, unknown.info)
        XCTAssertEqual(hidden.text, unknown.text)

        // Sending only one setting leaves the others alone; turning it back on makes her findable.
        assertOK(client.authed("/chat/updatePrivateSetting", alice.token, ["needAuth": "1"]))
        XCTAssertTrue(client.authed("/chat/queryUser", bob.token, ["mobile": alice.mobile]).data is NSNull)
        assertOK(client.authed("/chat/updatePrivateSetting", alice.token, ["searchMobile": "1"]))
        XCTAssertEqual(int64(client.authed("/chat/queryUser", bob.token, ["mobile": alice.mobile]).dataObject["userId"]),
                       alice.userId)
    }

    /// `+8613812345678` is shown as `+86*******5678` to someone who is not a friend: at least half
    /// of the digits hidden, the last 4 shown, and the country code.
    func expectedMask(_ mobile: String) -> String {
        let digits = Array(mobile.dropFirst())
        let shown = digits.count / 2
        return "+" + String(digits.prefix(shown - 4)) + String(repeating: "*", count: digits.count - shown)
            + String(digits.suffix(4))
    }

    func testQueryUserMasksTheMobileOfANonFriend() {
        let alice = client.newAccount(name: "Alice")
        let bob = client.newAccount(name: "Bob")
        let reply = client.authed("/chat/queryUser", bob.token, ["mobile": alice.mobile])
        assertOK(reply)
        let shown = reply.dataObject["mobile"] as? String ?? ""
        XCTAssertEqual(shown, expectedMask(alice.mobile), "masked mobile")
        XCTAssertFalse(reply.text.contains(alice.mobile.dropFirst()), "the full number must not be in the response")
        XCTAssertEqual(reply.dataObject["name"] as? String, "Alice")
        for key in ["userId", "mobile", "name", "nickName", "headUrl", "sex", "sign", "province", "city", "isAuth"] {
            XCTAssertNotNil(reply.dataObject[key], "Profile lacks \(key): \(reply.text)")
        }
        // Yourself: the full number.
        let me = client.authed("/chat/queryUser", alice.token, ["mobile": alice.mobile])
        assertOK(me)
        XCTAssertEqual(me.dataObject["mobile"] as? String, alice.mobile)
    }

    func testGetUserByIdOfAnotherUserAndOfAnUnknownId() {
        let alice = client.newAccount(name: "Alice")
        let bob = client.newAccount(name: "Bob")
        let reply = client.authed("/chat/getUserById", bob.token, ["destId": String(alice.userId)])
        assertOK(reply)
        let data = reply.dataObject
        let user = data["user"] as? [String: Any] ?? [:]
        XCTAssertEqual(int64(user["userId"]), alice.userId)
        XCTAssertEqual(user["name"] as? String, "Alice")
        XCTAssertEqual(user["mobile"] as? String, expectedMask(alice.mobile))
        XCTAssertFalse(reply.text.contains(alice.mobile.dropFirst()), "the full number must not be in the response")
        XCTAssertEqual(jsonBoolean(reply, key: "isFriend"), false, reply.text)
        XCTAssertEqual(jsonBoolean(reply, key: "blocked"), false, reply.text)
        XCTAssertEqual((data["album"] as? [Any])?.count, 0, "album: \(reply.text)")
        XCTAssertNotNil(data["remark"] as? String, "remark: \(reply.text)")

        for destId in ["9000000000000000000", "9223372036854775807"] {
            let unknown = client.authed("/chat/getUserById", bob.token, ["destId": destId])
            assertReply(unknown, status: 200, code: -1, destId)
            XCTAssertTrue(unknown.data is NSNull || unknown.data == nil)
        }

        // Yourself: the full number.
        let me = client.authed("/chat/getUserById", alice.token, ["destId": String(alice.userId)])
        assertOK(me)
        XCTAssertEqual((me.dataObject["user"] as? [String: Any])?["mobile"] as? String, alice.mobile)
    }

    // MARK: getVersion

    func testGetVersionNeedsNoToken() {
        for params in [[:], ["device": "1"], ["device": "2"]] as [[String: String]] {
            let reply = client.get("/getVersion", params)
            assertOK(reply, "\(params)")
            let data = reply.dataObject
            XCTAssertNotNil(data["version"] as? String, reply.text)
            XCTAssertNotNil(data["url"] as? String, reply.text)
            XCTAssertNotNil(data["note"] as? String, reply.text)
            XCTAssertNotNil(jsonBoolean(reply, key: "force"), "force must be a boolean: \(reply.text)")
        }
        assertOK(client.post("/getVersion", ["device": "2"]))

        // The values come from the configuration (version.android.* / version.ios.*) when it sets them.
        let config = configValues()
        for (device, kind) in [(1, "android"), (2, "ios")] {
            let data = client.get("/getVersion", ["device": String(device)]).dataObject
            for key in ["version", "url", "note"] {
                if let expected = config["version.\(kind)" + (key == "version" ? "" : ".\(key)")] {
                    XCTAssertEqual(data[key] as? String, expected, "device \(device) \(key)")
                }
            }
        }
    }

    /// key = value lines of the stack's configuration file.
    func configValues() -> [String: String] {
        guard let path = stack.configPath else { return [:] }
        var values: [String: String] = [:]
        for line in readWholeFile(path).split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            values[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        return values
    }

    // MARK: updateAuth (the parts that need no second code)

    func testUpdateAuthRefusesAnotherMobileAndABadIdNumber() {
        let alice = client.newAccount()
        let bob = client.newAccount()
        // Bob's number is not Alice's own: refused, before any code is looked at.
        let notOwn = client.authed("/chat/updateAuth", alice.token,
                                   ["idNo": "11010519491231002X", "mobile": bob.mobile, "name": "张三", "validateNum": "123456"])
        XCTAssertEqual(notOwn.code, -1, notOwn.text)
        XCTAssertTrue([200, 403].contains(notOwn.status), "status \(notOwn.status): \(notOwn.text)")
        assertCommonHeaders(notOwn)
        // A wrong check digit (…002X is right, …0021 is not): 400 naming idNo.
        assertReply(client.authed("/chat/updateAuth", alice.token,
                                  ["idNo": "110105194912310021", "mobile": alice.mobile, "name": "张三", "validateNum": "123456"]),
                    status: 400, code: -1, infoContains: "idNo")
        let ready = client.get("/chat/ready", ["token": alice.token])
        XCTAssertEqual(int64(ready.dataObject["isAuth"]), 0)
        XCTAssertFalse(notOwn.text.contains("11010519491231002X"))
    }

    // MARK: headers and secrets

    func testEveryResponseHasARequestIdAndNoStore() {
        let account = client.newAccount()
        let replies = [
            client.get("/getVersion"),
            client.get("/chat/ready", ["token": account.token]),
            client.get("/chat/ready"),
            client.post("/chat/doLogin", ["mobile": "x"]),
            client.get("/chat/noSuchEndpoint"),
            client.post("/chat/getValidateNum", ["mobile": account.mobile]),  // 429: a code was sent just now
        ]
        var ids = Set<String>()
        for reply in replies {
            assertCommonHeaders(reply, "status \(reply.status)")
            assertIsEnvelope(reply)
            ids.insert(reply.header("X-Request-Id") ?? "")
        }
        XCTAssertEqual(ids.count, replies.count, "each request gets its own id")
    }

    func testSecretsAreNeverEchoedNorLogged() {
        let appLog = stack.appLogPath.map(LogTail.init)
        let accessLog = stack.nginxAccessLogPath.map(LogTail.init)
        let mobile = StackClient.newMobile()
        let password = StackClient.md5Hex("logcheck-\(mobile)")
        let code = client.requestCode(for: mobile)
        var replies: [Reply] = []
        replies.append(client.register(mobile: mobile, password: password, name: "Logger", code: code))
        let login = client.login(mobile: mobile, password: password, device: 3)
        let token = login.dataObject["token"] as? String ?? ""
        XCTAssertFalse(token.isEmpty)
        replies.append(login)
        replies.append(client.login(mobile: mobile, password: password, device: 3))  // ends the first PC session
        let token2 = replies.last?.dataObject["token"] as? String ?? ""
        replies.append(client.login(mobile: mobile, password: StackClient.md5Hex("wrong")))
        // Wrong and failing calls with the secrets in the query string, where a log line might catch them.
        replies.append(client.get("/chat/register", ["mobile": mobile, "pwd": password, "name": "x", "validateNum": code]))
        replies.append(client.get("/chat/findPwd", ["mobile": mobile, "pwd": password, "validateNum": code]))
        replies.append(client.get("/chat/ready", ["token": token2]))
        replies.append(client.get("/chat/ready", ["token": token]))  // ended by the second PC login: 401
        replies.append(client.get("/chat/updateProfile", ["token": token2, "sign": String(repeating: "s", count: 129)]))
        replies.append(client.get("/chat/ready", ["token": token2, "userId": "1"]))
        for reply in replies {
            XCTAssertFalse(reply.text.contains(password), "password echoed: \(reply.text)")
            XCTAssertFalse(containsStandalone(reply.text, code), "code echoed: \(reply.text)")
            // Only doLogin hands out a token; nothing echoes one.
            if reply.dataObject["token"] == nil {
                XCTAssertFalse(reply.text.contains(token2) || reply.text.contains(token), "token echoed: \(reply.text)")
            }
            for (name, value) in reply.headers {
                XCTAssertFalse(value.contains(password) || containsStandalone(value, code) || value.contains(token2),
                               "secret in header \(name)")
            }
        }

        guard let appLog else {
            XCTFail("no app log under CHAT_TEST_STACK_DIR (\(stack.stackDir ?? "unset"))/log")
            return
        }
        // Access lines reach the file within 0.2 s (Log.AccessBuffer).
        XCTAssertTrue(StackProcesses.eventually(within: 5) { appLog.text.contains("access method=POST path=/chat/doLogin status=200") },
                      "no access line for doLogin in \(appLog.path)")
        let log = appLog.text
        for (label, secret) in [("token", token), ("second token", token2), ("password hex", password), ("SMS code", code)] {
            XCTAssertFalse(containsStandalone(log, secret), "the app log \(appLog.path) contains the \(label)")
        }
        if let accessLog {
            // nginx writes its access log at least once a second (flush=1s).
            XCTAssertTrue(StackProcesses.eventually(within: 5) { accessLog.text.contains("/chat/doLogin") },
                          "nginx's access log \(accessLog.path) lacks this test's requests")
            let text = accessLog.text
            for (label, secret) in [("token", token2), ("password hex", password), ("SMS code", code)] {
                XCTAssertFalse(containsStandalone(text, secret), "nginx's access log \(accessLog.path) contains the \(label)")
            }
        }
    }
}

/// Flows that need a second verification code for an existing number (findPwd, updateAuth). A
/// number gets one code a minute, so these use accounts created at the start of the run and wait
/// out the rest of that minute; the class name makes them run last.
final class VerificationCodeFlowTests: XCTestCase {
    var stack: Stack!
    var client: StackClient!

    override func setUpWithError() throws {
        stack = try Stack.current()
        client = StackClient(stack: stack)
        EarlyAccounts.warmUp(client)
    }

    func testFindPwdEndsAllSessionsAndReplacesThePassword() {
        let appLog = stack.appLogPath.map(LogTail.init)
        let account = EarlyAccounts.takeReadyForNewCode(0, client: client)
        let ios = client.login(mobile: account.mobile, password: account.password, device: 2)
        assertOK(ios)
        let iosToken = ios.dataObject["token"] as? String ?? ""
        let newPassword = StackClient.md5Hex("new-\(account.mobile)")

        // No such user: 2 (with a valid code for that unregistered number).
        let stranger = StackClient.newMobile()
        let strangerCode = client.requestCode(for: stranger)
        assertReply(client.post("/chat/findPwd", ["mobile": stranger, "pwd": newPassword, "validateNum": strangerCode]),
                    status: 200, code: 2)

        let code = client.requestCode(for: account.mobile)
        let wrong = code == "000000" ? "999999" : "000000"
        assertReply(client.post("/chat/findPwd", ["mobile": account.mobile, "pwd": newPassword, "validateNum": wrong]),
                    status: 200, code: 3)
        assertOK(client.get("/chat/ready", ["token": account.token]), "a failed findPwd ends nothing")

        let done = client.post("/chat/findPwd", ["mobile": account.mobile, "pwd": newPassword, "validateNum": code])
        assertOK(done)
        XCTAssertFalse(done.text.contains(newPassword) || done.text.contains(code))

        assertReply(client.get("/chat/ready", ["token": account.token]), status: 401, code: -1, "Android session")
        assertReply(client.get("/chat/ready", ["token": iosToken]), status: 401, code: -1, "iOS session")
        assertReply(client.login(mobile: account.mobile, password: account.password), status: 200, code: 3,
                    "the old password no longer works")
        let fresh = client.login(mobile: account.mobile, password: newPassword)
        assertOK(fresh, "the new password works")
        let freshToken = fresh.dataObject["token"] as? String ?? ""
        assertOK(client.get("/chat/ready", ["token": freshToken]))
        // The code was consumed.
        assertReply(client.post("/chat/findPwd", ["mobile": account.mobile, "pwd": account.password, "validateNum": code]),
                    status: 200, code: 3)

        // None of the secrets of this flow reach the app log.
        if let appLog {
            // Once the last request's access line is there, so is everything the flow logged.
            XCTAssertTrue(StackProcesses.eventually(within: 5) {
                appLog.text.components(separatedBy: "path=/chat/findPwd").count > 4
            }, "no access lines for findPwd in \(appLog.path)")
            let log = appLog.text
            for (label, secret) in [("new password hex", newPassword), ("SMS code", code), ("token", freshToken),
                                    ("iOS token", iosToken)] {
                XCTAssertFalse(containsStandalone(log, secret), "the app log contains the \(label)")
            }
        }
    }

    func testUpdateAuthNeedsAValidCodeAndAnOperatorApproves() throws {
        let appLog = stack.appLogPath.map(LogTail.init)
        let account = EarlyAccounts.takeReadyForNewCode(1, client: client)
        let idNo = "11010519491231002X"
        let code = client.requestCode(for: account.mobile)
        let wrong = code == "000000" ? "999999" : "000000"
        let refused = client.authed("/chat/updateAuth", account.token,
                                    ["idNo": idNo, "mobile": account.mobile, "name": "张三", "validateNum": wrong])
        XCTAssertNotEqual(refused.code, 1, "a wrong code must not verify: \(refused.text)")
        XCTAssertEqual(refused.status, 200, refused.text)
        XCTAssertEqual(refused.code, 3, "a wrong code is 3, as for register and findPwd: \(refused.text)")
        XCTAssertEqual(int64(client.get("/chat/ready", ["token": account.token]).dataObject["isAuth"]), 0)

        let submitted = client.authed("/chat/updateAuth", account.token,
                                      ["idNo": idNo, "mobile": account.mobile, "name": "张三", "validateNum": code])
        assertOK(submitted)
        for fragment in [idNo, idNo.lowercased(), "0519491231", "19491231"] {
            XCTAssertFalse(submitted.text.contains(fragment), "the response reveals the id number (\(fragment)): \(submitted.text)")
        }
        let ready = client.get("/chat/ready", ["token": account.token])
        XCTAssertEqual(int64(ready.dataObject["isAuth"]), 1, ready.text)
        XCTAssertEqual(int64((ready.dataObject["user"] as? [String: Any])?["isAuth"]), 1)
        XCTAssertFalse(ready.text.contains(idNo))

        let result = try runOperatorCommand(stack, ["admin", "auth", "approve", String(account.userId)])
        XCTAssertEqual(result.status, 0, "operator command failed: \(result.output)")
        let approved = client.get("/chat/ready", ["token": account.token])
        XCTAssertEqual(int64(approved.dataObject["isAuth"]), 2, approved.text)
        XCTAssertFalse(approved.text.contains(idNo))

        // Neither the id number nor the code reach the app log.
        if let appLog {
            let log = appLog.text
            XCTAssertFalse(log.contains(idNo), "the app log contains the id number")
            XCTAssertFalse(log.contains(account.token), "the app log contains the token")
        }
    }
}
