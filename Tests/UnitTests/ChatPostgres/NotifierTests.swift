import XCTest
@testable import ChatPostgres

final class NotifierTests: XCTestCase {
    func testFewKeysMakeOneSortedPayload() {
        XCTAssertEqual(Notifier.payloads([30, 4, 1_000_000_007]), ["4,30,1000000007"])
        XCTAssertEqual(Notifier.payloads([]), [])
    }

    func testManyKeysAreSplitUnderThePayloadLimitAndNoneIsLost() {
        let keys = Set((0..<5000).map { Int64(10_000_000_000 + $0 * 7) })
        let payloads = Notifier.payloads(keys)
        XCTAssertGreaterThan(payloads.count, 1)
        var seen: [Int64] = []
        for payload in payloads {
            XCTAssertLessThanOrEqual(payload.utf8.count, Notifier.payloadLimit)
            XCTAssertLessThan(payload.utf8.count, 8000, "PostgreSQL's limit")
            seen += payload.split(separator: ",").map { Int64($0)! }
        }
        XCTAssertEqual(seen, keys.sorted())
    }
}
