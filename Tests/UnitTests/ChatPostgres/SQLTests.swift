import Foundation
import XCTest
@testable import ChatConfig
@testable import ChatPostgres

final class SQLTests: XCTestCase {
    func testInterpolatedValuesAreBoundNeverSpliced() {
        let name = "x'); DROP TABLE users; --"
        let statement: SQL = "SELECT id FROM users WHERE name = \(name) AND id > \(Int64(7))"
        XCTAssertEqual(statement.text, "SELECT id FROM users WHERE name = $1 AND id > $2")
        XCTAssertEqual(statement.binds.map { $0?.pgText }, [name, "7"])
    }

    func testNilIsBoundAsNull() {
        let missing: String? = nil
        let statement: SQL = "UPDATE users SET city = COALESCE(\(missing), city)"
        XCTAssertEqual(statement.text, "UPDATE users SET city = COALESCE($1, city)")
        XCTAssertEqual(statement.binds.count, 1)
        XCTAssertNil(statement.binds[0])
    }

    func testEmbeddedFragmentsKeepTheirValuesWithPlaceholdersRenumbered() {
        let who: SQL = "SELECT user_id FROM sessions WHERE token_hash = \(PGBytes([0xAB])) AND user_id <> \(Int64(12))"
        let statement: SQL = "WITH who AS (\(who)) SELECT \(Int64(5)), \(who)"
        XCTAssertEqual(statement.text, "WITH who AS (SELECT user_id FROM sessions WHERE token_hash = $1 AND user_id <> $2) "
                       + "SELECT $3, SELECT user_id FROM sessions WHERE token_hash = $4 AND user_id <> $5")
        XCTAssertEqual(statement.binds.map { $0?.pgText }, ["\\xab", "12", "5", "\\xab", "12"])
    }

    func testRenumberingPassesOverDigitsThatAreNoPlaceholder() {
        XCTAssertEqual(SQL.renumbered("SELECT $1, 'a$' || $12, x1 FROM t$", offset: 3), "SELECT $4, 'a$' || $15, x1 FROM t$")
        XCTAssertEqual(SQL.renumbered("SELECT $2", offset: 0), "SELECT $2")
    }

    func testJoinedFragments() {
        let parts: [SQL] = ["a = \(Int64(1))", "b = \(Int64(2))", "c"]
        let joined = SQL.joined(parts, separator: " AND ")
        XCTAssertEqual(joined.text, "a = $1 AND b = $2 AND c")
        XCTAssertEqual(joined.binds.map { $0?.pgText }, ["1", "2"])
    }

    func testRawTextNeedsTheVisiblyDifferentCall() {
        let limit = 20
        let statement: SQL = "SELECT 1 LIMIT \(unsafeRaw: String(limit))"
        XCTAssertEqual(statement.text, "SELECT 1 LIMIT 20")
        XCTAssertTrue(statement.binds.isEmpty)
    }

    func testDescriptionShowsNoValue() {
        let token = "secret-token"
        let statement: SQL = "SELECT 1 FROM sessions WHERE token_hash = \(token)"
        XCTAssertFalse(statement.description.contains("secret"))
    }
}

/// Decoding by name against the test stack's PostgreSQL (skipped outside `make test`).
final class PGDecodingTests: XCTestCase {
    func connect() throws -> PGConnection { try TestStackConfig.database() }

    func testColumnsAreReadByNameWithTheirTypes() throws {
        let db = try connect()
        let nick = "nick"
        let row = try XCTUnwrap(try db.query("""
            SELECT \(Int64(42))::bigint AS id, \(nick)::text AS name, true AS flag, NULL::text AS head,
                   ARRAY[3, 1, 2]::bigint[] AS ids, 2.5::float8 AS ratio
            """).first)
        XCTAssertEqual(try row.decode("id", as: Int64.self), 42)
        XCTAssertEqual(try row.decode("name", as: String.self), "nick")
        XCTAssertEqual(try row.decode("flag", as: Bool.self), true)
        XCTAssertEqual(try row.decode("head", as: String?.self), nil)
        XCTAssertEqual(try row.decode("ids", as: [Int64].self), [3, 1, 2])
        XCTAssertEqual(try row.decode("ratio", as: Double.self), 2.5)
    }

    func testANullWhereAValueIsRequiredIsAnErrorNotAZero() throws {
        let db = try connect()
        let result = try db.query("SELECT NULL::bigint AS id, NULL::text AS name, NULL::boolean AS flag")
        let row = try XCTUnwrap(result.first)
        XCTAssertThrowsError(try row.decode("id", as: Int64.self)) { error in
            XCTAssertTrue(String(describing: error).contains("column id is NULL"), "\(error)")
        }
        XCTAssertThrowsError(try row.decode("name", as: String.self))
        XCTAssertThrowsError(try row.decode("flag", as: Bool.self))
        XCTAssertThrowsError(try row.withRequiredBytes(try result.column("name", as: String.self)) { _ in () })
        XCTAssertEqual(try row.decode("id", as: Int64?.self), nil)
    }

    func testAMissingColumnOrAWrongTypeIsAnError() throws {
        let db = try connect()
        let row = try XCTUnwrap(try db.query("SELECT 'seven'::text AS id, 3000000000::bigint AS big").first)
        XCTAssertThrowsError(try row.decode("nope", as: Int64.self))
        XCTAssertThrowsError(try row.decode("id", as: Int64.self))
        XCTAssertThrowsError(try row.decode("big", as: Int32.self))
        XCTAssertEqual(try row.decode("big", as: Int64.self), 3_000_000_000)
    }

    func testAColumnLookedUpOnceReadsEveryRow() throws {
        let db = try connect()
        let result = try db.query("SELECT g AS n, g * 2 AS twice FROM generate_series(1, 3) AS g ORDER BY g")
        let twice = try result.column("twice", as: Int64.self)
        XCTAssertEqual(try result.rows.map { try $0[twice] }, [2, 4, 6])
    }
}

final class SQLParameterTests: XCTestCase {
    func testASharedParameterIsBoundOnceAndNamedEverywhere() {
        let user = SQLParameter(Int64(9))
        let inner: SQL = "SELECT \(user)"
        let statement: SQL = "SELECT \(Int64(1)), \(user)::bigint, \(user), (\(inner))"
        // Shared within one literal; an embedded fragment was built on its own and keeps its own bind.
        XCTAssertEqual(statement.text, "SELECT $1, $2::bigint, $2, (SELECT $3)")
        XCTAssertEqual(statement.binds.map { $0?.pgText }, ["1", "9", "9"])
    }
}

final class SQLFragmentInferenceTests: XCTestCase {
    /// A fragment built in a closure could be typed as a String (bound as a value) or as SQL
    /// (embedded as text): it must always be embedded.
    func testAFragmentBuiltInAClosureIsEmbeddedNotBound() {
        let columns: SQL = "f.remark AS relation_remark"
        let relation: (columns: SQL, joins: SQL)? = (columns, "LEFT JOIN friendships f ON true")
        let statement: SQL = "SELECT u.id\(relation.map { ", \($0.columns)" } ?? "") FROM users u \(relation?.joins ?? "")"
        XCTAssertEqual(statement.text, "SELECT u.id, f.remark AS relation_remark FROM users u LEFT JOIN friendships f ON true")
        XCTAssertTrue(statement.binds.isEmpty)
        let name = "x"
        let bound: SQL = "SELECT \(name)::text"
        XCTAssertEqual(bound.text, "SELECT $1::text", "a String value is still bound")
    }
}
