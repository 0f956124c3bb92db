import Foundation
import XCTest
@testable import ChatApp
@testable import ChatSecurity
@testable import ChatPostgres
@testable import ChatCache
@testable import Accounts

final class AccountCachesTests: XCTestCase {
    func makeCaches() -> (AccountCaches, ChangeStripes) {
        let stripes = ChangeStripes()
        stripes.setListening(true)
        return (AccountCaches(budgets: CacheRegistry.budgets(MemberListsTests.config(lists: 0, copies: 1)), stripes: { stripes }), stripes)
    }

    func keep(_ caches: AccountCaches, _ hash: [UInt8], userId: Int64, touched: Bool) {
        let version = try! XCTUnwrap(caches.sessionVersion(tokenHash: hash))
        caches.storeSession(tokenHash: hash, userId: userId, touched: touched, version: version)
    }

    func testASessionReadAsRecentlyUsedIsTouchedOnItsNextUseOnly() {
        let (caches, _) = makeCaches()
        let hash = Crypto.sha256(Array("a".utf8))
        keep(caches, hash, userId: 7, touched: false)
        // Not touched by the request that read it: taken as used a minute ago, so due now, once.
        XCTAssertEqual(caches.session(tokenHash: hash)?.userId, 7)
        XCTAssertEqual(caches.session(tokenHash: hash)?.touchNeeded, false)

        let touchedHash = Crypto.sha256(Array("b".utf8))
        keep(caches, touchedHash, userId: 8, touched: true)
        XCTAssertEqual(caches.session(tokenHash: touchedHash)?.touchNeeded, false)
    }

    func testASessionEndsWithItsKeyAndNeverAnswersForAnotherToken() {
        let (caches, stripes) = makeCaches()
        let hash = Crypto.sha256(Array("c".utf8))
        keep(caches, hash, userId: 9, touched: true)
        var lookalike = hash
        lookalike[31] ^= 1
        XCTAssertNil(caches.session(tokenHash: lookalike), "same key (first 8 bytes), another token")
        XCTAssertNotNil(caches.session(tokenHash: hash))
        stripes.bump(ChangeStripes.Key(Sessions.changeKind, Sessions.changeId(tokenHash: hash)))
        XCTAssertNil(caches.session(tokenHash: hash))
    }

    func testNothingIsKeptWithoutBudgetOrWhileTheListenerIsAway() {
        let stripes = ChangeStripes()
        let off = AccountCaches(budgets: .none, stripes: { stripes })
        stripes.setListening(true)
        XCTAssertNil(off.sessionVersion(tokenHash: Crypto.sha256([1])))
        XCTAssertNil(off.profiles.version(of: 1))

        let (caches, shared) = makeCaches()
        let hash = Crypto.sha256([2])
        keep(caches, hash, userId: 3, touched: true)
        shared.setListening(false)
        XCTAssertNil(caches.session(tokenHash: hash))
        XCTAssertNil(caches.sessionVersion(tokenHash: hash))
    }
}
