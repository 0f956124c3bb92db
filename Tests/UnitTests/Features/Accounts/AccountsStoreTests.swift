import XCTest
@testable import ChatPostgres
@testable import Accounts

/// The statements the store builds to ride with the session check: the session check first, the
/// pieces embedded with their parameters renumbered after it.
final class AccountsStoreTests: XCTestCase {
    let who = AccountsStore.liveSession(tokenHash: [1, 2, 3])

    func testReadyUserEmbedsThePartsColumnsAfterTheProfile() {
        let extra: [SQL] = ["(SELECT \(Int64(7))) AS a", "u.b AS b"]
        let statement = AccountsStore.readyUser(who: who, extraColumns: extra)
        XCTAssertTrue(statement.text.hasPrefix("WITH who AS (SELECT s.user_id AS who_id"))
        XCTAssertTrue(statement.text.contains("u.pay_pwd_hash IS NOT NULL AS has_pay_pwd, (SELECT $2) AS a, u.b AS b\nFROM who"),
                      statement.text)
        XCTAssertEqual(statement.binds.count, 2)
        XCTAssertEqual(statement.binds[1]?.pgText, "7")
    }

    func testUserByIdWithoutRelationsJoinsOnlyTheUser() {
        let statement = AccountsStore.userById(who: who, destId: 42, relation: nil)
        XCTAssertTrue(statement.text.hasSuffix("FROM who LEFT JOIN users u ON u.id = $2 "), statement.text)
        XCTAssertEqual(statement.binds.map { $0?.pgText }, ["\\x010203", "42"])
        let related = AccountsStore.userById(who: who, destId: 42) { me, other in
            ("r.remark AS relation_remark, false AS relation_blocked", "LEFT JOIN r ON r.a = \(me) AND r.b = \(other)")
        }
        XCTAssertTrue(related.text.contains(", r.remark AS relation_remark, false AS relation_blocked\nFROM who"), related.text)
        XCTAssertTrue(related.text.hasSuffix("LEFT JOIN r ON r.a = who.who_id AND r.b = u.id"), related.text)
    }

    /// The same expression as sql/0006's trigger, for a session's change id.
    func testChangeIdExpression() {
        XCTAssertEqual(AccountsStore.changeId(ofTokenHash: "token_hash").text,
                       "('x' || encode(substr(token_hash, 1, 8), 'hex'))::bit(64)::bigint")
    }
}
