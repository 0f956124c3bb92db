
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The headers of one `multipart/form-data` part that the application cares about.
public struct MultipartPartHeaders: Equatable, Sendable {
    /// The form field name (`Content-Disposition: form-data; name="..."`); never empty.
    public var name: String
    /// The client's file name, if the part is a file upload. Untrusted: never use as a path.
    public var filename: String?
    /// The part's `Content-Type` header value, verbatim (parameters included), if present.
    public var contentType: String?

    public init(name: String, filename: String? = nil, contentType: String? = nil) {
        self.name = name
        self.filename = filename
        self.contentType = contentType
    }
}

/// What `MultipartParser.feed` reports, in body order: for every part one `partBegin`, zero
/// or more `partData`, then one `partEnd`.
public enum MultipartEvent {
    case partBegin(MultipartPartHeaders)
    /// A piece of the current part's content. The buffer points into the chunk given to `feed`
    /// (or into the parser's small carry-over buffer) and is valid only during the callback:
    /// copy or write it out before returning.
    case partData(UnsafeRawBufferPointer)
    case partEnd
}

/// A streaming `multipart/form-data` parser (RFC 7578, framing from RFC 2046 §5.1.1).
///
/// The body is pushed through `feed` in chunks of any size, as it arrives from the web
/// server. Part content is never accumulated: it is reported as slices of the input, so an
/// upload of any size is parsed in constant memory. The only state kept between calls is a
/// header block being read (bounded by `maxHeaderBytes`) and, when a chunk ends with what
/// might be the start of a boundary delimiter, those few bytes (at most the boundary length
/// plus 4), because whether they are content or a delimiter is only known from the next chunk.
///
/// Not thread-safe and not reentrant: use one parser per request, from one thread, and do not
/// call `feed` from inside its own handler.
public final class MultipartParser {
    // MARK: Content-Type

    /// The boundary of a `multipart/form-data` content type, e.g. from
    /// `multipart/form-data; charset=utf-8; boundary="----abc"`.
    ///
    /// Media type and parameter names are matched case-insensitively; the boundary may be a
    /// token or a quoted string (with backslash escapes). Returns nil when the type is not
    /// `multipart/form-data`, the header is malformed, or the boundary is missing, repeated,
    /// empty, longer than 70 characters (RFC 2046's limit), ends in a space, or contains
    /// control or non-ASCII characters. A repeated boundary is refused rather than picking
    /// one, since two components disagreeing on which one counts is a smuggling vector.
    public static func boundary(fromContentType contentType: String) -> String? {
        guard let parsed = parseParameterizedValue(Array(contentType.utf8)),
              asciiLowercased(parsed.type) == Array("multipart/form-data".utf8)
        else { return nil }
        let boundaries = parsed.parameters.filter { $0.name == Array("boundary".utf8) }
        guard boundaries.count == 1, isValidBoundary(boundaries[0].value) else { return nil }
        return String(decoding: boundaries[0].value, as: UTF8.self)
    }

    // MARK: Parsing

    /// Limit on one part's header block, including its terminating blank line.
    public let maxHeaderBytes: Int
    /// Limit on the number of parts in the body.
    public let maxParts: Int
    /// Number of parts started so far.
    public private(set) var partCount = 0

    /// Creates a parser for a body delimited by `boundary` (as returned by
    /// `boundary(fromContentType:)`). An invalid boundary (see there) does not trap, since it
    /// may come from a client: every `feed` then throws `badRequest`.
    public init(boundary: String, maxHeaderBytes: Int = 16384, maxParts: Int = 64) {
        precondition(maxHeaderBytes > 0 && maxParts >= 0,
                     "MultipartParser: maxHeaderBytes must be positive and maxParts non-negative")
        self.maxHeaderBytes = maxHeaderBytes
        self.maxParts = maxParts
        let boundaryBytes = Array(boundary.utf8)
        // The delimiter is the CRLF that ends the previous line (or part content) plus "--"
        // plus the boundary; the CRLF belongs to the delimiter, not to the content before it.
        let delimiterBytes: [UInt8] = [Self.cr, Self.lf, Self.dash, Self.dash] + boundaryBytes
        delimiterLength = delimiterBytes.count
        // One allocation for the delimiter and the carry-over buffer behind it. The carry never
        // holds more than a delimiter's worth: a longer candidate would already be decided.
        storage = UnsafeMutableRawPointer.allocate(byteCount: 2 * delimiterLength, alignment: 1)
        storage.copyMemory(from: delimiterBytes, byteCount: delimiterLength)
        if Self.isValidBoundary(boundaryBytes) {
            // Pretend the body starts after a CRLF, so a first boundary at the very start of
            // the body ("--boundary" without a preceding CRLF) matches like any other.
            (storage + delimiterLength).copyMemory(from: [Self.cr, Self.lf], byteCount: 2)
            carryCount = 2
            state = .preamble
        } else {
            state = .failed(Self.malformed)
        }
        headerBlock.reserveCapacity(512)
    }

