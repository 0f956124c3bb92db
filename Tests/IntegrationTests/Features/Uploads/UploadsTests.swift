import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// API.md §9 over HTTP: uploadImage (multipart) and doUploads (raw body), the stored names, and
/// nginx serving the files back from /uploads/.
final class UploadsTests: StackTestCase {
    static var sharedAccount: StackClient.Account?

    override func setUpWithError() throws {
        try super.setUpWithError()
        EarlyAccounts.warmUp(client)
    }

    /// One account for the whole class (uploads do not change the user).
    var account: StackClient.Account {
        if let account = UploadsTests.sharedAccount { return account }
        let account = client.newAccount(name: "Uploader")
        UploadsTests.sharedAccount = account
        return account
    }

    // MARK: uploadImage

    /// Uploads one image, checks the reply, fetches it back from nginx and compares.
    func checkImageRoundTrip(_ bytes: Data, width: Int, height: Int, exts: [String], contentType: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        let reply = client.uploadImage(token: account.token, data: bytes, filename: "upload.bin")
        assertOK(reply, file: file, line: line)
        XCTAssertEqual(reply.dataArray.count, 1, reply.text, file: file, line: line)
        let item = reply.dataArray.first as? [String: Any] ?? [:]
        let url = item["url"] as? String ?? ""
        XCTAssertEqual(int64(item["size"]), Int64(bytes.count), "size: \(reply.text)", file: file, line: line)
        XCTAssertEqual(int64(item["width"]), Int64(width), "width: \(reply.text)", file: file, line: line)
        XCTAssertEqual(int64(item["height"]), Int64(height), "height: \(reply.text)", file: file, line: line)
        let path = uploadPath(url)
        XCTAssertTrue(exts.contains { isStoredUploadPath(path, ext: $0) }, "stored path \(path) (expected .\(exts))",
                      file: file, line: line)

        let fetched = client.fetch(url)
        XCTAssertEqual(fetched.status, 200, "GET \(url): \(fetched.text.prefix(200))", file: file, line: line)
        XCTAssertEqual(fetched.body, bytes, "the served file differs from the upload", file: file, line: line)
        XCTAssertEqual(fetched.header("Content-Type")?.split(separator: ";").first.map(String.init), contentType,
                       file: file, line: line)
        XCTAssertEqual(fetched.header("X-Content-Type-Options"), "nosniff", file: file, line: line)
        XCTAssertFalse((fetched.header("Content-Disposition") ?? "").lowercased().contains("attachment"),
                       "an image is shown inline", file: file, line: line)
    }

    func testUploadImagePNG() {
        checkImageRoundTrip(TestImages.png(width: 7, height: 5), width: 7, height: 5, exts: ["png"], contentType: "image/png")
    }

    func testUploadImageGIF() {
        checkImageRoundTrip(TestImages.gif(width: 9, height: 4), width: 9, height: 4, exts: ["gif"], contentType: "image/gif")
    }

    func testUploadImageJPEGWithAPP0AndAPP1BeforeSOF0() {
        let jpeg = TestImages.jpeg(width: 21, height: 13)
        checkImageRoundTrip(jpeg, width: 21, height: 13, exts: ["jpg", "jpeg"], contentType: "image/jpeg")
    }

    func testUploadImageWebPVP8X() {
        checkImageRoundTrip(TestImages.webp(width: 300, height: 17), width: 300, height: 17, exts: ["webp"],
                            contentType: "image/webp")
    }

    func testUploadImageWithTwoImagesAndAnotherFieldReturnsBothInOrder() {
        let png = TestImages.png(width: 6, height: 2)
        let gif = TestImages.gif(width: 3, height: 8)
        let (body, type) = multipartBody([
            MultipartPart(name: "note", filename: nil, contentType: nil, data: Data("ignored".utf8)),
            MultipartPart(name: "fileUpload", filename: "a.png", contentType: "image/png", data: png),
            MultipartPart(name: "fileUpload", filename: "b.gif", contentType: "image/gif", data: gif),
        ])
        let reply = client.postRaw("/chat/uploadImage", body: body, contentType: type,
                                   headers: ["Authorization": "Bearer \(account.token)"])
        assertOK(reply)
        let items = reply.dataArray.compactMap { $0 as? [String: Any] }
        XCTAssertEqual(items.count, 2, reply.text)
        guard items.count == 2 else { return }
        XCTAssertEqual(int64(items[0]["width"]), 6)
        XCTAssertEqual(int64(items[0]["height"]), 2)
        XCTAssertEqual(int64(items[1]["width"]), 3)
        XCTAssertEqual(int64(items[1]["height"]), 8)
        XCTAssertEqual(client.fetch(items[0]["url"] as? String ?? "").body, png)
        XCTAssertEqual(client.fetch(items[1]["url"] as? String ?? "").body, gif)
    }

