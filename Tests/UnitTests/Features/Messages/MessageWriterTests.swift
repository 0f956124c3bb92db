import XCTest
@testable import ChatConfig
@testable import ChatPostgres
@testable import ChatHTTP
@testable import Messages

/// The one Message writer, as history and sync use it, against the test stack's PostgreSQL
/// (skipped outside `make test`): the contract's fields in the contract's order, whichever asks.
final class MessageWriterTests: XCTestCase {
    func connect() throws -> PGConnection { try TestStackConfig.database() }

    static let content = "hi \"you\"\n\\ \u{1} é"

    /// Rows shaped as sync reads them: a message's columns and its conversation's.
    func rows(_ db: PGConnection) throws -> PGResult {
        try db.query("""
            SELECT 1000001::bigint AS msg_id, 7::bigint AS seq, v.from_id, 3::smallint AS msg_type, \(MessageWriterTests.content)::text AS content,
                   1700000000000::bigint AS send_time, v.kind, v.user_low, v.user_high, v.group_id
            FROM (VALUES (1, 42::bigint, 1::smallint, 42::bigint, 99::bigint, NULL::bigint),
                         (2, 99, 1, 42, 99, NULL),
                         (3, 42, 2, NULL, NULL, 500),
                         (4, 42, NULL, NULL, NULL, NULL)) AS v(n, from_id, kind, user_low, user_high, group_id)
            ORDER BY v.n
            """)
    }

    /// The message as a `JSON` tree, as sync built it before there was one writer.
    func tree(fromId: Int64, destId: Int64, destType: Int64) -> [UInt8] {
        JSON.object([
            ("msgId", .int(1000001)), ("seq", .int(7)), ("fromId", .int(fromId)), ("destId", .int(destId)),
            ("destType", .int(destType)), ("msgType", .int(3)), ("content", .string(MessageWriterTests.content)),
            ("sendTime", .int(1700000000000)),
        ]).serialized()
    }

    func testSyncNamesTheDestinationFromTheConversation() throws {
        let result = try rows(try connect())
        let columns = try MessageWriter.Columns(result)
        let conversation = try MessageWriter.ConversationColumns(result)
        let written = try result.rows.map { row in
            var w = JSONWriter()
            try MessageWriter.write(row, columns, into: &w) { try conversation.destination(row, fromId: $0) }
            return w.bytes
        }
        XCTAssertEqual(written, [
            tree(fromId: 42, destId: 99, destType: 1),
            tree(fromId: 99, destId: 42, destType: 1),
            tree(fromId: 42, destId: 500, destType: 2),
            // The conversation's row is gone: a direct chat with destination 0.
            tree(fromId: 42, destId: 0, destType: 1),
        ])
        XCTAssertEqual(String(decoding: written[0], as: UTF8.self),
                       #"{"msgId":1000001,"seq":7,"fromId":42,"destId":99,"destType":1,"msgType":3,"content":"hi \"you\"\n\\ \u0001 é","sendTime":1700000000000}"#)
    }

    func testHistoryNamesTheDestinationFromTheRequest() throws {
        let result = try rows(try connect())
        let columns = try MessageWriter.Columns(result)
        var w = JSONWriter()
        try MessageWriter.write(result[1], columns, into: &w) { _ in (7, 2) }
        XCTAssertEqual(w.bytes, tree(fromId: 99, destId: 7, destType: 2))
    }

    func testANullWhereTheMessageNeedsAValueIsAnError() throws {
        let result = try (try connect()).query("""
            SELECT 1::bigint AS msg_id, 1::bigint AS seq, 1::bigint AS from_id, 1::smallint AS msg_type,
                   NULL::text AS content, 1::bigint AS send_time
            """)
        var w = JSONWriter()
        XCTAssertThrowsError(try MessageWriter.write(result[0], try MessageWriter.Columns(result), into: &w) { _ in (2, 1) })
    }
}
