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

    /// `+8613812345678` → `+86138****5678`: enough to recognise, not enough to call.
    public static func mask(mobile: String) -> String {
        guard mobile.hasPrefix("+") else { return "****" }
        let digits = Array(mobile.dropFirst())
        if digits.count >= 11 {
            return "+" + String(digits.prefix(digits.count - 8)) + "****" + String(digits.suffix(4))
        }
        let shown = min(2, digits.count / 3)
        return "+" + String(digits.prefix(shown)) + String(repeating: "*", count: digits.count - 2 * shown)
            + String(digits.suffix(shown))
    }
}
