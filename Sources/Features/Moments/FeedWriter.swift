import ChatHTTP
import ChatPostgres
import Accounts

/// A post as every moments route shows it, written straight from `MomentsStore.page`'s rows:
/// `{"feedId","userId","user": Profile,"text","images","createTime","comments","praises"}`.
/// The images, comments and praises arrive as JSON built by that statement (one definition of a
/// Comment and a Praise, in `MomentsStore.page`).
enum FeedWriter {
    struct Columns {
        let feedId: PGColumn<Int64?>
        let text: PGColumn<String>
        let createTime: PGColumn<Int64>
        let images: PGColumn<String>
        let profile: Profile.Columns
        let revealMobile: PGColumn<Bool>
        let comments: PGColumn<String>
        let praises: PGColumn<String>

        init(_ result: PGResult) throws {
            feedId = try result.column("feed_id")
            text = try result.column("feed_text")
            createTime = try result.column("create_time")
            images = try result.column("images_json")
            profile = try Profile.Columns(result)
            revealMobile = try result.column("reveal_mobile")
            comments = try result.column("comments_json")
            praises = try result.column("praises_json")
        }
    }

    static func write(_ row: PGRow, _ columns: Columns, feedId: Int64, into w: inout JSONWriter) throws {
        w.raw("{\"feedId\":")
        w.int(feedId)
        w.raw(",\"userId\":")
        w.int(try row[columns.profile.userId])
        w.raw(",\"user\":{")
        try Profile.writeFields(row, columns.profile, revealMobile: try row[columns.revealMobile], into: &w)
        w.raw("},\"text\":")
        try row.withRequiredBytes(columns.text) { w.string(utf8: $0) }
        w.raw(",\"images\":")
        try row.withRequiredBytes(columns.images) { w.raw($0) }
        w.raw(",\"createTime\":")
        w.int(try row[columns.createTime])
        w.raw(",\"comments\":")
        try row.withRequiredBytes(columns.comments) { w.raw($0) }
        w.raw(",\"praises\":")
        try row.withRequiredBytes(columns.praises) { w.raw($0) }
        w.byte(UInt8(ascii: "}"))
    }

    /// The page's posts as a JSON array, and the id of its last post (the next page's
    /// `beforeId`) when the page is full, else 0.
    static func list(_ result: PGResult) throws -> (json: [UInt8], nextBeforeId: Int64) {
        let columns = try Columns(result)
        var w = JSONWriter(capacity: 1024 * max(1, result.rowCount))
        w.byte(UInt8(ascii: "["))
        var count = 0
        var last: Int64 = 0
        for row in result.rows {
            guard let feedId = try row[columns.feedId] else { continue }
            if count > 0 { w.byte(UInt8(ascii: ",")) }
            try write(row, columns, feedId: feedId, into: &w)
            count += 1
            last = feedId
        }
        w.byte(UInt8(ascii: "]"))
        return (w.bytes, count == MomentsStore.pageSize ? last : 0)
    }
}