    func testUploadImageWithAQuotedBoundaryOrAChunkedBody() {
        let png = TestImages.png(width: 4, height: 9)
        let (body, type) = multipartBody([MultipartPart(name: "fileUpload", filename: "a.png", contentType: "image/png", data: png)])
        let boundary = String(type.split(separator: "=", maxSplits: 1)[1])
        let auth = ["Authorization": "Bearer \(account.token)"]
        let quoted = client.postRaw("/chat/uploadImage", body: body,
                                    contentType: "multipart/form-data; boundary=\"\(boundary)\"", headers: auth)
        assertOK(quoted, "quoted boundary")
        XCTAssertEqual(int64((quoted.dataArray.first as? [String: Any])?["height"]), 9)

        let chunked = RawHTTP.send(stack, method: "POST", target: "/chat/uploadImage",
                                   headers: auth.merging(["Content-Type": type]) { $1 }, body: body, chunked: true)
        assertOK(chunked, "chunked body")
        let url = (chunked.dataArray.first as? [String: Any])?["url"] as? String ?? ""
        XCTAssertEqual(client.fetch(url).body, png)
    }

    func testUploadImageKnowsTheKindByContentNotByName() {
        // A PNG named .jpg is stored as a PNG.
        let png = TestImages.png(width: 2, height: 3)
        let reply = client.uploadImage(token: account.token, data: png, filename: "photo.jpg", contentType: "image/jpeg")
        assertOK(reply)
        let url = (reply.dataArray.first as? [String: Any])?["url"] as? String ?? ""
        XCTAssertTrue(isStoredUploadPath(uploadPath(url), ext: "png"), url)

        // Text named .png is refused.
        let text = Data("<html><script>alert(1)</script></html>\n".utf8)
        assertReply(client.uploadImage(token: account.token, data: text, filename: "evil.png", contentType: "image/png"),
                    status: 400, code: -1)
        // A PDF is not an image.
        assertReply(client.uploadImage(token: account.token, data: Data("%PDF-1.4\n%%EOF\n".utf8), filename: "a.png"),
                    status: 400, code: -1)
    }

    func testUploadImageRefusesBodiesWithoutAnImage() {
        let token = account.token
        let auth = ["Authorization": "Bearer \(token)"]
        // A multipart body without the fileUpload field.
        let (noFile, type) = multipartBody([MultipartPart(name: "other", filename: "a.png", contentType: "image/png",
                                                          data: TestImages.png(width: 1, height: 1))])
        assertReply(client.postRaw("/chat/uploadImage", body: noFile, contentType: type, headers: auth),
                    status: 400, code: -1, infoContains: "fileUpload")
        // Not multipart at all.
        assertReply(client.postRaw("/chat/uploadImage", body: Data("fileUpload=abc".utf8),
                                   contentType: "application/x-www-form-urlencoded", headers: auth), status: 400, code: -1)
        assertReply(client.postRaw("/chat/uploadImage", body: TestImages.png(width: 1, height: 1),
                                   contentType: "image/png", headers: auth), status: 400, code: -1)
        // Multipart without a boundary, and a body cut off before its closing boundary.
        assertReply(client.postRaw("/chat/uploadImage", body: noFile, contentType: "multipart/form-data", headers: auth),
                    status: 400, code: -1)
        let (whole, wholeType) = multipartBody([MultipartPart(name: "fileUpload", filename: "a.png", contentType: "image/png",
                                                              data: TestImages.png(width: 4, height: 4))])
        assertReply(client.postRaw("/chat/uploadImage", body: whole.prefix(whole.count - 30), contentType: wholeType,
                                   headers: auth), status: 400, code: -1)
        // An empty file.
        assertReply(client.uploadImage(token: token, data: Data(), filename: "a.png"), status: 400, code: -1)
        // A truncated image (PNG signature only).
        assertReply(client.uploadImage(token: token, data: TestImages.png(width: 4, height: 4).prefix(8), filename: "a.png"),
                    status: 400, code: -1)
    }

