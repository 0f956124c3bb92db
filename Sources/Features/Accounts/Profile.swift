import ChatHTTP
import ChatPostgres

/// The contract's Profile: one column list and one writer for every endpoint that shows one, from
/// a row or from a worker's rendered copy alike.
public enum Profile {
    /// The SELECT list of a profile, from the users table aliased `u`; every column is named
    /// `profile_…`, so that it can sit next to any other table's columns.
    public static let columns: SQL = """
        u.id AS profile_user_id, u.mobile AS profile_mobile, u.name AS profile_name, \
        u.nick_name AS profile_nick_name, u.head_url AS profile_head_url, u.sex AS profile_sex, \
        u.sign AS profile_sign, u.province AS profile_province, u.city AS profile_city, \
        u.auth_status AS profile_auth_status
        """

    /// Where `columns` are in one result, looked up by name once for all its rows.
    public struct Columns {
        public let userId: PGColumn<Int64>
        public let mobile: PGColumn<String>
        public let headUrl: PGColumn<String>
        public let authStatus: PGColumn<Int64>
        /// The text fields after the mobile, in the contract's order, with their keys.
        let textsAfterMobile: [(key: StaticString, column: PGColumn<String>)]

        public init(_ result: PGResult) throws {
            userId = try result.column("profile_user_id")
            mobile = try result.column("profile_mobile")
            headUrl = try result.column("profile_head_url")
            authStatus = try result.column("profile_auth_status")
            textsAfterMobile = [
                (",\"name\":", try result.column("profile_name")),
                (",\"nickName\":", try result.column("profile_nick_name")),
                (",\"headUrl\":", headUrl),
                (",\"sex\":", try result.column("profile_sex")),
                (",\"sign\":", try result.column("profile_sign")),
                (",\"province\":", try result.column("profile_province")),
                (",\"city\":", try result.column("profile_city")),
            ]
        }
    }

    /// Holds these users' Profile columns steady until the current transaction ends (`FOR SHARE`:
    /// a profile change waits for this commit, or this waits for the change's). Taken, before any
    /// write, by every change that puts users into a list that shows their profiles and is kept
    /// rendered (a friend list, a member list, a request list). Those lists' versions are bumped
    /// by the triggers on `users` (sql/0004, 0005) for the lists the user is in when the profile
    /// changes; without this, a list the user joined between that moment and the profile
    /// change's commit would be rendered with the old profile at a version nothing bumps again.
    public static func holdSteady(_ db: PGConnection, _ users: [Int64]) throws {
        try AccountsStore(db: db).holdSteady(users)
    }

    /// `+8613812345678` → `+86*******5678`: enough to recognise, not enough to call or to find by
    /// trying the rest. At least half of the digits (rounded up) are hidden; of the others, the last
    /// (up to 4) are shown at the end and the rest at the start (the country code, for most numbers).
    public static func mask(mobile: String) -> String {
        var out: [UInt8] = []
        var mobile = mobile
        mobile.withUTF8 { appendMasked($0, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// `mask(mobile:)` on bytes (mobiles are `+` and ASCII digits), for lists written from rows.
    static func appendMasked(_ mobile: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        guard mobile.first == UInt8(ascii: "+") else {
            out.append(contentsOf: [0x2A, 0x2A, 0x2A, 0x2A])
            return
        }
        let digits = UnsafeBufferPointer(rebasing: mobile[1...])
        let shown = digits.count / 2
        let suffix = min(4, shown)
        let prefix = shown - suffix
        out.append(UInt8(ascii: "+"))
        out.append(contentsOf: digits.prefix(prefix))
        out.append(contentsOf: repeatElement(UInt8(0x2A), count: digits.count - shown))
        out.append(contentsOf: digits.suffix(suffix))
    }

    // MARK: the writer (see JSONWriter): straight from the row's cells, no Strings

    /// `"userId":…,"mobile":` of the profile in `row`.
    package static func writeUpToMobile(_ row: PGRow, _ columns: Columns, into w: inout JSONWriter) throws {
        w.raw("\"userId\":")
        w.int(try row[columns.userId])
        w.raw(",\"mobile\":")
    }

    /// The mobile value: in full, or masked.
    package static func writeMobile(_ row: PGRow, _ columns: Columns, reveal: Bool, into w: inout JSONWriter) throws {
        try row.withRequiredBytes(columns.mobile) { mobile in
            if reveal {
                w.string(utf8: mobile)
            } else {
                w.byte(UInt8(ascii: "\""))
                appendMasked(mobile, to: &w.bytes)
                w.byte(UInt8(ascii: "\""))
            }
        }
    }

    /// `,"name":…,"isAuth":…`: the fields after the mobile.
    package static func writeAfterMobile(_ row: PGRow, _ columns: Columns, into w: inout JSONWriter) throws {
        for (key, column) in columns.textsAfterMobile {
            w.raw(key)
            try row.withRequiredBytes(column) { w.string(utf8: $0) }
        }
        w.raw(",\"isAuth\":")
        w.int(try row[columns.authStatus])
    }

    /// The profile's fields without the braces.
    /// - Parameter revealMobile: the full number only for the user themself or a friend.
    package static func writeFields(_ row: PGRow, _ columns: Columns, revealMobile: Bool, into w: inout JSONWriter) throws {
        try writeUpToMobile(row, columns, into: &w)
        try writeMobile(row, columns, reveal: revealMobile, into: &w)
        try writeAfterMobile(row, columns, into: &w)
    }

    /// The profile in `row` as a JSON object.
    public static func json(_ row: PGRow, _ columns: Columns, revealMobile: Bool) throws -> JSON {
        var w = JSONWriter(capacity: 256)
        w.byte(UInt8(ascii: "{"))
        try writeFields(row, columns, revealMobile: revealMobile, into: &w)
        w.byte(UInt8(ascii: "}"))
        return .bytes(w.bytes)
    }
}
