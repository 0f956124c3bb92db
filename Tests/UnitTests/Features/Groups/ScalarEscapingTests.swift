import XCTest
@testable import ChatPostgres
@testable import Groups

/// Array literals and LIKE patterns are escaped scalar by scalar, as PostgreSQL reads them: a
/// combining mark after `"`, `\\`, `%` or `_` makes one Character with it in Swift.
final class ScalarEscapingTests: XCTestCase {
    func testTextArrayEscapesQuotesAndBackslashesFollowedByCombiningMarks() {
        XCTAssertEqual(PGTextArray(["a", "b\"c", "d\\e"]).pgText, #"{"a","b\"c","d\\e"}"#)
        // `"` + U+0301 is one Character in Swift: the quote must still be escaped.
        XCTAssertEqual(PGTextArray(["\"\u{301}x"]).pgText, "{\"\\\"\u{301}x\"}")
        XCTAssertEqual(PGTextArray(["\\\u{301}"]).pgText, "{\"\\\\\u{301}\"}")
        XCTAssertEqual(PGTextArray([]).pgText, "{}")
    }

    func testLikePatternEscapesWildcardsFollowedByCombiningMarks() {
        XCTAssertEqual(GroupsFeature.containsPattern("%\u{301}x"), "%\\%\u{301}x%")
        XCTAssertEqual(GroupsFeature.containsPattern("_\u{301}"), "%\\_\u{301}%")
        XCTAssertEqual(GroupsFeature.containsPattern("\\\u{301}"), "%\\\\\u{301}%")
        XCTAssertEqual(GroupsFeature.containsPattern("\u{301}x"), "%\u{301}x%")
    }
}
