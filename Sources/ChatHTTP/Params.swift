
/// Request parameters with typed, validating accessors.
///
/// Every accessor fails with a 400 envelope naming the parameter; values are never echoed back,
/// since a parameter may be a password or a code.
public struct Params {
    private var values: [String: String] = [:]

    public init() {}
    public init(_ pairs: [(name: String, value: String)]) { merge(pairs) }

    /// Adds pairs; a later source overrides an earlier one, and within one source the first wins.
    public mutating func merge(_ pairs: [(name: String, value: String)]) {
        var seen = Set<String>()
        for pair in pairs where !seen.contains(pair.name) {
            seen.insert(pair.name)
            values[pair.name] = pair.value
        }
    }

    public subscript(name: String) -> String? { values[name] }
    public func has(_ name: String) -> Bool { values[name] != nil }

    /// A text value, or nil when absent. Length is counted in characters (what a person sees:
    /// an emoji with modifiers is one). Over-long text, or text with NUL or other C0 controls
    /// (except tab and newlines), is refused.
    public func string(_ name: String, maxLength: Int) throws -> String? {
        guard let value = values[name] else { return nil }
        var scalars = 0
        for scalar in value.unicodeScalars {
            scalars += 1
            // A character is rarely more than a few scalars; this bounds the work on hostile input.
            if scalars > maxLength * 8 { throw HTTPError.badRequest("\(name) is too long (at most \(maxLength) characters)") }
            if scalar.value < 0x20 && scalar != "\t" && scalar != "\n" && scalar != "\r" || scalar.value == 0x7F {
                throw HTTPError.invalid(name)
            }
        }
        if scalars > maxLength && value.count > maxLength {
            throw HTTPError.badRequest("\(name) is too long (at most \(maxLength) characters)")
        }
        return value
    }

    /// A required, non-empty text value.
    public func required(_ name: String, maxLength: Int) throws -> String {
        guard let value = try string(name, maxLength: maxLength), !value.isEmpty else { throw HTTPError.missing(name) }
        return value
    }

    /// An integer, or nil when absent or empty.
    public func int64(_ name: String, in range: ClosedRange<Int64> = Int64.min...Int64.max) throws -> Int64? {
        guard let value = values[name], !value.isEmpty else { return nil }
        guard value.utf8.count <= 20, let number = Int64(value), range.contains(number) else {
            throw HTTPError.invalid(name)
        }
        return number
    }

    public func requiredInt64(_ name: String, in range: ClosedRange<Int64> = Int64.min...Int64.max) throws -> Int64 {
        guard let number = try int64(name, in: range) else { throw HTTPError.missing(name) }
        return number
    }

    public func int(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        try int64(name, in: Int64(range.lowerBound)...Int64(range.upperBound)).map { Int($0) }
    }

    public func requiredInt(_ name: String, in range: ClosedRange<Int>) throws -> Int {
        guard let number = try int(name, in: range) else { throw HTTPError.missing(name) }
        return number
    }

    /// An id: a positive 64-bit integer.
    public func id(_ name: String) throws -> Int64? { try int64(name, in: 1...Int64.max) }
    public func requiredId(_ name: String) throws -> Int64 { try requiredInt64(name, in: 1...Int64.max) }

    /// Deepest page a list route serves: paging further is what a cursor is for, and an offset
    /// walks every row before it.
    public static let maxPageNo = 500

    /// `pageNo`: 1 when absent, 1 to `maxPageNo` (400 otherwise).
    public func pageNo(_ name: String = "pageNo") throws -> Int {
        try int(name, in: 1...Params.maxPageNo) ?? 1
    }

    /// A boolean sent as `1` or `0`.
    public func flag(_ name: String) throws -> Bool? {
        guard let value = values[name], !value.isEmpty else { return nil }
        switch value {
        case "1": return true
        case "0": return false
        default: throw HTTPError.invalid(name)
        }
    }

    /// A mobile number in E.164 form: `+` then 6 to 15 digits.
    public func mobile(_ name: String = "mobile") throws -> String {
        let value = try required(name, maxLength: 16)
        guard Params.isE164(value) else { throw HTTPError.invalid(name) }
        return value
    }

    public static func isE164(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count >= 7, bytes.count <= 16, bytes[0] == UInt8(ascii: "+") else { return false }
        return bytes.dropFirst().allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// A password as the client's lower-case hex MD5 (32 characters).
    public func md5Hex(_ name: String) throws -> String {
        let value = try required(name, maxLength: 32)
        guard value.utf8.count == 32, value.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw HTTPError.invalid(name)
        }
        return value
    }

    /// A list of ids sent as "11,22,333".
    public func idList(_ name: String, maxCount: Int) throws -> [Int64] {
        let value = try required(name, maxLength: maxCount * 21)
        var ids: [Int64] = []
        for part in value.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = part.trimmedSpaces
            guard let id = Int64(trimmed), id > 0 else { throw HTTPError.invalid(name) }
            if !ids.contains(id) { ids.append(id) }
        }
        guard ids.count <= maxCount else { throw HTTPError.badRequest("\(name) has too many ids (at most \(maxCount))") }
        return ids
    }
}

