import XCTest
@testable import ChatConfig
@testable import ChatSecurity
@testable import ChatPostgres
@testable import ChatCache
@testable import Groups

final class MemberListsTests: XCTestCase {
    func testGroupCopiesAreKeptOnlyWhenAskedForAndWhileTheCountersCanBeTrusted() {
        let stripes = ChangeStripes()
        stripes.setListening(true)
        let off = GroupListCache(budgetBytes: 1 << 20, copies: false, stripes: { stripes })
        XCTAssertFalse(off.copies.isEnabled)
        XCTAssertNil(off.copies.version(of: 5), "copies off: nothing may be stored")

        let cache = GroupListCache(budgetBytes: 1 << 20, copies: true, stripes: { stripes })
        let first = cache.copies.version(of: 5)
        XCTAssertNotNil(first)
        stripes.bump(ChangeStripes.Key(GroupCopy.kind, 5))
        let second = cache.copies.version(of: 5)
        XCTAssertNotEqual(second, first, "a worker's own bump")
        stripes.apply(payload: "g5")
        XCTAssertNotEqual(cache.copies.version(of: 5), second, "sql/0007's notification")
        stripes.setListening(false)
        XCTAssertNil(cache.copies.version(of: 5), "while the listener is away")
    }
}
