import Foundation
#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// Uploads leave nothing behind whichever way they end, take the token as a multipart field, and
/// are bounded by a daily per-user quota.
final class UploadCleanupTests: StackTestCase {
    var temporaryFolder: String {
        get throws {
            guard let uploads = stack.uploadsDir, !uploads.isEmpty else { throw XCTSkip("CHAT_TEST_UPLOADS_DIR is not set") }
            return uploads + "/.tmp"
        }
    }

    func temporaryEntries() throws -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: try temporaryFolder)) ?? []
    }

    func workerDescriptors() throws -> Int {
        try StackProcesses.workers(stack).reduce(0) { $0 + StackProcesses.descriptorCount($1) }
    }

    /// Refused image parts (not an image, a broken image, one image too many, a token after the
    /// file) leave no temporary file and no open descriptor in the workers.
    func testRefusedUploadsLeaveNoFileAndNoDescriptor() throws {
        let account = client.newAccount(name: "Refused")
        let png = TestImages.png(width: 3, height: 2)
        // Warm up: every worker thread has its database connection, nginx its kept connections.
        for _ in 0..<20 { assertOK(client.uploadImage(token: account.token, data: png)) }
        let filesBefore = try temporaryEntries()
        let descriptorsBefore = try workerDescriptors()

        var refusals = 0
        for round in 0..<15 {
            let text = client.uploadImage(token: account.token, data: Data("just text \(round)".utf8))
            XCTAssertEqual(text.status, 400, text.text)
            let broken = client.uploadImage(token: account.token, data: png.prefix(16))
            XCTAssertEqual(broken.status, 400, broken.text)
            let tooMany = multipartBody((0..<10).map { _ in
                MultipartPart(name: "fileUpload", filename: "a.png", contentType: "image/png", data: png)
            })
            let many = client.postRaw("/chat/uploadImage", body: tooMany.body, contentType: tooMany.contentType,
                                      headers: ["Authorization": "Bearer \(account.token)"])
            XCTAssertEqual(many.status, 400, many.text)
            let late = multipartBody([
                MultipartPart(name: "fileUpload", filename: "a.png", contentType: "image/png", data: png),
                MultipartPart(name: "token", filename: nil, contentType: nil, data: Data(account.token.utf8)),
            ])
            let lateToken = client.postRaw("/chat/uploadImage", body: late.body, contentType: late.contentType)
            XCTAssertEqual(lateToken.status, 401, lateToken.text)
            refusals += 4
        }
        let settled = StackProcesses.eventually(within: 3) { (try? self.temporaryEntries()) == filesBefore }
        XCTAssertTrue(settled, "temporary files left by \(refusals) refused uploads: \((try? temporaryEntries()) ?? [])")
        let descriptorsAfter = try workerDescriptors()
        print("[uploads] \(refusals) refused uploads: worker descriptors \(descriptorsBefore) -> \(descriptorsAfter)")
        // Kept-alive nginx connections may come and go (at most nginx's keepalive pool); one
        // leaked descriptor per refusal would add \(refusals).
        XCTAssertLessThan(descriptorsAfter - descriptorsBefore, 17,
                          "worker descriptors grew from \(descriptorsBefore) to \(descriptorsAfter) over \(refusals) refusals")
    }

    /// A temporary file older than an hour (a worker killed mid-upload) is removed when workers
    /// start; a fresh one (an upload in progress) is left alone.
    func testStaleTemporaryFilesAreSweptWhenWorkersStart() throws {
        let folder = try temporaryFolder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let stale = folder + "/sweep-test-\(UUID().uuidString.prefix(8)).part"
        let fresh = folder + "/sweep-test-\(UUID().uuidString.prefix(8)).part"
        XCTAssertTrue(FileManager.default.createFile(atPath: stale, contents: Data("old".utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: fresh, contents: Data("new".utf8)))
        defer { unlink(fresh); unlink(stale) }
        var times = [timespec(tv_sec: time(nil) - 7200, tv_nsec: 0), timespec(tv_sec: time(nil) - 7200, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, stale, &times, 0), 0)

        let before = try StackProcesses.workers(stack)
        XCTAssertEqual(kill(try StackProcesses.supervisor(stack), SIGHUP), 0)
        XCTAssertTrue(StackProcesses.eventually(within: 15) { access(stale, F_OK) != 0 },
                      "the stale temporary file survived a reload")
        XCTAssertEqual(access(fresh, F_OK), 0, "a fresh temporary file was removed")
        // Leave the stack as it was found: the new generation serving, the old one gone.
        XCTAssertTrue(StackProcesses.eventually(within: 15) {
            let now = (try? StackProcesses.workers(self.stack)) ?? []
            return now.count == before.count && Set(now).isDisjoint(with: before)
        })
        assertOK(client.get("/getVersion", ["device": "1"]))
    }

    /// The token may come as a multipart field before the file (API.md §1); after it, or wrong,
    /// it is refused and nothing is stored.
    func testTokenAsAMultipartFieldBeforeTheFile() throws {
        let account = client.newAccount(name: "FieldToken")
        let png = TestImages.png(width: 4, height: 4)
        let good = multipartBody([
            MultipartPart(name: "token", filename: nil, contentType: nil, data: Data(account.token.utf8)),
            MultipartPart(name: "fileUpload", filename: "a.png", contentType: "image/png", data: png),
        ])
        let stored = client.postRaw("/chat/uploadImage", body: good.body, contentType: good.contentType)
        assertOK(stored)
        let url = (stored.dataArray.first as? [String: Any])?["url"] as? String ?? ""
        XCTAssertEqual(client.fetch(url).body, png)

        let wrong = multipartBody([
            MultipartPart(name: "token", filename: nil, contentType: nil, data: Data(String(repeating: "ab", count: 32).utf8)),
            MultipartPart(name: "fileUpload", filename: "a.png", contentType: "image/png", data: png),
        ])
        let refused = client.postRaw("/chat/uploadImage", body: wrong.body, contentType: wrong.contentType)
        assertReply(refused, status: 401, code: -1)
        let none = multipartBody([MultipartPart(name: "fileUpload", filename: "a.png", contentType: "image/png", data: png)])
        let missing = client.postRaw("/chat/uploadImage", body: none.body, contentType: none.contentType)
        assertReply(missing, status: 401, code: -1, infoContains: "missing token")
    }

    /// Past the day's quota an upload gets 429 with Retry-After and stores nothing; a refused
    /// upload gives its reservation back.
    func testTheDailyQuotaRefusesWithRetryAfter() throws {
        let account = client.newAccount(name: "Quota")
        let png = TestImages.png(width: 4, height: 4)
        let quota = Int64(stack.configValue("upload_quota_mib_per_day").flatMap { Int64($0) } ?? 2048) << 20
        try StackDB.query(stack, """
            INSERT INTO upload_usage (user_id, day, bytes) VALUES (\(account.userId), (now() AT TIME ZONE 'UTC')::date, \(quota - 10))
            """)
        let refused = client.uploadImage(token: account.token, data: png)
        assertReply(refused, status: 429, code: -1, infoContains: "quota")
        let retryAfter = Int(refused.header("Retry-After") ?? "") ?? 0
        XCTAssertTrue((1...86_400).contains(retryAfter), "Retry-After: \(refused.header("Retry-After") ?? "none")")
        let raw = client.doUploads(token: account.token, fileExt: "png", body: png)
        assertReply(raw, status: 429, code: -1)

        try StackDB.query(stack, "UPDATE upload_usage SET bytes = 0 WHERE user_id = \(account.userId)")
        let text = client.uploadImage(token: account.token, data: Data("text".utf8))
        XCTAssertEqual(text.status, 400)
        let used = try StackDB.query(stack, "SELECT bytes FROM upload_usage WHERE user_id = \(account.userId)")
        XCTAssertEqual(used.first?.first, "0", "a refused upload must give its reservation back")
        assertOK(client.uploadImage(token: account.token, data: png))
        let after = try StackDB.query(stack, "SELECT bytes FROM upload_usage WHERE user_id = \(account.userId)")
        XCTAssertGreaterThan(Int(after.first?.first ?? "0") ?? 0, png.count)
    }
}
