import ChatHTTP
import ChatPostgres

/// The contract's Group, written for every route that shows one (`getGroupById`, `queryGroup`,
/// `ready.groups`) straight from a row's cells: `groupId`, `name`, `ownerId`, `memberCount`,
/// `headUrls`, `myCard`. Its columns are looked up by name once per result: `id`, `name`,
/// `owner_id`, `member_count` and, where the caller is a member, `card`.
struct GroupWriter {
    let id: PGColumn<Int64>
    let name: PGColumn<String>
    let ownerId: PGColumn<Int64?>
    let memberCount: PGColumn<Int64>
    /// The caller's card in the group; nil: the caller is not a member (`myCard` is empty).
    let card: PGColumn<String>?

    init(_ result: PGResult, card withCard: Bool) throws {
        id = try result.column("id")
        name = try result.column("name")
        ownerId = try result.column("owner_id")
        memberCount = try result.column("member_count")
        card = withCard ? try result.column("card") : nil
    }

    /// The group's fields without the braces; `headUrls` is the avatars' JSON array
    /// (`GroupWriter.headUrls(_:)`, or a member list's rendered one).
    func writeFields(_ row: PGRow, headUrls: [UInt8], into w: inout JSONWriter) throws {
        w.raw("\"groupId\":")
        w.int(try row[id])
        w.raw(",\"name\":")
        try row.withRequiredBytes(name) { w.string(utf8: $0) }
        w.raw(",\"ownerId\":")
        if let owner = try row[ownerId] { w.int(owner) } else { w.raw("null") }
        w.raw(",\"memberCount\":")
        w.int(try row[memberCount])
        w.raw(",\"headUrls\":")
        w.raw(headUrls)
        w.raw(",\"myCard\":")
        if let card { try row.withRequiredBytes(card) { w.string(utf8: $0) } } else { w.raw("\"\"") }
    }

    /// The groups of `rows` (all of one result) as a JSON array, without avatars.
    func writeArray(_ rows: [PGRow]) throws -> [UInt8] {
        try JSONWriter.array(count: rows.count, bytesPerElement: 128) { index, w in
            w.byte(UInt8(ascii: "{"))
            try writeFields(rows[index], headUrls: GroupWriter.noHeadUrls, into: &w)
            w.byte(UInt8(ascii: "}"))
        }
    }

    static let noHeadUrls: [UInt8] = [UInt8(ascii: "["), UInt8(ascii: "]")]

    /// The JSON array of newline-separated avatars (`GroupsStore.headUrlsColumn`); nil: none.
    static func headUrls(_ joined: String?) -> [UInt8] {
        var w = JSONWriter(capacity: 512)
        w.json(.array((joined ?? "").split(separator: "\n").map { JSON.string(String($0)) }))
        return w.bytes
    }
}