    func testUploadImageOverTheLimitIs413WithAnEnvelope() {
        // nginx allows 21 MiB on this route; announce 22 MiB and send nothing: nginx refuses at once.
        let reply = RawHTTP.send(stack, method: "POST", target: "/chat/uploadImage",
                                 headers: ["Authorization": "Bearer \(account.token)",
                                           "Content-Type": "multipart/form-data; boundary=xyz"],
                                 contentLength: 22 << 20)
        assertReply(reply, status: 413, code: -1)
    }

    func testUploadImageOf21MiBIsRefusedWith413() {
        // A real 21 MiB body (a PNG header followed by filler), sent by URLSession.
        var big = TestImages.png(width: 1, height: 1)
        big.append(Data(count: (21 << 20) - big.count))
        let reply = client.uploadImage(token: account.token, data: big, filename: "big.png")
        assertReply(reply, status: 413, code: -1)
    }

    // MARK: doUploads

    func testDoUploadsPDFIsServedAsAnAttachment() {
        var pdf = Data("%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n".utf8)
        pdf.append(Data((0..<3000).map { UInt8($0 % 251) }))
        pdf.append(Data("\n%%EOF\n".utf8))
        let reply = client.doUploads(token: account.token, fileExt: "pdf", body: pdf)
        assertOK(reply)
        let url = reply.dataObject["url"] as? String ?? ""
        XCTAssertEqual(int64(reply.dataObject["size"]), Int64(pdf.count), reply.text)
        XCTAssertTrue(isStoredUploadPath(uploadPath(url), ext: "pdf"), "stored path: \(url)")
        // The name is random: a second upload of the same bytes gets another one.
        let again = client.doUploads(token: account.token, fileExt: "pdf", body: pdf)
        assertOK(again)
        XCTAssertNotEqual(again.dataObject["url"] as? String, url)

        let fetched = client.fetch(url)
        XCTAssertEqual(fetched.status, 200, "GET \(url)")
        XCTAssertEqual(fetched.body, pdf, "the served file differs from the upload")
        XCTAssertEqual(fetched.header("Content-Type")?.split(separator: ";").first.map(String.init), "application/pdf")
        XCTAssertTrue((fetched.header("Content-Disposition") ?? "").lowercased().hasPrefix("attachment"),
                      "Content-Disposition: \(fetched.header("Content-Disposition") ?? "none")")
        XCTAssertEqual(fetched.header("X-Content-Type-Options"), "nosniff")
    }

