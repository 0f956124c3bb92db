
/// Decoder for `application/x-www-form-urlencoded` data (query strings and form bodies).
///
/// This runs on every request that has a query string, so it works directly on bytes and
/// builds a `String` only once per name/value, after the bytes are known to be valid UTF-8.
/// Components that contain neither `%` nor `+` (the common case) are turned into strings
/// straight from the input without an intermediate copy.
///
/// Errors never include the offending text: form values may be passwords or tokens, and
/// `HTTPError.info` is sent to the client and may be logged.
public enum FormURLEncoded {
    /// The one error this decoder produces, shared so callers and tests can compare against it.
    static let malformed = HTTPError.badRequest("malformed form encoding")

    /// Splits `name=value&name=value` into decoded pairs, in input order.
    ///
    /// - Empty pairs (`a=1&&b=2`, a leading or trailing `&`) are skipped.
    /// - A pair without `=` is a name with an empty value; only the first `=` separates,
    ///   so `a=b=c` is name `a`, value `b=c`.
    /// - Duplicate names are all kept, in order; callers decide what a repeat means.
    /// - Throws `HTTPError.badRequest` on a malformed `%` escape or invalid UTF-8.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        if bytes.isEmpty { return pairs }
        // Raw bytes viewed as UInt8 for typed indexing; the rebinding is scoped to this call.
        return try bytes.withMemoryRebound(to: UInt8.self) { input in
            // Shared decode buffer, reused by every component that needs unescaping so a
            // query string with many escaped values costs one allocation, not one per value.
            var scratch: [UInt8] = []
            let count = input.count
            var pairStart = 0
            while pairStart < count {
                // One pass over the pair finds its end, the first `=`, and whether each half
                // needs unescaping at all.
                var index = pairStart
                var equals = -1
                var nameNeedsDecoding = false
                var valueNeedsDecoding = false
                while index < count {
                    let byte = input[index]
                    if byte == ampersand { break }
                    if byte == percent || byte == plus {
                        if equals < 0 { nameNeedsDecoding = true } else { valueNeedsDecoding = true }
                    } else if byte == equalsSign && equals < 0 {
                        equals = index
                    }
                    index += 1
                }
                let pairEnd = index
                if pairEnd > pairStart {
                    let nameEnd = equals < 0 ? pairEnd : equals
                    let name = try decodeComponent(input, pairStart..<nameEnd, nameNeedsDecoding, &scratch)
                    let value = equals < 0
                        ? ""
                        : try decodeComponent(input, (equals + 1)..<pairEnd, valueNeedsDecoding, &scratch)
                    pairs.append((name: name, value: value))
                }
                pairStart = pairEnd + 1
            }
            return pairs
        }
    }

    /// Convenience for a query string already held as a `String` (e.g. `QUERY_STRING`).
    public static func parse(_ string: String) throws -> [(name: String, value: String)] {
        var string = string
        // `withUTF8` gives the native contiguous storage; it only copies for bridged strings.
        return try string.withUTF8 { try parse(UnsafeRawBufferPointer($0)) }
    }

    /// Convenience for a body already collected into an array.
    public static func parse(_ bytes: [UInt8]) throws -> [(name: String, value: String)] {
        try bytes.withUnsafeBytes { try parse($0) }
    }

    /// Percent-decodes one component (and turns `+` into a space when `plusIsSpace`), then
    /// validates the result as UTF-8.
    ///
    /// `plusIsSpace` is true for form data and false for e.g. path segments, where `+` is a
    /// literal plus.
    public static func percentDecode(_ bytes: some Collection<UInt8>, plusIsSpace: Bool) throws -> String {
        if let result = try bytes.withContiguousStorageIfAvailable({ buffer in
            try decode(buffer, plusIsSpace: plusIsSpace)
        }) {
            return result
        }
        // Non-contiguous collections (rare) are flattened once rather than decoded generically.
        return try Array(bytes).withUnsafeBufferPointer { try decode($0, plusIsSpace: plusIsSpace) }
    }

    // MARK: - Internals

    private static let ampersand = UInt8(ascii: "&")
    private static let equalsSign = UInt8(ascii: "=")
    private static let percent = UInt8(ascii: "%")
    private static let plus = UInt8(ascii: "+")
    private static let space = UInt8(ascii: " ")

    /// Decodes `input[range]`. When the range has no `%`/`+`, it is validated in place and no
    /// copy is made; otherwise it is unescaped into `scratch` first.
    @inline(__always)
    private static func decodeComponent(
        _ input: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ needsDecoding: Bool,
        _ scratch: inout [UInt8]
    ) throws -> String {
        if range.isEmpty { return "" }
        let slice = UnsafeBufferPointer(rebasing: input[range])
        if !needsDecoding {
            guard let string = String(validating: slice, as: UTF8.self) else { throw malformed }
            return string
        }
        scratch.removeAll(keepingCapacity: true)
        try unescape(slice, plusIsSpace: true, into: &scratch)
        guard let string = String(validating: scratch, as: UTF8.self) else { throw malformed }
        return string
    }

    private static func decode(_ input: UnsafeBufferPointer<UInt8>, plusIsSpace: Bool) throws -> String {
        var output: [UInt8] = []
        try unescape(input, plusIsSpace: plusIsSpace, into: &output)
        guard let string = String(validating: output, as: UTF8.self) else { throw malformed }
        return string
    }

    /// Appends the unescaped bytes of `input` to `output`. Validates escapes only; UTF-8
    /// validity is checked by the caller on the complete result, because a multi-byte
    /// character is usually spread over several `%XX` escapes.
    private static func unescape(
        _ input: UnsafeBufferPointer<UInt8>, plusIsSpace: Bool, into output: inout [UInt8]
    ) throws {
        // Decoding only ever shrinks the data, so this is the only allocation needed.
        output.reserveCapacity(output.count + input.count)
        let count = input.count
        var index = 0
        while index < count {
            let byte = input[index]
            if byte == percent {
                // Both hex digits must be present: `%` and `%4` at the end are malformed.
                guard index + 2 < count else { throw malformed }
                let high = hexValue(input[index + 1])
                let low = hexValue(input[index + 2])
                guard high | low < 0x10 else { throw malformed }
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(plusIsSpace && byte == plus ? space : byte)
                index += 1
            }
        }
    }

    /// Value of an ASCII hex digit (either case), or 0xFF for anything else. A sentinel rather
    /// than an optional keeps the hot loop branch-light: `high | low < 0x10` checks both.
    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt8 {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte &- UInt8(ascii: "A") &+ 10
        default: return 0xFF
        }
    }
}
