#if canImport(Glibc)
import Glibc

#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What an uploaded file's first bytes say it is.
///
/// Uploads are accepted only when this agrees with the claimed extension, so a file served
/// back with the extension's Content-Type really has that format (no HTML/SVG/script
/// smuggled in under an image name).
public enum FileKind: String, Sendable, CaseIterable {
    case jpeg, png, gif, webp, pdf, zip
    /// OLE2 compound file: legacy .doc / .xls / .ppt.
    case ole
    /// ISO base media file (`ftyp` box): .mp4, .mov, .m4a.
    case mp4
    case mp3, amr, aac
    /// NUL-free valid UTF-8 (only meaningful for .txt).
    case text
}

/// Pixel dimensions read from an image header.
public struct ImageInfo: Equatable, Sendable {
    public var kind: FileKind
    public var width: Int
    public var height: Int

    public init(kind: FileKind, width: Int, height: Int) {
        self.kind = kind
        self.width = width
        self.height = height
    }
}

/// Content detection by magic bytes, extension policy, and image dimension parsing.
public enum FileSniffer {

    /// How many leading bytes `detect` wants to see (fewer is fine for short files).
    public static let headerBytesNeeded = 64

    // MARK: - Detection

    /// Identifies a file from its first bytes (pass up to `headerBytesNeeded`).
    /// Returns nil when no allowed format matches.
    public static func detect(_ header: [UInt8]) -> FileKind? {
        let h = header
        guard !h.isEmpty else { return nil }

        if h.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if h.starts(with: pngSignature) { return .png }
        if h.starts(with: Array("GIF87a".utf8)) || h.starts(with: Array("GIF89a".utf8)) { return .gif }
        if h.count >= 12, h.starts(with: Array("RIFF".utf8)), Array(h[8..<12]) == Array("WEBP".utf8) {
            return .webp
        }
        if h.starts(with: Array("%PDF-".utf8)) { return .pdf }
        // Local file header, or the end-of-central-directory record of an empty archive.
        if h.starts(with: [0x50, 0x4B, 0x03, 0x04]) || h.starts(with: [0x50, 0x4B, 0x05, 0x06]) {
            return .zip
        }
        if h.starts(with: [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) { return .ole }
        if h.count >= 8, Array(h[4..<8]) == Array("ftyp".utf8) { return .mp4 }
        if h.starts(with: Array("#!AMR".utf8)) { return .amr }  // covers "#!AMR\n" and "#!AMR-WB\n"
        if h.starts(with: Array("ID3".utf8)) { return .mp3 }
        if h.starts(with: Array("ADIF".utf8)) { return .aac }
        if h.count >= 3, h[0] == 0xFF {
            // Both MPEG audio and AAC ADTS start with an all-ones sync word; the two layer
            // bits (byte 1, bits 2-1) tell them apart: ADTS always has layer 00, which is
            // "reserved" for MPEG audio.
            if isADTSHeader(h) { return .aac }
            if isMPEGAudioFrameHeader(h) { return .mp3 }
        }
        if isText(h) { return .text }
        return nil
    }

    private static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// AAC ADTS: 12-bit sync 0xFFF, layer 00 (FF F0/F1/F8/F9), valid sampling index (< 13).
    private static func isADTSHeader(_ h: [UInt8]) -> Bool {
        guard h[0] == 0xFF, h[1] & 0xF6 == 0xF0 else { return false }
        let samplingIndex = (h[2] >> 2) & 0x0F
        return samplingIndex < 13
    }

    /// MPEG-1/2/2.5 audio frame header: 11-bit sync, version not reserved (01), layer not
    /// reserved (00), bitrate index not 1111, sampling-rate index not 11.
    private static func isMPEGAudioFrameHeader(_ h: [UInt8]) -> Bool {
        guard h[0] == 0xFF, h[1] & 0xE0 == 0xE0 else { return false }
        let version = (h[1] >> 3) & 0x03
        let layer = (h[1] >> 1) & 0x03
        let bitrateIndex = h[2] >> 4
        let samplingIndex = (h[2] >> 2) & 0x03
        return version != 0b01 && layer != 0b00 && bitrateIndex != 0x0F && samplingIndex != 0b11
    }

    /// No NUL bytes and valid UTF-8 (no overlongs, surrogates, or code points > U+10FFFF).
    /// A multi-byte sequence cut off by the end of a full-size header is tolerated, because
    /// the header is an arbitrary prefix of a longer file.
    private static func isText(_ h: [UInt8]) -> Bool {
        var i = 0
        let n = h.count
        while i < n {
            let c = h[i]
            if c == 0 { return false }
            if c < 0x80 { i += 1; continue }

            let len: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF  // allowed range of the 2nd byte
            switch c {
            case 0xC2...0xDF: len = 2
            case 0xE0: len = 3; lo = 0xA0          // no overlongs
            case 0xE1...0xEC, 0xEE...0xEF: len = 3
            case 0xED: len = 3; hi = 0x9F          // no UTF-16 surrogates
            case 0xF0: len = 4; lo = 0x90          // no overlongs
            case 0xF1...0xF3: len = 4
            case 0xF4: len = 4; hi = 0x8F          // ≤ U+10FFFF
            default: return false                  // continuation byte, C0/C1, F5-FF
            }
            for k in 1..<len {
                guard i + k < n else {
                    // Truncated sequence: only acceptable if the header was cut from a longer file.
                    return n >= headerBytesNeeded
                }
                let cc = h[i + k]
                let (l, u) = k == 1 ? (lo, hi) : (UInt8(0x80), UInt8(0xBF))
                guard cc >= l, cc <= u else { return false }
            }
            i += len
        }
        return true
    }

    // MARK: - Extension policy

    /// Extensions the upload endpoint accepts (lower-case, without the dot).
    public static let allowedExtensions: Set<String> = [
        "jpg", "jpeg", "png", "gif", "webp", "amr", "aac", "m4a", "mp3", "mp4", "mov",
        "pdf", "txt", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip",
    ]

    /// The content kind each allowed extension must have. docx/xlsx/pptx are ZIP containers.
    private static let expectedKind: [String: FileKind] = [
        "jpg": .jpeg, "jpeg": .jpeg, "png": .png, "gif": .gif, "webp": .webp,
        "amr": .amr, "aac": .aac, "m4a": .mp4, "mp4": .mp4, "mov": .mp4, "mp3": .mp3,
        "pdf": .pdf, "txt": .text,
        "doc": .ole, "xls": .ole, "ppt": .ole,
        "docx": .zip, "xlsx": .zip, "pptx": .zip, "zip": .zip,
    ]

    /// True when `ext` (case-insensitive, no dot) is allowed and `kind` is the detected
    /// content it requires. A nil kind (unrecognised content) never matches.
    public static func extensionMatches(_ ext: String, kind: FileKind?) -> Bool {
        guard let kind, let expected = expectedKind[ext.lowercased()] else { return false }
        return expected == kind
    }

    /// Content-Type to serve a file of this extension with (case-insensitive, no dot).
    /// Unknown extensions get `application/octet-stream`, which browsers will not render.
    public static func contentType(forExtension ext: String) -> String {
        switch ext.lowercased() {
        case "jpg", "jpeg": return "image/jpeg"
        case "png": return "image/png"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "amr": return "audio/amr"
        case "aac": return "audio/aac"
        case "m4a": return "audio/mp4"
        case "mp3": return "audio/mpeg"
        case "mp4": return "video/mp4"
        case "mov": return "video/quicktime"
        case "pdf": return "application/pdf"
        case "txt": return "text/plain; charset=utf-8"
        case "doc": return "application/msword"
        case "docx": return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        case "xls": return "application/vnd.ms-excel"
        case "xlsx": return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        case "ppt": return "application/vnd.ms-powerpoint"
        case "pptx": return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        case "zip": return "application/zip"
        default: return "application/octet-stream"
        }
    }

    // MARK: - Image dimensions

    /// Reads an image's dimensions from an open file with `pread` (the file offset is not
    /// moved and the file is never loaded whole). Returns nil for non-images, corrupt or
    /// truncated headers, and zero dimensions.
    public static func imageInfo(readingFrom fd: Int32) -> ImageInfo? {
        var reader = PositionalReader(fd: fd)
        // Up to 32 bytes: enough for every fixed-offset format below. Each parser checks
        // that the bytes it needs are present, so short files simply yield nil.
        guard let header = reader.prefix(32) else { return nil }
        switch detect(header) {
        case .png: return header.count >= 24 ? pngInfo(header) : nil
        case .gif: return header.count >= 10 ? gifInfo(header) : nil
        case .webp: return webpInfo(header)
        case .jpeg: return jpegInfo(&reader)
        default: return nil
        }
    }

    private static func validated(_ kind: FileKind, _ w: Int, _ h: Int) -> ImageInfo? {
        guard w > 0, h > 0 else { return nil }
        return ImageInfo(kind: kind, width: w, height: h)
    }

    /// PNG: the first chunk must be IHDR (length 13); width/height are big-endian u32.
    private static func pngInfo(_ b: [UInt8]) -> ImageInfo? {
        guard be32(b, 8) == 13, Array(b[12..<16]) == Array("IHDR".utf8) else { return nil }
        let w = be32(b, 16), h = be32(b, 20)
        // The PNG spec caps dimensions at 2^31 - 1.
        guard w <= 0x7FFF_FFFF, h <= 0x7FFF_FFFF else { return nil }
        return validated(.png, w, h)
    }

    /// GIF: logical screen width/height, little-endian u16 at offsets 6 and 8.
    private static func gifInfo(_ b: [UInt8]) -> ImageInfo? {
        validated(.gif, le16(b, 6), le16(b, 8))
    }

    /// WebP: RIFF header, then the first chunk decides the bitstream flavour.
    private static func webpInfo(_ b: [UInt8]) -> ImageInfo? {
        // Each flavour needs a different amount of header; a tiny lossless file can be
        // shorter than the 30 bytes VP8/VP8X need, so check per branch.
        guard b.count >= 16 else { return nil }
        let fourcc = Array(b[12..<16])
        if fourcc == Array("VP8 ".utf8) {
            // Lossy: 3-byte frame tag (bit 0 = 0 for a key frame), start code 9D 01 2A,
            // then 14-bit width and height (top 2 bits are scaling).
            guard b.count >= 30, b[20] & 0x01 == 0, b[23] == 0x9D, b[24] == 0x01, b[25] == 0x2A else { return nil }
            return validated(.webp, le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF)
        }
        if fourcc == Array("VP8L".utf8) {
            // Lossless: signature 0x2F, then 14 bits width-1, 14 bits height-1,
            // 1 alpha bit, 3 version bits (must be 0), packed little-endian.
            guard b.count >= 25, b[20] == 0x2F else { return nil }
            let bits = UInt32(b[21]) | UInt32(b[22]) << 8 | UInt32(b[23]) << 16 | UInt32(b[24]) << 24
            guard bits >> 29 == 0 else { return nil }
            let w = Int(bits & 0x3FFF) + 1
            let h = Int((bits >> 14) & 0x3FFF) + 1
            return validated(.webp, w, h)
        }
        if fourcc == Array("VP8X".utf8) {
            // Extended: flags (1), reserved (3), canvas width-1 (24-bit LE), height-1 (24-bit LE).
            guard b.count >= 30, le32(b, 16) >= 10 else { return nil }
            let w = (Int(b[24]) | Int(b[25]) << 8 | Int(b[26]) << 16) + 1
            let h = (Int(b[27]) | Int(b[28]) << 8 | Int(b[29]) << 16) + 1
            return validated(.webp, w, h)
        }
        return nil
    }

    /// Limits for the JPEG marker walk: enough for real files (EXIF, XMP, multi-segment ICC
    /// profiles, Photoshop blocks) while keeping a hostile file from costing more than a
    /// bounded number of small reads.
    private static let jpegMaxSegments = 512
    private static let jpegMaxOffset = 16 * 1024 * 1024
    private static let jpegMaxFillBytes = 64

    /// JPEG: walk marker segments from offset 2 until a start-of-frame marker.
    private static func jpegInfo(_ r: inout PositionalReader) -> ImageInfo? {
        var offset = 2
        for _ in 0..<jpegMaxSegments {
            guard offset < jpegMaxOffset, let first = r.byte(at: offset), first == 0xFF else {
                return nil
            }
            // Any number of 0xFF fill bytes may precede the marker code.
            var fill = 0
            var marker: UInt8 = 0xFF
            var pos = offset + 1
            while true {
                guard let m = r.byte(at: pos) else { return nil }
                pos += 1
                if m != 0xFF { marker = m; break }
                fill += 1
                guard fill <= jpegMaxFillBytes else { return nil }
            }

            switch marker {
            case 0x01, 0xD0...0xD7:
                // TEM and RSTn stand alone: no length field.
                offset = pos
                continue
            case 0x00, 0xD8, 0xD9, 0xDA:
                // Stuffed zero outside entropy data, a second SOI, EOI, or SOS before any
                // frame header: not a usable image header.
                return nil
            default:
                break
            }

            guard let lenBytes = r.bytes(at: pos, count: 2) else { return nil }
            let length = be16(lenBytes, 0)  // includes the two length bytes themselves
            guard length >= 2 else { return nil }

            switch marker {
            case 0xC0...0xC3, 0xC5...0xC7, 0xC9...0xCB, 0xCD...0xCF:
                // SOFn: length(2) precision(1) height(2) width(2) ...
                guard length >= 8, let sof = r.bytes(at: pos + 2, count: 5) else { return nil }
                // Height 0 means "defined later by DNL"; we do not chase that.
                return validated(.jpeg, be16(sof, 3), be16(sof, 1))
            default:
                // C4 (DHT), C8 (JPG), CC (DAC), DB, DD, APPn, COM, ...: skip by length.
                offset = pos + length
            }
        }
        return nil
    }

    // MARK: - Byte helpers
    //
    // Callers check lengths explicitly before indexing rather than relying on Swift's bounds
    // traps: a malformed upload should yield nil, not crash the worker, and under -Ounchecked
    // (should the target ever use it again) a missed check would be an out-of-bounds read.

    private static func be16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
    private static func le16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
    private static func be32(_ b: [UInt8], _ i: Int) -> Int {
        Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
    }
    private static func le32(_ b: [UInt8], _ i: Int) -> Int {
        Int(b[i]) | Int(b[i + 1]) << 8 | Int(b[i + 2]) << 16 | Int(b[i + 3]) << 24
    }
}

/// `pread`-based random access with a small cached window, so walking JPEG markers costs
/// one syscall per 4 KiB region touched rather than one per byte.
private struct PositionalReader {
    let fd: Int32
    private var window: [UInt8] = []
    private var windowStart = 0
    private static let windowSize = 4096

