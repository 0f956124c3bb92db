import XCTest
@testable import ChatFCGI

final class ProfileTests: XCTestCase {
    func testMobileMasking() {
        XCTAssertEqual(Profile.mask(mobile: "+8613812345678"), "+86138****5678")
        XCTAssertEqual(Profile.mask(mobile: "+14155550123"), "+141****0123")
        let short = Profile.mask(mobile: "+1234567")
        XCTAssertEqual(short.count, 8)
        XCTAssertFalse(short.contains("345"))
        XCTAssertEqual(Profile.mask(mobile: "garbage"), "****")
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
        let columns = Profile.columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "u.", with: "") }
        XCTAssertEqual(columns.count, Profile.columnCount)
        for column in columns where column != "id" {
            XCTAssertTrue(sql.contains("OLD.\(column) IS DISTINCT FROM NEW.\(column)"), column)
        }
    }
}