    deinit {
        storage.deallocate()
    }

    /// Parses the next chunk of the body, reporting events to `handler` synchronously.
    /// A delimiter may be split across chunks at any byte. After an error (thrown by the parser
    /// or by `handler`) the parser is unusable and every later call throws.
    public func feed(_ chunk: UnsafeRawBufferPointer, _ handler: (MultipartEvent) throws -> Void) throws {
        precondition(!isFeeding, "MultipartParser.feed is not reentrant")
        if case .failed(let error) = state { throw error }
        isFeeding = true
        defer { isFeeding = false }
        do {
            try parse(chunk, handler)
        } catch {
            // A half-processed chunk leaves the state machine somewhere arbitrary; refuse to
            // go on rather than misparse the rest.
            state = .failed(error as? HTTPError ?? Self.malformed)
            throw error
        }
    }

    /// Convenience for a chunk held in an array.
    public func feed(_ chunk: [UInt8], _ handler: (MultipartEvent) throws -> Void) throws {
        try chunk.withUnsafeBytes { try feed($0, handler) }
    }

    /// Call once the whole body has been fed. Throws `badRequest` unless the closing
    /// delimiter (`--boundary--`) was seen: a truncated upload must not look complete.
    public func finish() throws {
        switch state {
        case .epilogue:
            return
        case .failed(let error):
            throw error
        default:
            state = .failed(Self.malformed)
            throw Self.malformed
        }
    }

    // MARK: - Internals

    static let malformed = HTTPError.badRequest("malformed multipart body")
    static let tooManyParts = HTTPError.badRequest("too many parts in multipart body")
    static let headersTooLarge = HTTPError.badRequest("multipart part headers too large")

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let dash = UInt8(ascii: "-")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")

    private enum State: Equatable {
        /// Before the first delimiter: bytes are discarded.
        case preamble
        /// Inside a part's content: bytes are reported as `partData`.
        case body
        /// Just after a delimiter, at its terminator byte: "-", padding or CR.
        case afterDelimiter
        /// After "--boundary-": only the second "-" of a close delimiter may follow.
        case closingDash
        /// Transport padding (spaces/tabs) after a delimiter, before its CRLF.
        case padding
        /// After the CR that ends a delimiter line: expects LF.
        case lineFeed
        /// Reading a part's header block into `headerBlock`.
        case headers
        /// After the close delimiter: everything is ignored.
        case epilogue
        case failed(HTTPError)
    }

    private var state: State
    private var isFeeding = false
    /// `delimiterLength` bytes of "\r\n--boundary", then `delimiterLength` bytes of carry-over.
    private let storage: UnsafeMutableRawPointer
    private let delimiterLength: Int
    private var delimiter: UnsafeRawPointer { UnsafeRawPointer(storage) }
    private var carry: UnsafeMutableRawPointer { storage + delimiterLength }
    /// Bytes from the end of the previous chunk that match a prefix of the delimiter
    /// (possibly all of it, awaiting the terminator byte). Always starts with CR.
    private var carryCount = 0
    /// The header block of the part being started.
    private var headerBlock: [UInt8] = []
    /// How much of the "\r\n\r\n" that ends a header block has been seen (0...4). Starts at 2
    /// because the delimiter line's CRLF precedes the first header line, so a part with no
    /// headers at all ends at the first CRLF.
    private var headerEndProgress = 2

