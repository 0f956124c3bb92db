import Foundation

/// 18-character PRC resident identity numbers (GB 11643-1999).
///
/// Layout: 6-digit region code, 8-digit birth date YYYYMMDD, 3-digit sequence, 1 check
/// character (0-9 or X). Validation is purely structural: it proves the number is
/// well-formed, not that it was issued to the person submitting it.
public enum IdNumber {

    private static let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    private static let checkMap: [UInt8] = Array("10X98765432".utf8)

    /// Ids carry Beijing-time birth dates and the country has one time zone without DST,
    /// so "today" is evaluated at UTC+8 regardless of the server's TZ setting.
    private static let chinaUTCOffsetSeconds = 8 * 3600

    /// True for a well-formed 18-character id: first digit 1-9, 17 digits, a matching
    /// check character (`X` or `x` for 10), and a real birth date in 1900-01-01...today.
    public static func isValid(_ s: String) -> Bool {
        isValid(s, today: currentChinaDate())
    }

    /// Testable core: `today` is the (year, month, day) upper bound for the birth date.
    static func isValid(_ s: String, today: (year: Int, month: Int, day: Int)) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 18 else { return false }

        var digits = [Int]()
        digits.reserveCapacity(17)
        for c in b[0..<17] {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return false }
            digits.append(Int(c - UInt8(ascii: "0")))
        }
        // Region codes start with 1-6 today; 0 never occurs, so reject it outright.
        guard digits[0] != 0 else { return false }

        // Birth date at positions 7-14 (1-based) → indices 6..<14.
        let year = digits[6] * 1000 + digits[7] * 100 + digits[8] * 10 + digits[9]
        let month = digits[10] * 10 + digits[11]
        let day = digits[12] * 10 + digits[13]
        guard year >= 1900, (1...12).contains(month),
              (1...daysInMonth(year: year, month: month)).contains(day),
              (year, month, day) <= (today.year, today.month, today.day)
        else { return false }

        var sum = 0
        for i in 0..<17 { sum += digits[i] * weights[i] }
        var check = b[17]
        if check == UInt8(ascii: "x") { check = UInt8(ascii: "X") }
        return check == checkMap[sum % 11]
    }

    /// First 4 + asterisks + last 4, keeping the original length, for display and logs
    /// (e.g. `1101**********1234`). Strings of 8 characters or fewer are fully masked, since
    /// showing 4+4 of them would reveal (almost) everything.
    public static func mask(_ s: String) -> String {
        let chars = Array(s)
        guard chars.count > 8 else { return String(repeating: "*", count: chars.count) }
        return String(chars.prefix(4)) + String(repeating: "*", count: chars.count - 8)
            + String(chars.suffix(4))
    }

    /// Canonical storage form: a trailing lower-case `x` check character becomes `X`, so the
    /// same id typed two ways compares (and uniquely indexes) equal. Nothing else changes.
    public static func normalized(_ s: String) -> String {
        guard s.hasSuffix("x") else { return s }
        return String(s.dropLast()) + "X"
    }

    // MARK: - Calendar helpers (proleptic Gregorian, no Foundation Calendar/tzdata needed)

    private static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    private static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func currentChinaDate() -> (year: Int, month: Int, day: Int) {
        let seconds = Int(Date().timeIntervalSince1970.rounded(.down)) + chinaUTCOffsetSeconds
        return civilDate(daysSinceEpoch: floorDiv(seconds, 86_400))
    }

    private static func floorDiv(_ a: Int, _ b: Int) -> Int {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    /// Howard Hinnant's days→civil algorithm (exact for the proleptic Gregorian calendar).
    static func civilDate(daysSinceEpoch z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
