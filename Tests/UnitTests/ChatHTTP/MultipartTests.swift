import XCTest
@testable import ChatPostgres
@testable import ChatHTTP

final class MultipartTests: XCTestCase {
    /// A part as reassembled from the event stream.
    private struct Part: Equatable {
        var headers: MultipartPartHeaders
        var data: [UInt8]
    }

    private static let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"

    /// Feeds `body` cut at `cuts` (increasing offsets), checks the event grammar
    /// (begin, data*, end) and returns the reassembled parts.
    private func parse(
        _ body: [UInt8], cuts: [Int] = [], boundary: String = MultipartTests.boundary,
        maxHeaderBytes: Int = 16384, maxParts: Int = 64
    ) throws -> [Part] {
        let parser = MultipartParser(boundary: boundary, maxHeaderBytes: maxHeaderBytes, maxParts: maxParts)
        var parts: [Part] = []
        var open = false
        let handler: (MultipartEvent) throws -> Void = { event in
            switch event {
            case .partBegin(let headers):
                XCTAssertFalse(open, "partBegin inside a part")
                open = true
                parts.append(Part(headers: headers, data: []))
            case .partData(let bytes):
                XCTAssertTrue(open, "partData outside a part")
                XCTAssertFalse(bytes.isEmpty, "empty partData")
                parts[parts.count - 1].data.append(contentsOf: bytes)
            case .partEnd:
                XCTAssertTrue(open, "partEnd outside a part")
                open = false
            }
        }
        var start = 0
        for cut in cuts + [body.count] {
            try body[start..<cut].withUnsafeBytes { try parser.feed($0, handler) }
            start = cut
        }
        try parser.finish()
        XCTAssertFalse(open, "part left open")
        return parts
    }

