import ChatHTTP
import ChatPostgres

/// The contract's Message (API.md §5): one column list and one writer, for history and sync alike,
/// straight from the row's cells (see `JSONWriter`).
enum MessageWriter {
    /// The SELECT list of a message, from the messages table aliased `m`.
    static let columns: SQL = "m.msg_id, m.seq, m.from_id, m.msg_type, m.content, m.send_time"

    /// Where `columns` are in one result, looked up by name once for all its rows.
    struct Columns {
        let msgId: PGColumn<Int64>
        let seq: PGColumn<Int64>
        let fromId: PGColumn<Int64>
        let msgType: PGColumn<Int64>
        let content: PGColumn<String>
        let sendTime: PGColumn<Int64>

        init(_ result: PGResult) throws {
            msgId = try result.column("msg_id")
            seq = try result.column("seq")
            fromId = try result.column("from_id")
            msgType = try result.column("msg_type")
            content = try result.column("content")
            sendTime = try result.column("send_time")
        }
    }

    /// The message in `row`, as one JSON object. Who it is addressed to is not in the messages
    /// table: the caller names it (from the request, or from the conversation's row), given the sender.
    static func write(_ row: PGRow, _ columns: Columns, into w: inout JSONWriter,
                      addressedTo destination: (_ fromId: Int64) throws -> (destId: Int64, destType: Int64)) throws {
        let from = try row[columns.fromId]
        let (destId, destType) = try destination(from)
        w.raw("{\"msgId\":")
        w.int(try row[columns.msgId])
        w.raw(",\"seq\":")
        w.int(try row[columns.seq])
        w.raw(",\"fromId\":")
        w.int(from)
        w.raw(",\"destId\":")
        w.int(destId)
        w.raw(",\"destType\":")
        w.int(destType)
        w.raw(",\"msgType\":")
        w.int(try row[columns.msgType])
        w.raw(",\"content\":")
        try row.withRequiredBytes(columns.content) { w.string(utf8: $0) }
        w.raw(",\"sendTime\":")
        w.int(try row[columns.sendTime])
        w.byte(UInt8(ascii: "}"))
    }

    /// The conversation's columns a message's destination follows from (c: conversations).
    static let conversationColumns: SQL = "c.kind, c.user_low, c.user_high, c.group_id"

    /// Where `conversationColumns` are in one result.
    struct ConversationColumns {
        /// NULL when the conversation's row is gone (deleted with one of its users) while its
        /// messages are still referenced.
        let kind: PGColumn<Int64?>
        let userLow: PGColumn<Int64>
        let userHigh: PGColumn<Int64>
        let groupId: PGColumn<Int64>

        init(_ result: PGResult) throws {
            kind = try result.column("kind")
            userLow = try result.column("user_low")
            userHigh = try result.column("user_high")
            groupId = try result.column("group_id")
        }

        /// The message's destination as the conversation's row names it: the group, or in a
        /// direct chat whichever of the two did not send it. A conversation whose row is gone is
        /// shown as a direct chat with destination 0.
        func destination(_ row: PGRow, fromId: Int64) throws -> (destId: Int64, destType: Int64) {
            guard let kind = try row[self.kind] else { return (0, 1) }
            guard kind == 1 else { return (try row[groupId], kind) }
            let low = try row[userLow]
            return (fromId == low ? try row[userHigh] : low, 1)
        }
    }
}
