import ChatHTTP
import ChatPostgres
import Accounts

/// A friend as `ready.friends` shows it, written straight from `SocialStore.friendList`'s rows:
/// the profile, the remark and the friend group.
enum FriendWriter {
    struct Columns {
        let profile: Profile.Columns
        let remark: PGColumn<String>
        let friendGroupId: PGColumn<Int64>

        init(_ result: PGResult) throws {
            profile = try Profile.Columns(result)
            remark = try result.column("remark")
            friendGroupId = try result.column("friend_group_id")
        }
    }

    static func write(_ row: PGRow, _ columns: Columns, into w: inout JSONWriter) throws {
        w.byte(UInt8(ascii: "{"))
        try Profile.writeFields(row, columns.profile, revealMobile: true, into: &w)
        w.raw(",\"remark\":")
        try row.withRequiredBytes(columns.remark) { w.string(utf8: $0) }
        w.raw(",\"friendGroupId\":")
        w.int(try row[columns.friendGroupId])
        w.byte(UInt8(ascii: "}"))
    }

    /// `ready.friends`.
    static func list(_ result: PGResult) throws -> [UInt8] {
        let columns = try Columns(result)
        return try JSONWriter.array(count: result.rowCount, bytesPerElement: 320) { index, w in
            try write(result[index], columns, into: &w)
        }
    }
}

/// A pending request as `ready.requests` shows it, written straight from
/// `SocialStore.requestList`'s rows, with the requester's profile (mobile masked).
enum RequestWriter {
    struct Columns {
        let profile: Profile.Columns
        let id: PGColumn<Int64>
        let fromId: PGColumn<Int64>
        let destType: PGColumn<Int64>
        let groupId: PGColumn<Int64?>
        let message: PGColumn<String>
        let createTime: PGColumn<Int64>

        init(_ result: PGResult) throws {
            profile = try Profile.Columns(result)
            id = try result.column("id")
            fromId = try result.column("from_id")
            destType = try result.column("dest_type")
            groupId = try result.column("group_id")
            message = try result.column("message")
            createTime = try result.column("create_time")
        }
    }

    static func write(_ row: PGRow, _ columns: Columns, into w: inout JSONWriter) throws {
        w.raw("{\"requestId\":")
        w.int(try row[columns.id])
        w.raw(",\"fromId\":")
        w.int(try row[columns.fromId])
        w.raw(",\"destType\":")
        w.int(try row[columns.destType])
        w.raw(",\"groupId\":")
        if let group = try row[columns.groupId] { w.int(group) } else { w.raw("null") }
        w.raw(",\"message\":")
        try row.withRequiredBytes(columns.message) { w.string(utf8: $0) }
        w.raw(",\"createTime\":")
        w.int(try row[columns.createTime])
        w.raw(",\"from\":{")
        try Profile.writeFields(row, columns.profile, revealMobile: false, into: &w)
        w.raw("}}")
    }

    /// `ready.requests`.
    static func list(_ result: PGResult) throws -> [UInt8] {
        let columns = try Columns(result)
        return try JSONWriter.array(count: result.rowCount, bytesPerElement: 400) { index, w in
            try write(result[index], columns, into: &w)
        }
    }
}

/// `ready.blocks`, `ready.tops` and `ready.ignores` from `SocialStore.settingLists`'s row.
enum SettingListsWriter {
    /// A pinned or muted conversation as one number: `destId * 2 + destType - 1`.
    static func conversationJSON(code: Int64) -> JSON {
        .object([("destId", .int(code >> 1)), ("destType", .int((code & 1) + 1))])
    }

    static func lists(_ result: PGResult) throws -> SocialFeature.RenderedSettingLists {
        guard let row = result.first else { return SocialFeature.RenderedSettingLists(blocks: [], tops: [], ignores: []) }
        let settings: [Int64] = try row.decode("settings")
        let blocks: [Int64] = try row.decode("blocks")
        func render(_ values: [JSON]) -> [UInt8] {
            var w = JSONWriter(capacity: 16 + values.count * 32)
            w.json(.array(values))
            return w.bytes
        }
        return SocialFeature.RenderedSettingLists(
            blocks: render(blocks.map(JSON.int)),
            tops: render(settings.filter { $0 & 2 != 0 }.map { conversationJSON(code: $0 >> 2) }),
            ignores: render(settings.filter { $0 & 1 != 0 }.map { conversationJSON(code: $0 >> 2) }))
    }
}
