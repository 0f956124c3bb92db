import ChatConfig
import ChatHTTP
import ChatPostgres
import ChatRouting
import ChatCache
import ChatSecurity

/// The contract's Profile, read with one column list everywhere so all endpoints agree.
public struct Profile {
    public var userId: Int64
    public var mobile: String
    public var name: String
    public var nickName: String
    public var headUrl: String
    public var sex: String
    public var sign: String
    public var province: String
    public var city: String
    public var isAuth: Int

    /// The SELECT list matching `init(row:offset:)`; callers alias the users table as `u`.
    public static let columns = "u.id, u.mobile, u.name, u.nick_name, u.head_url, u.sex, u.sign, u.province, u.city, u.auth_status"
    public static let columnCount = 10
    /// Where `head_url` is among `columns`.
    public static let headUrlColumn = 4

    /// Holds these users' Profile columns steady until the current transaction ends (`FOR SHARE`:
    /// a profile change waits for this commit, or this waits for the change's). Taken, before any
    /// write, by every change that puts users into a list that shows their profiles and is kept
    /// rendered (a friend list, a member list, a request list). Those lists' versions are bumped
    /// by the triggers on `users` (sql/0004, 0005) for the lists the user is in when the profile
    /// changes; without this, a list the user joined between that moment and the profile
    /// change's commit would be rendered with the old profile at a version nothing bumps again.
    public static func holdSteady(_ db: PGConnection, _ users: [Int64]) throws {
        try db.query("SELECT 1 FROM users WHERE id = ANY($1::bigint[]) ORDER BY id FOR SHARE", [PGArray(users)])
    }

    public init(row: PGRow, offset: Int = 0) {
        userId = row.int64Value(offset)
        mobile = row.text(offset + 1)
        name = row.text(offset + 2)
        nickName = row.text(offset + 3)
        headUrl = row.text(offset + 4)
        sex = row.text(offset + 5)
        sign = row.text(offset + 6)
        province = row.text(offset + 7)
        city = row.text(offset + 8)
        isAuth = row.int(offset + 9) ?? 0
    }

    /// - Parameter revealMobile: the full number only for the user themself or a friend.
    public func json(revealMobile: Bool) -> JSON {
        .object([
            ("userId", .int(userId)),
            ("mobile", .string(revealMobile ? mobile : Profile.mask(mobile: mobile))),
            ("name", .string(name)),
            ("nickName", .string(nickName)),
            ("headUrl", .string(headUrl)),
            ("sex", .string(sex)),
            ("sign", .string(sign)),
            ("province", .string(province)),
            ("city", .string(city)),
            ("isAuth", .int(isAuth)),
        ])
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

    // MARK: writing a profile straight from its columns (see JSONWriter)

    /// `"userId":…,"mobile":` of the profile whose `columns` start at `offset`.
    package static func writeUpToMobile(_ row: PGRow, offset: Int, into w: inout JSONWriter) {
        w.raw("\"userId\":")
        row.withBytes(offset) { w.raw($0) }
        w.raw(",\"mobile\":")
    }

    /// The mobile value: in full, or masked.
    package static func writeMobile(_ row: PGRow, offset: Int, reveal: Bool, into w: inout JSONWriter) {
        row.withBytes(offset + 1) { mobile in
            if reveal {
                w.string(utf8: mobile)
            } else {
                w.byte(UInt8(ascii: "\""))
                appendMasked(mobile, to: &w.bytes)
                w.byte(UInt8(ascii: "\""))
            }
        }
    }

    /// The text fields after the mobile, in `columns` order from offset + 2 (as `json` has them).
    private static let textKeysAfterMobile: [StaticString] = [
        ",\"name\":", ",\"nickName\":", ",\"headUrl\":", ",\"sex\":", ",\"sign\":", ",\"province\":", ",\"city\":",
    ]

    /// `,"name":…,"isAuth":…`: the fields after the mobile.
    package static func writeAfterMobile(_ row: PGRow, offset: Int, into w: inout JSONWriter) {
        for (index, key) in textKeysAfterMobile.enumerated() {
            w.raw(key)
            row.withBytes(offset + 2 + index) { w.string(utf8: $0) }
        }
        w.raw(",\"isAuth\":")
        w.int(row.int64Value(offset + 9))
    }

    /// The profile's fields without the braces, as `json(revealMobile:)` has them.
    package static func writeFields(_ row: PGRow, offset: Int, revealMobile: Bool, into w: inout JSONWriter) {
        writeUpToMobile(row, offset: offset, into: &w)
        writeMobile(row, offset: offset, reveal: revealMobile, into: &w)
        writeAfterMobile(row, offset: offset, into: &w)
    }
}
