import XCTest
@testable import ChatCache

final class CacheMapTests: XCTestCase {
    func testOnlyTheStoredVersionIsReturned() {
        let cache = VersionedCache<[UInt8]>(budget: 1 << 20) { $0.count }
        XCTAssertNil(cache.value(for: 1, version: 5))
        cache.store([1, 2, 3], for: 1, version: 5)
        XCTAssertEqual(cache.value(for: 1, version: 5), [1, 2, 3])
        XCTAssertNil(cache.value(for: 1, version: 6), "a newer version is a miss")
        XCTAssertNil(cache.value(for: 1, version: 4), "so is an older one")
        XCTAssertNil(cache.value(for: 2, version: 5), "ids are separate")
    }

    func testAnOlderCopyNeverReplacesANewerOne() {
        let cache = VersionedCache<[UInt8]>(budget: 1 << 20) { $0.count }
        cache.store([9], for: 1, version: 9)
        cache.store([8], for: 1, version: 8)
        XCTAssertEqual(cache.value(for: 1, version: 9), [9])
        XCTAssertNil(cache.value(for: 1, version: 8))
        cache.store([10], for: 1, version: 10)
        XCTAssertEqual(cache.value(for: 1, version: 10), [10])
        XCTAssertEqual(cache.count, 1)
    }

    func testTheBudgetEvictsTheLeastRecentlyUsed() {
        let cache = VersionedCache<[UInt8]>(budget: 1000) { $0.count }
        for id in 1...4 { cache.store([UInt8](repeating: 0, count: 240), for: Int64(id), version: 1) }
        XCTAssertNotNil(cache.value(for: 1, version: 1)) // 1 is now the most recently used
        cache.store([UInt8](repeating: 0, count: 240), for: 5, version: 1) // 1200 > 1000: evict to <= 750
        XCTAssertNotNil(cache.value(for: 1, version: 1))
        XCTAssertNotNil(cache.value(for: 5, version: 1))
        XCTAssertNil(cache.value(for: 2, version: 1))
        XCTAssertNil(cache.value(for: 3, version: 1))
        XCTAssertEqual(cache.count, 3)
    }

    func testAZeroBudgetKeepsNothing() {
        let cache = VersionedCache<[UInt8]>(budget: 0) { $0.count + 1 }
        cache.store([1], for: 1, version: 1)
        XCTAssertNil(cache.value(for: 1, version: 1))
    }

    func testConcurrentUseIsSafe() {
        let cache = VersionedCache<[UInt8]>(budget: 50_000) { $0.count }
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for i in 0..<2000 {
                let id = Int64(i % 97), version = Int64(i / 97)
                if let value = cache.value(for: id, version: version) {
                    XCTAssertEqual(value.first, UInt8(truncatingIfNeeded: version))
                } else {
                    cache.store([UInt8](repeating: UInt8(truncatingIfNeeded: version), count: 100 + thread), for: id, version: version)
                }
            }
        }
        XCTAssertLessThanOrEqual(cache.count, 97)
    }
}
