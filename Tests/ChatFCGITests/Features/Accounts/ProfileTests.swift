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
}
