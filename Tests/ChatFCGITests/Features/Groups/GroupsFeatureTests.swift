import XCTest
@testable import ChatFCGI

final class GroupsFeatureTests: XCTestCase {
    func testGramsCoverEveryOneAndTwoCharacterPiece() {
        XCTAssertEqual(GroupsFeature.grams(of: "家人群"), ["人", "人群", "家", "家人", "群"])
        XCTAssertEqual(GroupsFeature.grams(of: "Ab c"), ["a", "ab", "b", "c"])
        XCTAssertEqual(GroupsFeature.grams(of: ""), [])
    }

    func testContainsPatternEscapesLikeWildcards() {
        XCTAssertEqual(GroupsFeature.containsPattern("abc"), "%abc%")
        XCTAssertEqual(GroupsFeature.containsPattern("50%_off\\"), "%50\\%\\_off\\\\%")
    }

    func testTextArrayLiteralQuotesEveryElement() {
        XCTAssertEqual(PGTextArray(["a", "b c", "q\"uote", "back\\slash", "{}", ","]).pgText,
                       #"{"a","b c","q\"uote","back\\slash","{}",","}"#)
        XCTAssertEqual(PGArray([3, 1, 2]).pgText, "{3,1,2}")
    }
}