    init(fd: Int32) { self.fd = fd }

    /// Exactly `count` bytes at `offset`, or nil if the file ends first or a read fails.
    mutating func bytes(at offset: Int, count: Int) -> [UInt8]? {
        // Internal callers ask for at most a few dozen bytes; a larger request would need
        // a bigger window, so refuse it.
        guard count <= Self.windowSize else { return nil }
        guard offset >= 0 else { return nil }
        if offset < windowStart || offset + count > windowStart + window.count {
            guard let w = readFully(at: offset, count: Self.windowSize) else { return nil }
            window = w
            windowStart = offset
        }
        let start = offset - windowStart
        guard start + count <= window.count else { return nil }  // EOF inside the request
        return Array(window[start..<(start + count)])
    }

    /// Up to `count` bytes from the start of the file (fewer if the file is shorter).
    mutating func prefix(_ count: Int) -> [UInt8]? {
        guard let w = readFully(at: 0, count: max(count, Self.windowSize)) else { return nil }
        window = w
        windowStart = 0
        return Array(w.prefix(count))
    }

    mutating func byte(at offset: Int) -> UInt8? {
        bytes(at: offset, count: 1)?.first
    }

    /// Reads up to `count` bytes, retrying short reads and EINTR; stops at EOF.
    private func readFully(at offset: Int, count: Int) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buf.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress! + got, count - got, off_t(offset + got))
            }
            if n > 0 { got += n; continue }
            if n == 0 { break }  // EOF
            if errno == EINTR { continue }
            return nil
        }
        buf.removeSubrange(got...)
        return buf
    }
}
