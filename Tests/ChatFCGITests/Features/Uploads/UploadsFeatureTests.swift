import XCTest
@testable import ChatFCGI

final class UploadsFeatureTests: XCTestCase {
    func testStoredNamesAreRecognisedAndNothingElse() {
        XCTAssertTrue(UploadsFeature.isStoredName("2026/11/abcdefghijklmnopqrstuvwx.png"))
        XCTAssertTrue(UploadsFeature.isStoredName("2026/01/0123456789abcdefghijklmn.pdf"))
        XCTAssertFalse(UploadsFeature.isStoredName("2026/11/../../etc/passwd.png"))
        XCTAssertFalse(UploadsFeature.isStoredName("2026/11/ABCDEFGHIJKLMNOPQRSTUVWX.png"))
        XCTAssertFalse(UploadsFeature.isStoredName("2026/11/abcdefghijklmnopqrstuvwx.exe"))
        XCTAssertFalse(UploadsFeature.isStoredName("2026/11/short.png"))
        XCTAssertFalse(UploadsFeature.isStoredName(".tmp/abcdefghijklmnopqrstuvwx.part"))
    }
}
