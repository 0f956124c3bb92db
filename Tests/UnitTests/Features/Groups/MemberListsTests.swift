import XCTest
@testable import ChatApp
@testable import ChatConfig
@testable import ChatCache
@testable import Groups

final class MemberListsTests: XCTestCase {
    static func config(lists: Int, copies: Int) -> Config {
        var config = Config()
        config.listCacheMiB = lists
        config.profileCacheMiB = copies
        return config
    }

    func testGroupCopiesAreKeptOnlyWhenAskedForAndWhileTheCountersCanBeTrusted() {
        let stripes = ChangeStripes()
        stripes.setListening(true)
        // Copies draw on profile_cache_mib: without it, none are kept.
        let off = GroupListCache(budgets: CacheRegistry.budgets(Self.config(lists: 1, copies: 0)), stripes: { stripes })
        XCTAssertFalse(off.copies.isEnabled)
        XCTAssertNil(off.copies.version(of: 5), "copies off: nothing may be stored")

        let cache = GroupListCache(budgets: CacheRegistry.budgets(Self.config(lists: 1, copies: 1)), stripes: { stripes })
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