    func testDoUploadsFiveMiBZipRoundTrips() {
        var zip = Data([0x50, 0x4B, 0x03, 0x04])
        var generator = SystemRandomNumberGenerator()
        var random = [UInt8](repeating: 0, count: 5 << 20)
        random.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for index in words.indices { words[index] = generator.next() }
        }
        zip.append(contentsOf: random)
        let reply = client.doUploads(token: account.token, fileExt: "zip", body: zip)
        assertOK(reply)
        let url = reply.dataObject["url"] as? String ?? ""
        XCTAssertEqual(int64(reply.dataObject["size"]), Int64(zip.count))
        XCTAssertTrue(isStoredUploadPath(uploadPath(url), ext: "zip"), "stored path: \(url)")
        let fetched = client.fetch(url)
        XCTAssertEqual(fetched.status, 200)
        XCTAssertEqual(fetched.body.count, zip.count)
        XCTAssertTrue(fetched.body == zip, "the served zip differs from the upload")
        XCTAssertTrue((fetched.header("Content-Disposition") ?? "").lowercased().hasPrefix("attachment"))
        XCTAssertEqual(fetched.header("X-Content-Type-Options"), "nosniff")
    }

    func testDoUploadsWithAChunkedBody() {
        // A streaming client that does not know the length up front.
        var pdf = Data("%PDF-1.4\n".utf8)
        pdf.append(Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }))
        let reply = RawHTTP.send(stack, method: "POST", target: "/chat/doUploads?fileExt=pdf",
                                 headers: ["Authorization": "Bearer \(account.token)", "Content-Type": "application/octet-stream"],
                                 body: pdf, chunked: true)
        assertOK(reply)
        XCTAssertEqual(int64(reply.dataObject["size"]), Int64(pdf.count))
        XCTAssertEqual(client.fetch(reply.dataObject["url"] as? String ?? "").body, pdf)
    }

    func testDoUploadsImageKindsAndUpperCaseExtension() {
        let png = TestImages.png(width: 5, height: 5)
        let reply = client.doUploads(token: account.token, fileExt: "PNG", body: png)
        assertOK(reply)
        let url = reply.dataObject["url"] as? String ?? ""
        XCTAssertTrue(isStoredUploadPath(uploadPath(url), ext: "png"), "stored path: \(url)")
        let fetched = client.fetch(url)
        XCTAssertEqual(fetched.body, png)
        XCTAssertEqual(fetched.header("Content-Type")?.split(separator: ";").first.map(String.init), "image/png")
        XCTAssertFalse((fetched.header("Content-Disposition") ?? "").lowercased().contains("attachment"))
        // A text file is allowed as txt.
        let text = Data("plain text, 中文\n".utf8)
        let txt = client.doUploads(token: account.token, fileExt: "txt", body: text)
        assertOK(txt)
        let txtURL = txt.dataObject["url"] as? String ?? ""
        XCTAssertTrue(isStoredUploadPath(uploadPath(txtURL), ext: "txt"), txtURL)
        XCTAssertEqual(client.fetch(txtURL).body, text)
    }

    func testDoUploadsRefusals() {
        let token = account.token
        let pdf = Data("%PDF-1.4\n%%EOF\n".utf8)
        // Not an allowed extension.
        for ext in ["exe", "html", "svg", "php", "sh", "js"] {
            assertReply(client.doUploads(token: token, fileExt: ext, body: pdf), status: 400, code: -1,
                        infoContains: "fileExt", ext)
        }
        // An extension that tries to be a path.
        for ext in ["../pdf", "pdf/../../x", "pdf%00.exe", "p df"] {
            assertReply(client.doUploads(token: token, fileExt: ext, body: pdf), status: 400, code: -1, ext)
        }
        // Content that does not match the extension.
        assertReply(client.doUploads(token: token, fileExt: "pdf", body: TestImages.png(width: 2, height: 2)),
                    status: 400, code: -1)
        assertReply(client.doUploads(token: token, fileExt: "png", body: pdf), status: 400, code: -1)
        assertReply(client.doUploads(token: token, fileExt: "zip", body: pdf), status: 400, code: -1)
        assertReply(client.doUploads(token: token, fileExt: "txt", body: Data([0x00, 0x01, 0xFF, 0xFE, 0x00])),
                    status: 400, code: -1)
        // An empty body.
        assertReply(client.doUploads(token: token, fileExt: "pdf", body: Data()), status: 400, code: -1)
        // No fileExt.
        assertReply(client.postRaw("/chat/doUploads", body: pdf, contentType: "application/octet-stream",
                                   headers: ["Authorization": "Bearer \(token)"]),
                    status: 400, code: -1, infoContains: "fileExt")
    }

    func testDoUploadsOverTheLimitIs413WithAnEnvelope() {
        // 300 MiB announced, none sent: refused from the Content-Length alone.
        let reply = RawHTTP.send(stack, method: "POST", target: "/chat/doUploads?fileExt=zip",
                                 headers: ["Authorization": "Bearer \(account.token)",
                                           "Content-Type": "application/octet-stream"],
                                 contentLength: 300 << 20)
        assertReply(reply, status: 413, code: -1)
    }

    func testUploadsNeedAToken() {
        let (body, type) = multipartBody([MultipartPart(name: "fileUpload", filename: "a.png", contentType: "image/png",
                                                        data: TestImages.png(width: 1, height: 1))])
        assertReply(client.postRaw("/chat/uploadImage", body: body, contentType: type), status: 401, code: -1)
        assertReply(client.postRaw("/chat/doUploads", query: ["fileExt": "pdf"], body: Data("%PDF-1.4\n".utf8),
                                   contentType: "application/octet-stream"), status: 401, code: -1)
    }

    func testUploadsDirectoryIsNotBrowsableAndNotWritable() {
        let listing = client.fetch("/uploads/")
        XCTAssertNotEqual(listing.status, 200, "the uploads folder must not be listed")
        let missing = client.fetch("/uploads/2020/01/abcdefghijklmnopqrstuvwx.png")
        XCTAssertEqual(missing.status, 404)
        var put = URLRequest(url: URL(string: stack.baseURL + "/uploads/2020/01/abcdefghijklmnopqrstuvwx.png")!)
        put.httpMethod = "PUT"
        put.httpBody = Data("x".utf8)
        let written = client.perform(put)
        XCTAssertTrue([403, 405].contains(written.status), "PUT on /uploads/: \(written.status)")
    }
}
