import XCTest
@testable import ChatPostgres
@testable import Groups

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

    func testSureGramsAreTheInnerOnesOfPlainCharacters() {
        XCTAssertEqual(GroupsFeature.sureGrams(of: "俱乐部"), ["乐"], "three characters: the middle one")
        XCTAssertEqual(GroupsFeature.sureGrams(of: "北京摄影"), ["京摄"])
        XCTAssertEqual(GroupsFeature.sureGrams(of: "coffee"), ["of", "ff", "fe"])
        XCTAssertEqual(GroupsFeature.sureGrams(of: "篮球yoga"), ["球y", "yo", "og"])
        XCTAssertEqual(GroupsFeature.sureGrams(of: "swift"), ["w", "f"], "never \"i\": PostgreSQL lowers \"İ\" to it")
        // Whitespace is never in a gram; a character between whitespace and the end stands alone.
        XCTAssertEqual(GroupsFeature.sureGrams(of: "上海 coffee"), ["co", "of", "ff", "fe", "海"])
        XCTAssertEqual(GroupsFeature.sureGrams(of: "linux 42"), ["nu", "ux", "4"])
        XCTAssertEqual(GroupsFeature.sureGrams(of: "a b"), [])
        XCTAssertEqual(GroupsFeature.sureGrams(of: "ab"), [])
        // Combining sequences, emoji and scripts outside the list are not sure; their neighbours are.
        XCTAssertEqual(GroupsFeature.sureGrams(of: "xe\u{301}yz"), ["y"])
        XCTAssertEqual(GroupsFeature.sureGrams(of: "x😀yz"), ["y"])
        XCTAssertEqual(GroupsFeature.sureGrams(of: "дом"), [])
        XCTAssertEqual(GroupsFeature.sureGrams(of: "a%_\\b"), ["%_", "_\\"], "LIKE's wildcards are plain grams")
        XCTAssertEqual(GroupsFeature.sureGrams(of: "abababab"), ["ba", "ab"], "each gram once")
        XCTAssertEqual(GroupsFeature.sureGrams(of: "0123456789").count, 6, "at most six")
    }

    func testTextArrayLiteralQuotesEveryElement() {
        XCTAssertEqual(PGTextArray(["a", "b c", "q\"uote", "back\\slash", "{}", ","]).pgText,
                       #"{"a","b c","q\"uote","back\\slash","{}",","}"#)
        XCTAssertEqual(PGArray([3, 1, 2]).pgText, "{3,1,2}")
    }

    func testSortedContainsFindsExactlyTheMembersOfASortedList() {
        let sorted: [Int64] = [3, 7, 7, 10, 42, 10_001]
        for value: Int64 in [3, 7, 10, 42, 10_001] { XCTAssertTrue(RenderedMemberList.sortedContains(sorted, value), "\(value)") }
        for value: Int64 in [-1, 0, 4, 8, 41, 43, 10_000, 10_002] { XCTAssertFalse(RenderedMemberList.sortedContains(sorted, value), "\(value)") }
        XCTAssertFalse(RenderedMemberList.sortedContains([], 1))
    }
}
