
/// Writes JSON text straight into a byte buffer. The long lists (a 500-member group, a user's
/// friends) are written with it field by field, from the database's own bytes, without building a
/// `JSON` tree and a `String` per cell first: that tree cost more CPU than the query behind it.
/// The caller keeps the structure valid (commas, braces); `JSON` stays the way to build small values.
public struct JSONWriter {
    public var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Text that is already JSON (punctuation, keys): `w.raw("{\"userId\":")`.
    @inline(__always)
    public mutating func raw(_ text: StaticString) { JSONWriter.appendRaw(text, to: &bytes) }

    @inline(__always)
    public mutating func raw(_ buffer: UnsafeBufferPointer<UInt8>) {
        bytes.append(contentsOf: buffer)
    }

    public mutating func raw(_ other: [UInt8]) {
        bytes.append(contentsOf: other)
    }

    @inline(__always)
    public mutating func byte(_ b: UInt8) { bytes.append(b) }

    public mutating func int(_ value: Int64) { JSONWriter.appendInt(value, to: &bytes) }

    public mutating func bool(_ value: Bool) {
        if value { raw("true") } else { raw("false") }
    }

    public mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { string(utf8: $0) }
    }

    /// A string from UTF-8 bytes (e.g. a text cell of a result), quoted and escaped.
    public mutating func string(utf8 buffer: UnsafeBufferPointer<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        JSONWriter.appendEscaped(buffer, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func json(_ value: JSON) {
        value.write(into: &bytes)
    }

    /// A JSON array of `count` elements, element `i` written by `element(i, &writer)` (the commas
    /// and brackets are written here), in a buffer sized for `bytesPerElement` each.
    public static func array(count: Int, bytesPerElement: Int,
                             _ element: (Int, inout JSONWriter) throws -> Void) rethrows -> [UInt8] {
        var w = JSONWriter(capacity: 64 + count * bytesPerElement)
        w.byte(UInt8(ascii: "["))
        for index in 0..<count {
            if index > 0 { w.byte(UInt8(ascii: ",")) }
            try element(index, &w)
        }
        w.byte(UInt8(ascii: "]"))
        return w.bytes
    }

    @inline(__always)
    static func appendRaw(_ text: StaticString, to out: inout [UInt8]) {
        text.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    package static func appendInt(_ value: Int64, to out: inout [UInt8]) {
        if value == 0 { out.append(0x30); return }
        var magnitude = value.magnitude
        if value < 0 { out.append(UInt8(ascii: "-")) }
        // 20 digits hold any UInt64.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var count = 0
            while magnitude > 0 {
                digits[19 - count] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 0x30
                magnitude /= 10
                count += 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[(20 - count)...]))
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Copies runs of bytes that need no escape in one go; most text has none.
    static func appendEscaped(_ buffer: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var runStart = 0
        var index = 0
        let count = buffer.count
        while index < count {
            let byte = buffer[index]
            if byte >= 0x20 && byte != 0x22 && byte != 0x5C && byte != 0x7F {
                index += 1
                continue
            }
            if index > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[runStart..<index])) }
            switch byte {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            default:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]])
            }
            index += 1
            runStart = index
        }
        if count > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[runStart..<count])) }
    }
}