    private func assertBadRequest<T>(
        _ expression: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            XCTAssertEqual((error as? HTTPError)?.status, 400, "\(error)", file: file, line: line)
        }
    }

    private func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

    // MARK: - The split test

    /// A few KB of random bytes laced with CRLFs and every proper prefix of the delimiter
    /// followed by a wrong byte, plus sequences that repeat the delimiter's first bytes.
    private func trickyFileContent(delimiter: [UInt8]) -> [UInt8] {
        var generator = ParserTestRNG(seed: 7)
        var content: [UInt8] = []
        for length in 1..<delimiter.count {
            content += (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            content += delimiter[0..<length]
            // A byte that does not continue the delimiter.
            content.append(delimiter[length] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x"))
            content += [13, 10, 13, 13, 10, 10, 13]
        }
        // The boundary without the CRLF in front is just data, too.
        content += delimiter[2...]
        content += [13, 10, 45, 45, 13, 10, 45]
        content += (0..<1500).map { _ in UInt8.random(in: 0...255, using: &generator) }
        // Content may legitimately end with bytes that look like the delimiter's start.
        content += [13, 10, 45]
        return content
    }

    private func twoPartBody() -> (body: [UInt8], text: [UInt8], file: [UInt8]) {
        let delimiter = bytes("\r\n--" + Self.boundary)
        let text = bytes("Hello, 女子!\r\nSecond line --\(Self.boundary.prefix(10))")
        let file = trickyFileContent(delimiter: delimiter)
        // Sanity check on the test data itself: the real delimiter must not occur in it.
        XCTAssertNil(firstRange(of: delimiter, in: file))
        var body = bytes("preamble that is ignored\r\n")
        body += bytes("--\(Self.boundary)\r\n")
        body += bytes("Content-Disposition: form-data; name=\"message\"\r\n\r\n")
        body += text
        body += bytes("\r\n--\(Self.boundary)\r\n")
        body += bytes("Content-Disposition: form-data; name=\"file\"; filename=\"photo.bin\"\r\n")
        body += bytes("Content-Type: application/octet-stream\r\n\r\n")
        body += file
        body += bytes("\r\n--\(Self.boundary)--\r\nepilogue, also ignored\r\n--\(Self.boundary)\r\n")
        return (body, text, file)
    }

    /// Compares parts without dumping kilobytes of bytes when they differ.
    private func assertParts(
        _ actual: [Part], _ expected: [Part], _ context: String = "",
        file: StaticString = #filePath, line: UInt = #line
    ) {
        guard actual != expected else { return }
        guard actual.count == expected.count else {
            return XCTFail("\(context): \(actual.count) parts instead of \(expected.count)", file: file, line: line)
        }
        for (index, (got, want)) in zip(actual, expected).enumerated() where got != want {
            XCTAssertEqual(got.headers, want.headers, "\(context): part \(index)", file: file, line: line)
            if got.data != want.data {
                let firstDifference = zip(got.data, want.data).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    ?? min(got.data.count, want.data.count)
                XCTFail("\(context): part \(index) has \(got.data.count) bytes instead of \(want.data.count), "
                        + "first difference at \(firstDifference)", file: file, line: line)
            }
        }
    }

    private func firstRange(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }

    private func expectedParts(text: [UInt8], file: [UInt8]) -> [Part] {
        [
            Part(headers: MultipartPartHeaders(name: "message"), data: text),
            Part(headers: MultipartPartHeaders(name: "file", filename: "photo.bin",
                                               contentType: "application/octet-stream"), data: file),
        ]
    }

    func testWholeBody() throws {
        let (body, text, file) = twoPartBody()
        XCTAssertGreaterThan(file.count, 2000)
        assertParts(try parse(body), expectedParts(text: text, file: file), "whole body")
    }

    func testSplitIntoTwoChunksAtEveryPosition() throws {
        let (body, text, file) = twoPartBody()
        let expected = expectedParts(text: text, file: file)
        for split in 0...body.count {
            let parts = try parse(body, cuts: [split])
            assertParts(parts, expected, "split at \(split)")
            // One report is enough to debug; thousands would drown it.
            if parts != expected { return }
        }
    }

    func testOneByteAtATime() throws {
        let (body, text, file) = twoPartBody()
        assertParts(try parse(body, cuts: Array(1..<body.count)), expectedParts(text: text, file: file), "byte by byte")
    }

    func testRandomChunking() throws {
        let (body, text, file) = twoPartBody()
        let expected = expectedParts(text: text, file: file)
        var generator = ParserTestRNG(seed: 99)
        for _ in 0..<200 {
            var cuts: [Int] = []
            var position = 0
            while true {
                position += Int.random(in: 1...80, using: &generator)
                if position >= body.count { break }
                cuts.append(position)
            }
            let parts = try parse(body, cuts: cuts)
            assertParts(parts, expected, "cuts \(cuts)")
            if parts != expected { return }
        }
    }

    // MARK: - Framing details

    func testBoundaryAtVeryStartPaddingAndEmptyParts() throws {
        let body = bytes("--b \t\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--b\t\r\n"
            + "Content-Disposition: form-data; name=\"b\"\r\n\r\nx\r\n--b--  \r\n")
        XCTAssertEqual(try parse(body, boundary: "b"), [
            Part(headers: MultipartPartHeaders(name: "a"), data: []),
            Part(headers: MultipartPartHeaders(name: "b"), data: bytes("x")),
        ])
    }

    func testBoundaryAfterCRLFAtStart() throws {
        let body = bytes("\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--")
        XCTAssertEqual(try parse(body, boundary: "b"), [Part(headers: MultipartPartHeaders(name: "a"), data: bytes("1"))])
    }

    func testDelimiterFollowedByOtherByteIsContent() throws {
        // "\r\n--bX" is not a delimiter line (RFC 2046 allows only "--", padding or CRLF after
        // the boundary), so it is content. Every split position is tried.
        let body = bytes("--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--bX2\r\n--bb\r\n--b--")
        for split in 0...body.count {
            XCTAssertEqual(try parse(body, cuts: [split], boundary: "b"),
                           [Part(headers: MultipartPartHeaders(name: "a"), data: bytes("1\r\n--bX2\r\n--bb"))])
        }
    }

    func testNoPartsIsAccepted() throws {
        XCTAssertEqual(try parse(bytes("--b--\r\n"), boundary: "b"), [])
    }

    func testHeaderDetails() throws {
        let body = bytes("--b\r\n"
            + "X-Ignored: whatever\r\n"
            + "content-DISPOSITION:   Form-Data ; NAME=\"say \\\"hi\\\" \\\\ ok\" ;filename=\"a;b.txt\";"
            + " filename*=UTF-8''ignored\r\n"
            + "CONTENT-TYPE: text/plain;\r\n charset=utf-8\r\n"
            + "\r\nbody\r\n--b--")
        XCTAssertEqual(try parse(body, boundary: "b"), [
            Part(headers: MultipartPartHeaders(name: "say \"hi\" \\ ok", filename: "a;b.txt",
                                               contentType: "text/plain; charset=utf-8"),
                 data: bytes("body")),
        ])
    }

    func testUTF8FieldAndFileNames() throws {
        let body = bytes("--b\r\nContent-Disposition: form-data; name=\"名字\"; filename=\"照片.png\"\r\n\r\n\r\n--b--")
        XCTAssertEqual(try parse(body, boundary: "b"),
                       [Part(headers: MultipartPartHeaders(name: "名字", filename: "照片.png"), data: [])])
    }

    func testEpilogueIsIgnoredEvenIfMalformed() throws {
        let body = bytes("--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--garbage\r\n--b\r\n\r\n")
        XCTAssertEqual(try parse(body, boundary: "b").count, 1)
    }

    // MARK: - Malformed input

    func testMissingClosingBoundaryThrows() {
        let (body, _, _) = twoPartBody()
        let truncated = Array(body[..<firstRange(of: bytes("\r\n--\(Self.boundary)--"), in: body)!])
        assertBadRequest(try parse(truncated))
        // Also when only the final "--" is missing, or the body stops mid-delimiter.
        assertBadRequest(try parse(bytes("--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b"), boundary: "b"))
        assertBadRequest(try parse(bytes("--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--"), boundary: "b"))
        assertBadRequest(try parse(bytes("no boundary at all"), boundary: "b"))
        assertBadRequest(try parse([], boundary: "b"))
    }

    func testPartWithoutNameThrows() {
        for headers in [
            "Content-Disposition: form-data\r\n",
            "Content-Disposition: form-data; filename=\"x\"\r\n",
            "Content-Disposition: form-data; name=\"\"\r\n",
            "Content-Type: text/plain\r\n",
            "",
        ] {
            assertBadRequest(try parse(bytes("--b\r\n\(headers)\r\nx\r\n--b--"), boundary: "b"))
        }
    }

    func testMalformedHeadersThrow() {
        for headers in [
            "Content-Disposition: attachment; name=\"a\"\r\n",          // not form-data
            "Content-Disposition: form-data; name=\"a\r\n",             // unterminated quote
            "Content-Disposition: form-data; name=\"a\"; name=\"b\"\r\n", // duplicate name
            "Content-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; name=\"b\"\r\n",
            "Content-Disposition form-data; name=\"a\"\r\n",            // no colon
            " Content-Disposition: form-data; name=\"a\"\r\n",          // continuation first
            "Content Disposition: form-data; name=\"a\"\r\n",           // space in name
            "Content-Disposition: form-data; name=\"a\"\nX: y\r\n",     // bare LF
            "Content-Disposition: form-data; name=\"a\"\rX: y\r\n",     // bare CR
            "Content-Disposition: form-data; name=\"a\" junk\r\n",      // junk after quoted value
        ] {
            assertBadRequest(try parse(bytes("--b\r\n\(headers)\r\nx\r\n--b--"), boundary: "b"))
        }
        // Invalid UTF-8 in a name.
        var body = bytes("--b\r\nContent-Disposition: form-data; name=\"")
        body += [0xFF, 0xFE]
        body += bytes("\"\r\n\r\nx\r\n--b--")
        assertBadRequest(try parse(body, boundary: "b"))
    }

    func testBadBytesAfterBoundaryThrow() {
        for tail in ["--b-x", "--b\rx", "--b \r\r", "--b x\r\n"] {
            assertBadRequest(try parse(bytes(tail + "Content-Disposition: form-data; name=a\r\n\r\n\r\n--b--"), boundary: "b"))
        }
    }

    func testHeaderBlockTooLargeThrows() {
        let big = String(repeating: "a", count: 20000)
        let body = bytes("--b\r\nContent-Disposition: form-data; name=a\r\nX-Big: \(big)\r\n\r\nx\r\n--b--")
        assertBadRequest(try parse(body, boundary: "b"))
        assertBadRequest(try parse(body, cuts: Array(stride(from: 100, to: body.count, by: 100)), boundary: "b"))
        // An unterminated header block fails as soon as the limit is passed, without waiting for more.
        let parser = MultipartParser(boundary: "b", maxHeaderBytes: 64)
        XCTAssertNoThrow(try parser.feed(bytes("--b\r\n" + String(repeating: "h", count: 60))) { _ in })
        assertBadRequest(try parser.feed(bytes(String(repeating: "h", count: 10))) { _ in })
        // The limit counts the whole block: exactly at the limit is fine.
        let header = "Content-Disposition: form-data; name=a\r\n\r\n"
        XCTAssertEqual(try parse(bytes("--b\r\n\(header)x\r\n--b--"), boundary: "b",
                                 maxHeaderBytes: header.utf8.count).count, 1)
        assertBadRequest(try parse(bytes("--b\r\n\(header)x\r\n--b--"), boundary: "b",
                                   maxHeaderBytes: header.utf8.count - 1))
    }

    func testTooManyPartsThrows() {
        let part = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n"
        XCTAssertEqual(try parse(bytes(part + part + "--b--"), boundary: "b", maxParts: 2).count, 2)
        assertBadRequest(try parse(bytes(part + part + part + "--b--"), boundary: "b", maxParts: 2))
    }

    func testParserIsUnusableAfterAnError() {
        let parser = MultipartParser(boundary: "b")
        assertBadRequest(try parser.feed(bytes("--b\r\n\r\n")) { _ in })
        assertBadRequest(try parser.feed(bytes("--b--")) { _ in })
        assertBadRequest(try parser.finish())
    }

    func testHandlerErrorPropagates() {
        struct Stop: Error {}
        let parser = MultipartParser(boundary: "b")
        XCTAssertThrowsError(try parser.feed(bytes("--b\r\nContent-Disposition: form-data; name=a\r\n\r\n")) { _ in
            throw Stop()
        }) { XCTAssertTrue($0 is Stop) }
        XCTAssertThrowsError(try parser.feed(bytes("x")) { _ in })
    }

    func testInvalidBoundaryGivenToParserThrowsInsteadOfTrapping() {
        for boundary in ["", "a\r\nb", String(repeating: "x", count: 71), "trailing "] {
            let parser = MultipartParser(boundary: boundary)
            assertBadRequest(try parser.feed(bytes("--\(boundary)--")) { _ in })
        }
    }

    // MARK: - Boundary extraction

    func testBoundaryFromContentType() {
        let cases: [(String, String?)] = [
            ("multipart/form-data; boundary=XYZ", "XYZ"),
            ("multipart/form-data;boundary=XYZ", "XYZ"),
            ("Multipart/Form-Data; BOUNDARY=XYZ", "XYZ"),
            ("multipart/form-data; boundary=\"a b:c?\"", "a b:c?"),
            ("multipart/form-data; boundary=\"a\\\"b\"", "a\"b"),
            ("multipart/form-data; charset=utf-8; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
             "----WebKitFormBoundary7MA4YWxkTrZu0gW"),
            ("multipart/form-data; boundary=abc ; foo=\"x;y\"", "abc"),
            ("multipart/form-data; foo=\"boundary=wrong\"; boundary=right", "right"),
            ("  multipart/form-data ;  boundary = abc  ", "abc"),
            ("multipart/form-data; boundary=" + String(repeating: "z", count: 70), String(repeating: "z", count: 70)),
            ("multipart/form-data; boundary=" + String(repeating: "z", count: 71), nil),
            ("multipart/form-data", nil),
            ("multipart/form-data;", nil),
            ("multipart/form-data; boundary=", nil),
            ("multipart/form-data; boundary=\"\"", nil),
            ("multipart/form-data; boundary=\"abc ", nil),
            ("multipart/form-data; boundary=\"abc \"", nil),
            ("multipart/form-data; boundary=a; boundary=b", nil),
            ("multipart/form-data; boundary=\"é\"", nil),
            ("multipart/mixed; boundary=abc", nil),
            ("multipart/form-datax; boundary=abc", nil),
            ("application/x-www-form-urlencoded", nil),
            ("", nil),
        ]
        for (contentType, expected) in cases {
            XCTAssertEqual(MultipartParser.boundary(fromContentType: contentType), expected, contentType)
        }
    }
}
