import Foundation
import XCTest
@testable import ChatSecurity

final class IdNumberTests: XCTestCase {

    /// Builds a fixture: appends the GB 11643-1999 check character to 17 digits.
    /// Independent of the implementation so it can construct ids with a deliberately bad date.
    private func withCheck(_ first17: String) -> String {
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        let sum = zip(first17, weights).reduce(0) { $0 + Int(String($1.0))! * $1.1 }
        return first17 + String(Array("10X98765432")[sum % 11])
    }

    func testKnownValidIds() {
        // The classic public example (Beijing Chaoyang, 1949-12-31), check character X.
        XCTAssertTrue(IdNumber.isValid("11010519491231002X"))
        XCTAssertTrue(IdNumber.isValid("11010519491231002x"))   // lower-case x accepted
        XCTAssertTrue(IdNumber.isValid("11010119900307803X"))
        // Another widely published sample: checksum is right but the birth year (1880) is
        // before the 1900 lower bound, so it is rejected.
        XCTAssertFalse(IdNumber.isValid("440524188001010014"))
        XCTAssertTrue(IdNumber.isValid(withCheck("44030119900101123")))
    }

    func testFixtureHelperAgreesWithKnownExample() {
        XCTAssertEqual(withCheck("11010519491231002"), "11010519491231002X")
    }

    func testWrongCheckCharacter() {
        XCTAssertFalse(IdNumber.isValid("110105194912310029"))
        XCTAssertFalse(IdNumber.isValid("110105194912310021"))
        XCTAssertFalse(IdNumber.isValid("110101199003078031"))
        XCTAssertFalse(IdNumber.isValid("11010119900307803x".replacingOccurrences(of: "x", with: "0")))
    }

    func testBadDates() {
        XCTAssertFalse(IdNumber.isValid(withCheck("11010519990230123")))  // Feb 30
        XCTAssertFalse(IdNumber.isValid(withCheck("11010519991301123")))  // month 13
        XCTAssertFalse(IdNumber.isValid(withCheck("11010519990001123")))  // month 0
        XCTAssertFalse(IdNumber.isValid(withCheck("11010519990100123")))  // day 0
        XCTAssertFalse(IdNumber.isValid(withCheck("11010519990431123")))  // Apr 31
        XCTAssertFalse(IdNumber.isValid(withCheck("11010518991231123")))  // before 1900
        XCTAssertFalse(IdNumber.isValid(withCheck("11010519000229123")))  // 1900 not leap
        XCTAssertTrue(IdNumber.isValid(withCheck("11010520000229123")))   // 2000 is leap
        XCTAssertTrue(IdNumber.isValid(withCheck("11010519000101123")))   // lower bound
        XCTAssertFalse(IdNumber.isValid(withCheck("11010530000101123")))  // future
    }

    func testTodayBoundary() {
        let today = (year: 2024, month: 6, day: 15)
        XCTAssertTrue(IdNumber.isValid(withCheck("11010520240615123"), today: today))
        XCTAssertFalse(IdNumber.isValid(withCheck("11010520240616123"), today: today))
        XCTAssertFalse(IdNumber.isValid(withCheck("11010520240701123"), today: today))
        XCTAssertFalse(IdNumber.isValid(withCheck("11010520250101123"), today: today))
        // Against the real clock a 2020 birth date is in the past.
        XCTAssertTrue(IdNumber.isValid(withCheck("11010520200101123")))
    }

    func testCivilDateConversion() {
        XCTAssertTrue(IdNumber.civilDate(daysSinceEpoch: 0) == (1970, 1, 1))
        XCTAssertTrue(IdNumber.civilDate(daysSinceEpoch: 11_017) == (2000, 3, 1))
        XCTAssertTrue(IdNumber.civilDate(daysSinceEpoch: 11_016) == (2000, 2, 29))
        XCTAssertTrue(IdNumber.civilDate(daysSinceEpoch: -1) == (1969, 12, 31))
    }

    func testMalformed() {
        XCTAssertFalse(IdNumber.isValid(""))
        XCTAssertFalse(IdNumber.isValid("11010519491231002"))       // 17 chars
        XCTAssertFalse(IdNumber.isValid("11010519491231002X0"))     // 19 chars
        XCTAssertFalse(IdNumber.isValid("110105491231002"))         // old 15-digit form
        XCTAssertFalse(IdNumber.isValid(" 11010519491231002X"))
        XCTAssertFalse(IdNumber.isValid("11010519491231002Y"))
        XCTAssertFalse(IdNumber.isValid("1101051949123100XX"))      // X only at the end
        XCTAssertFalse(IdNumber.isValid("1101051949123１002X"))     // full-width digit
        XCTAssertFalse(IdNumber.isValid(withCheck("01010519491231002")))  // leading 0
    }

    func testMask() {
        XCTAssertEqual(IdNumber.mask("110105194912311234"), "1101**********1234")
        XCTAssertEqual(IdNumber.mask("11010519491231002X"), "1101**********002X")
        XCTAssertEqual(IdNumber.mask("11010519491231002X").count, 18)
        XCTAssertEqual(IdNumber.mask("12345678"), "********")
        XCTAssertEqual(IdNumber.mask(""), "")
    }

    func testNormalized() {
        XCTAssertEqual(IdNumber.normalized("11010519491231002x"), "11010519491231002X")
        XCTAssertEqual(IdNumber.normalized("11010519491231002X"), "11010519491231002X")
        XCTAssertEqual(IdNumber.normalized("110101199003078031"), "110101199003078031")
    }
}