    private func parse(_ chunk: UnsafeRawBufferPointer, _ handler: (MultipartEvent) throws -> Void) throws {
        let count = chunk.count
        var index = 0
        while index < count {
            switch state {
            case .preamble, .body:
                index = try scanContent(chunk, from: index, handler)
            case .afterDelimiter:
                // The delimiter match already checked that this byte is one of these.
                switch chunk[index] {
                case Self.dash: state = .closingDash
                case Self.space, Self.tab: state = .padding
                case Self.cr: state = .lineFeed
                default: throw Self.malformed
                }
                index += 1
            case .closingDash:
                guard chunk[index] == Self.dash else { throw Self.malformed }
                state = .epilogue
                return
            case .padding:
                let byte = chunk[index]
                if byte == Self.cr {
                    state = .lineFeed
                } else if byte != Self.space && byte != Self.tab {
                    throw Self.malformed
                }
                index += 1
            case .lineFeed:
                guard chunk[index] == Self.lf else { throw Self.malformed }
                index += 1
                partCount += 1
                guard partCount <= maxParts else { throw Self.tooManyParts }
                headerBlock.removeAll(keepingCapacity: true)
                headerEndProgress = 2
                state = .headers
            case .headers:
                index = try scanHeaders(chunk, from: index, handler)
            case .epilogue:
                // RFC 2046: the epilogue is to be ignored.
                return
            case .failed(let error):
                throw error
            }
        }
    }

    /// Whether `byte` may follow "\r\n--boundary" in a real delimiter: "--" (close), transport
    /// padding, or the CRLF ending the line. Anything else means the bytes were content that
    /// merely starts like the delimiter, which we then pass through (as Go's parser does).
    @inline(__always)
    private static func isDelimiterTerminator(_ byte: UInt8) -> Bool {
        byte == dash || byte == cr || byte == space || byte == tab
    }

    /// Scans part content (or the preamble) from `start` for the next delimiter, reporting the
    /// content before it. Returns the index to continue at: right after the delimiter (state
    /// then `.afterDelimiter`), or `chunk.count` when the chunk was consumed.
    private func scanContent(
        _ chunk: UnsafeRawBufferPointer, from start: Int, _ handler: (MultipartEvent) throws -> Void
    ) throws -> Int {
        let emitting = state == .body
        let count = chunk.count
        let base = chunk.baseAddress!  // non-nil: parse() only calls this with bytes left
        let length = delimiterLength

        if carryCount > 0 {
            // Carry only exists at a chunk boundary, so this is the chunk's first byte. Check
            // whether the carried delimiter prefix continues in this chunk.
            let carried = carryCount
            let needed = length + 1 - carried  // rest of the delimiter + its terminator byte
            let available = min(needed, count)
            var matches = true
            for offset in 0..<available {
                let position = carried + offset
                let byte = chunk[offset]
                let ok = position < length
                    ? byte == delimiter.load(fromByteOffset: position, as: UInt8.self)
                    : Self.isDelimiterTerminator(byte)
                if !ok { matches = false; break }
            }
            if matches {
                if available < needed {
                    // Still undecided: the chunk is too short. It fits, as carry + chunk is
                    // shorter than delimiter + terminator.
                    (carry + carried).copyMemory(from: base, byteCount: count)
                    carryCount += count
                    assert(carryCount <= delimiterLength)
                    return count
                }
                carryCount = 0
                try delimiterFound(handler)
                return length - carried  // the terminator byte, handled by .afterDelimiter
            }
            // Not a delimiter. The delimiter contains a CR only at its start (a boundary has no
            // CR), so no delimiter can start inside the carry after its first byte: all of it
            // is content, and the search resumes at the start of this chunk.
            if emitting {
                try handler(.partData(UnsafeRawBufferPointer(start: carry, count: carried)))
            }
            carryCount = 0
        }

        // Every delimiter starts with CR, so jump from CR to CR with memchr (vectorised)
        // and compare the full delimiter only there.
        var searchFrom = start
        while searchFrom < count {
            guard let hit = memchr(base + searchFrom, Int32(Self.cr), count - searchFrom) else { break }
            let position = base.distance(to: UnsafeRawPointer(hit))
            let remaining = count - position
            if remaining > length {
                if memcmp(base + position, delimiter, length) == 0,
                   Self.isDelimiterTerminator(chunk[position + length]) {
                    if emitting && position > start {
                        try handler(.partData(UnsafeRawBufferPointer(rebasing: chunk[start..<position])))
                    }
                    try delimiterFound(handler)
                    return position + length
                }
            } else if memcmp(base + position, delimiter, remaining) == 0 {
                // The chunk ends with a delimiter prefix (or a whole delimiter without its
                // terminator): report what precedes it and decide on the rest next time.
                if emitting && position > start {
                    try handler(.partData(UnsafeRawBufferPointer(rebasing: chunk[start..<position])))
                }
                carry.copyMemory(from: base + position, byteCount: remaining)
                carryCount = remaining
                return count
            }
            searchFrom = position + 1
        }
        if emitting && count > start {
            try handler(.partData(UnsafeRawBufferPointer(rebasing: chunk[start..<count])))
        }
        return count
    }

