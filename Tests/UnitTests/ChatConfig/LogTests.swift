import XCTest
@testable import ChatConfig
@testable import ChatPostgres

final class LogTests: XCTestCase {
    func testTimestampIsISO8601WithMilliseconds() {
        let stamp = Log.timestamp()
        XCTAssertEqual(stamp.count, 24)
        XCTAssertNotNil(stamp.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#, options: .regularExpression), stamp)
        let year = Calendar(identifier: .gregorian).component(.year, from: Date())
        XCTAssertTrue(stamp.hasPrefix(String(year)) || stamp.hasPrefix(String(year - 1)))
    }

    func testFieldValuesAreQuotedWhenNeeded() {
        XCTAssertEqual(Log.quote("plain"), "plain")
        XCTAssertEqual(Log.quote("two words"), "\"two words\"")
        XCTAssertEqual(Log.quote("line\nbreak \"q\""), "\"line\\nbreak \\\"q\\\"\"")
        XCTAssertEqual(Log.quote(""), "\"\"")
    }

    func testAccessLinesAreWrittenInWholeLinesOfAtMostPipeBuf() {
        var text = ""
        for n in 0..<200 { text += "line \(n) " + String(repeating: "x", count: n % 90) + "\n" }
        text += String(repeating: "L", count: 5000) + "\n" // one line longer than the limit
        text += "last\n"
        let bytes = Array(text.utf8)
        let ranges = Log.AccessBuffer.chunks(of: bytes, limit: Log.AccessBuffer.limit)
        XCTAssertGreaterThan(ranges.count, 2)
        var joined: [UInt8] = []
        var expectedStart = 0
        for range in ranges {
            XCTAssertEqual(range.lowerBound, expectedStart, "the chunks are consecutive")
            expectedStart = range.upperBound
            XCTAssertEqual(bytes[range.upperBound - 1], 0x0A, "each chunk ends with a whole line")
            if range.count > Log.AccessBuffer.limit {
                XCTAssertFalse(bytes[range.lowerBound..<(range.upperBound - 1)].contains(0x0A), "only a single long line may pass the limit")
            }
            joined += bytes[range]
        }
        XCTAssertEqual(joined, bytes)
    }
}

final class LogQuotingTests: XCTestCase {
    /// No value can start a line of its own or hide text on a terminal.
    func testControlCharactersAreEscaped() {
        XCTAssertEqual(Log.quote("a\tb"), "\"a\\tb\"")
        XCTAssertEqual(Log.quote("a\rb"), "\"a\\rb\"")
        XCTAssertEqual(Log.quote("\u{1B}[31mred"), "\"\\u001b[31mred\"")
        XCTAssertEqual(Log.quote("x\u{7F}\u{85}\u{2028}y"), "\"x\\u007f\\u0085\\u2028y\"")
        XCTAssertEqual(Log.quote("名字"), "\"名字\"")
        for value in ["a\nb", "c\rd", "\u{0}", "\u{2029}"] {
            XCTAssertFalse(Log.quote(value).unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x2028 || $0.value == 0x2029 },
                           "an unescaped control character in \(Log.quote(value))")
        }
    }
}
