import XCTest
@testable import ChatPostgres
@testable import Accounts

final class ProfileTests: XCTestCase {
    func testMobileMasking() {
        XCTAssertEqual(Profile.mask(mobile: "+8613812345678"), "+86*******5678")
        XCTAssertEqual(Profile.mask(mobile: "+14155550123"), "+1******0123")
        XCTAssertEqual(Profile.mask(mobile: "+447700900123"), "+44******0123")
        XCTAssertEqual(Profile.mask(mobile: "+1234567"), "+****567")
        XCTAssertEqual(Profile.mask(mobile: "+123456"), "+***456")
        XCTAssertEqual(Profile.mask(mobile: "garbage"), "****")
    }

    /// Whatever its length, a masked mobile hides at least half of its digits, keeps its length,
    /// and what it shows is the number's own digits in place.
    func testMaskingHidesAtLeastHalfOfTheDigits() {
        for length in 1...15 {
            let digits = (0..<length).map { String(($0 * 7 + 3) % 10) }.joined()
            let masked = Array(Profile.mask(mobile: "+" + digits).dropFirst())
            XCTAssertEqual(masked.count, length)
            let hidden = masked.filter { $0 == "*" }.count
            XCTAssertGreaterThanOrEqual(hidden * 2, length, "\(digits) → \(String(masked))")
            for (shown, digit) in zip(masked, digits) where shown != "*" { XCTAssertEqual(shown, digit) }
        }
    }

    func testByteMaskingEqualsStringMasking() {
        for mobile in ["+8613812345678", "+14155550123", "+1234567", "+12", "+", "garbage", "", "+447700900123"] {
            var out: [UInt8] = []
            var copy = mobile
            copy.withUTF8 { Profile.appendMasked($0, to: &out) }
            XCTAssertEqual(String(decoding: out, as: UTF8.self), Profile.mask(mobile: mobile), mobile)
        }
    }

    /// sql/0004_list_versions.sql bumps the rendered lists when a profile column changes: every
    /// column of `Profile.columns` must be one its trigger watches, or an edit would show stale.
    func testListVersionTriggerWatchesEveryProfileColumn() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sql = try String(contentsOf: root.appendingPathComponent("sql/0004_list_versions.sql"), encoding: .utf8)
        let columns = Profile.columns.text.split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")[0].replacingOccurrences(of: "u.", with: "")
        }
        XCTAssertEqual(columns.count, 10)
        for column in columns where column != "id" {
            XCTAssertTrue(sql.contains("OLD.\(column) IS DISTINCT FROM NEW.\(column)"), column)
        }
    }
}
