
/// A JSON value with a fast, allocation-light serializer for response envelopes.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case string(String)
    case array([JSON])
    /// Keys keep their insertion order so responses read the way the contract lists them.
    case object([(String, JSON)])
    /// Text that is already JSON (e.g. a jsonb column read as text), written as it is.
    case raw(String)
    /// Bytes that are already JSON (a list written with `JSONWriter`), written as they are.
    case bytes([UInt8])

    public static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.raw(a), .raw(b)): return a == b
        case let (.bytes(a), .bytes(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public static func int(_ value: Int) -> JSON { .int(Int64(value)) }
    public static func optString(_ value: String?) -> JSON { value.map(JSON.string) ?? .null }

    /// About how many bytes `write(into:)` adds: exact for bytes and raw text (the long lists),
    /// a guess for the rest. For reserving a response's buffer once.
    public var sizeHint: Int {
        switch self {
        case .null, .bool, .int: return 8
        case .string(let s): return s.utf8.count + 2
        case .raw(let text): return text.utf8.count
        case .bytes(let bytes): return bytes.count
        case .array(let items): return items.reduce(2) { $0 + $1.sizeHint + 1 }
        case .object(let members): return members.reduce(2) { $0 + $1.0.utf8.count + 4 + $1.1.sizeHint }
        }
    }

    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    public var text: String { String(decoding: serialized(), as: UTF8.self) }

    public func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
        case .bool(let b): b ? JSONWriter.appendRaw("true", to: &out) : JSONWriter.appendRaw("false", to: &out)
        case .int(let i): JSONWriter.appendInt(i, to: &out)
        case .string(let s): JSON.writeString(s, into: &out)
        case .raw(let text): out.append(contentsOf: text.utf8)
        case .bytes(let bytes): out.append(contentsOf: bytes)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSON.writeString(member.0, into: &out)
                out.append(UInt8(ascii: ":"))
                member.1.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    package static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { JSONWriter.appendEscaped($0, to: &out) }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByNilLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) { self = .object(elements) }
}