    private func delimiterFound(_ handler: (MultipartEvent) throws -> Void) throws {
        let endsPart = state == .body
        state = .afterDelimiter
        if endsPart { try handler(.partEnd) }
    }

    /// Collects header bytes from `start` up to and including the blank line that ends the
    /// block, then reports `partBegin`. Returns the index to continue at.
    private func scanHeaders(
        _ chunk: UnsafeRawBufferPointer, from start: Int, _ handler: (MultipartEvent) throws -> Void
    ) throws -> Int {
        let count = chunk.count
        // Look no further than the size limit allows, so an endless header block is refused
        // without scanning (or buffering) the rest of a large chunk.
        let scanEnd = min(count, start + (maxHeaderBytes - headerBlock.count))
        var index = start
        var complete = false
        while index < scanEnd {
            let byte = chunk[index]
            index += 1
            switch byte {
            case Self.cr:
                headerEndProgress = headerEndProgress == 2 ? 3 : 1
            case Self.lf:
                headerEndProgress = headerEndProgress == 1 ? 2 : (headerEndProgress == 3 ? 4 : 0)
            default:
                headerEndProgress = 0
            }
            if headerEndProgress == 4 {
                complete = true
                break
            }
        }
        headerBlock.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<index]))
        if !complete {
            // Out of input is fine; out of budget with input left is not.
            if index < count { throw Self.headersTooLarge }
            return index
        }
        let headers = try Self.parseHeaderBlock(headerBlock)
        headerBlock.removeAll(keepingCapacity: true)
        state = .body
        try handler(.partBegin(headers))
        return index
    }
}

// MARK: - Header parsing

extension MultipartParser {
    /// Parses a complete header block (header lines, each ending in CRLF, then the blank
    /// line's CRLF). Only `Content-Disposition` and `Content-Type` matter; others are ignored.
    static func parseHeaderBlock(_ block: [UInt8]) throws -> MultipartPartHeaders {
        var disposition: [UInt8]?
        var contentType: [UInt8]?
        // The header being built, kept open so obsolete folded continuation lines can extend it.
        var pendingName: ArraySlice<UInt8>?
        var pendingValue: [UInt8] = []

        func commit() throws {
            guard let name = pendingName else { return }
            // Duplicates are refused: which one wins is exactly what an attacker would exploit
            // if a proxy or scanner in front of us picked the other.
            if asciiEqualsIgnoringCase(name, "content-disposition") {
                guard disposition == nil else { throw malformed }
                disposition = pendingValue
            } else if asciiEqualsIgnoringCase(name, "content-type") {
                guard contentType == nil else { throw malformed }
                contentType = pendingValue
            }
            pendingName = nil
        }

        // The final CRLF is the blank line; everything before it is CRLF-terminated lines.
        let end = block.count - 2
        var lineStart = 0
        while lineStart < end {
            // Find the line's CRLF; a bare CR or LF is malformed (CRLF is required, and lone
            // line breaks are a classic header-smuggling trick).
            var lineEnd = lineStart
            while block[lineEnd] != cr {
                if block[lineEnd] == lf { throw malformed }
                lineEnd += 1
            }
            guard block[lineEnd + 1] == lf else { throw malformed }
            let line = block[lineStart..<lineEnd]
            lineStart = lineEnd + 2

            if let first = line.first, first == space || first == tab {
                // Obsolete line folding (RFC 5322): continues the previous header's value.
                guard pendingName != nil else { throw malformed }
                let continuation = trimmed(line)
                if !continuation.isEmpty {
                    pendingValue.append(space)
                    pendingValue.append(contentsOf: continuation)
                }
                continue
            }
            try commit()
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw malformed
            }
            let name = line[line.startIndex..<colon]
            guard name.allSatisfy(isTokenByte) else { throw malformed }
            pendingName = name
            pendingValue = Array(trimmed(line[(colon + 1)...]))
        }
        try commit()

