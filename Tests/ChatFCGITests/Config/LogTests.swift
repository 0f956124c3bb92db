import XCTest
@testable import ChatFCGI

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
}
