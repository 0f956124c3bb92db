import XCTest
@testable import ChatConfig
@testable import ChatCache
@testable import ChatApp

final class CacheRegistryTests: XCTestCase {
    /// The configuration bounds the caches: the kinds of each pool together get the pool at most.
    func testTheSharesOfEachPoolAddUpToThePoolAtMost() {
        var config = Config()
        config.listCacheMiB = 64
        config.profileCacheMiB = 32
        let budgets = CacheRegistry.budgets(config)
        XCTAssertLessThanOrEqual(budgets.total(of: .lists), 64 << 20)
        XCTAssertLessThanOrEqual(budgets.total(of: .copies), 32 << 20)
        XCTAssertGreaterThan(budgets.total(of: .lists), 60 << 20, "most of the pool is given out")
        for share in CacheRegistry.shares { XCTAssertGreaterThan(budgets.bytes(for: share.kind), 0, share.kind.name) }
        config.profileCacheMiB = 0
        XCTAssertEqual(CacheRegistry.budgets(config).total(of: .copies), 0, "a pool of 0 turns its kinds off")
    }

    /// Every cache the application makes is one of the registry's kinds, and every kind is made.
    func testEveryCacheTheApplicationMakesIsInTheRegistry() {
        let before = CacheStatistics.liveKindNames()
        let application = Application.makeRouter(config: Config())
        var made = CacheStatistics.liveKindNames()
        for name in before { if let index = made.firstIndex(of: name) { made.remove(at: index) } }
        withExtendedLifetime(application) {}
        let registered = Set(CacheRegistry.shares.map(\.kind.name))
        XCTAssertEqual(Set(made).subtracting(registered), [], "caches without a kind in CacheRegistry")
        XCTAssertEqual(registered.subtracting(made), [], "kinds in CacheRegistry that nothing makes")
    }

    func testCacheBudgetsRefuseNothingButGiveEachKindItsShare() {
        let a = CacheKind("a", pool: .lists), b = CacheKind("b", pool: .copies)
        let budgets = CacheBudgets(pools: [.lists: 64 << 10, .copies: 640], shares: [.init(a, sixtyFourths: 16), .init(b, sixtyFourths: 64)])
        XCTAssertEqual(budgets.bytes(for: a), 16 << 10)
        XCTAssertEqual(budgets.bytes(for: b), 640)
        XCTAssertEqual(budgets.bytes(for: CacheKind("unlisted", pool: .lists)), 0, "an unlisted kind keeps nothing")
    }
}