        guard let disposition,
              let parsed = parseParameterizedValue(disposition),
              asciiLowercased(parsed.type) == Array("form-data".utf8)
        else { throw malformed }
        var name: [UInt8]?
        var filename: [UInt8]?
        for parameter in parsed.parameters {
            // `filename*` (RFC 5987) is deliberately not supported: RFC 7578 §4.2 says
            // senders must not use it, and it is ignored like any unknown parameter.
            if parameter.name == Array("name".utf8) {
                guard name == nil else { throw malformed }
                name = parameter.value
            } else if parameter.name == Array("filename".utf8) {
                guard filename == nil else { throw malformed }
                filename = parameter.value
            }
        }
        guard let name, !name.isEmpty, let nameString = String(validating: name, as: UTF8.self) else {
            throw malformed
        }
        var headers = MultipartPartHeaders(name: nameString)
        if let filename {
            guard let string = String(validating: filename, as: UTF8.self) else { throw malformed }
            headers.filename = string
        }
        if let contentType {
            guard let string = String(validating: contentType, as: UTF8.self) else { throw malformed }
            headers.contentType = string
        }
        return headers
    }

    /// Parses `type *( ";" name "=" value )` with optional whitespace around the separators,
    /// as used by `Content-Type` and `Content-Disposition`. Values are tokens or quoted
    /// strings (backslash escapes any byte). Parameter names are lowercased. Returns nil on a
    /// syntax error. Empty parameters (`;;`, trailing `;`) are tolerated, as browsers and
    /// other parsers do.
    static func parseParameterizedValue(_ bytes: [UInt8]) -> (type: [UInt8], parameters: [(name: [UInt8], value: [UInt8])])? {
        let end = bytes.count
        var index = 0
        func skipWhitespace() {
            while index < end && (bytes[index] == space || bytes[index] == tab) { index += 1 }
        }

        skipWhitespace()
        let typeStart = index
        while index < end && bytes[index] != UInt8(ascii: ";") { index += 1 }
        let type = Array(trimmed(bytes[typeStart..<index]))
        guard !type.isEmpty else { return nil }

        var parameters: [(name: [UInt8], value: [UInt8])] = []
        while index < end {
            // Here bytes[index] is ";".
            index += 1
            skipWhitespace()
            if index == end { break }
            if bytes[index] == UInt8(ascii: ";") { continue }
            let nameStart = index
            while index < end && isTokenByte(bytes[index]) && bytes[index] != UInt8(ascii: "=") { index += 1 }
            let name = asciiLowercased(bytes[nameStart..<index])
            guard !name.isEmpty else { return nil }
            skipWhitespace()
            guard index < end, bytes[index] == UInt8(ascii: "=") else { return nil }
            index += 1
            skipWhitespace()
            var value: [UInt8] = []
            if index < end && bytes[index] == UInt8(ascii: "\"") {
                index += 1
                var closed = false
                while index < end {
                    let byte = bytes[index]
                    index += 1
                    if byte == UInt8(ascii: "\"") { closed = true; break }
                    if byte == UInt8(ascii: "\\") {
                        guard index < end else { return nil }
                        value.append(bytes[index])
                        index += 1
                    } else {
                        value.append(byte)
                    }
                }
                guard closed else { return nil }
                skipWhitespace()
                guard index == end || bytes[index] == UInt8(ascii: ";") else { return nil }
            } else {
                // Unquoted: leniently everything up to the next ";", trimmed, so sloppy
                // clients (e.g. unquoted names with spaces) still work.
                let valueStart = index
                while index < end && bytes[index] != UInt8(ascii: ";") { index += 1 }
                value = Array(trimmed(bytes[valueStart..<index]))
            }
            parameters.append((name: name, value: value))
        }
        return (type: type, parameters: parameters)
    }

    /// RFC 2046 boundaries are 1...70 characters from a restricted ASCII set. We accept any
    /// printable ASCII (a superset, for lenient clients) but never CR/LF or controls, which the
    /// delimiter search relies on, and never a trailing space, which would be indistinguishable
    /// from transport padding.
    static func isValidBoundary(_ bytes: [UInt8]) -> Bool {
        guard (1...70).contains(bytes.count), bytes.last != space else { return false }
        return bytes.allSatisfy { (0x20...0x7E).contains($0) }
    }

    /// RFC 9110 token characters.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, first == space || first == tab { slice.removeFirst() }
        while let last = slice.last, last == space || last == tab { slice.removeLast() }
        return slice
    }

    private static func asciiLowercased(_ bytes: some Collection<UInt8>) -> [UInt8] {
        bytes.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 }
    }

    private static func asciiEqualsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lowercase: String) -> Bool {
        asciiLowercased(bytes).elementsEqual(lowercase.utf8)
    }
}
