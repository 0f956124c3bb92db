import Foundation
import XCTest
@testable import ChatSecurity
@testable import ChatPostgres

final class FileSnifferTests: XCTestCase {

    private var tempDir: URL!

    override func setUpWithError() throws {
        tempDir = FileManager.default.temporaryDirectory
            .appendingPathComponent("FileSnifferTests-\(Crypto.randomAlphanumeric(12))")
        try FileManager.default.createDirectory(at: tempDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tempDir)
    }

    // MARK: - Fixtures

    private func ascii(_ s: String) -> [UInt8] { Array(s.utf8) }
    private func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    private func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    private func le32(_ v: Int) -> [UInt8] { le16(v & 0xFFFF) + le16(v >> 16 & 0xFFFF) }
    private func be32(_ v: Int) -> [UInt8] { be16(v >> 16 & 0xFFFF) + be16(v & 0xFFFF) }
    private func pad(_ b: [UInt8], to n: Int = 64) -> [UInt8] {
        b + [UInt8](repeating: 0, count: max(0, n - b.count))
    }

    private func png(width: Int, height: Int) -> [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + be32(13) + ascii("IHDR")
            + be32(width) + be32(height) + [8, 6, 0, 0, 0] + [0, 0, 0, 0]  // CRC not checked
            + be32(0) + ascii("IEND") + [0xAE, 0x42, 0x60, 0x82]
    }

    private func gif(width: Int, height: Int) -> [UInt8] {
        ascii("GIF89a") + le16(width) + le16(height) + [0x00, 0x00, 0x00]
            + [0x2C, 0, 0, 0, 0] + le16(width) + le16(height) + [0, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B]
    }

    private func riff(_ chunk: String, _ payload: [UInt8]) -> [UInt8] {
        let body = ascii("WEBP") + ascii(chunk) + le32(payload.count) + payload
        return ascii("RIFF") + le32(body.count) + body
    }

    private func webpVP8X(width: Int, height: Int) -> [UInt8] {
        let w = width - 1, h = height - 1
        return riff("VP8X", [0x10, 0, 0, 0,
                             UInt8(w & 0xFF), UInt8(w >> 8 & 0xFF), UInt8(w >> 16 & 0xFF),
                             UInt8(h & 0xFF), UInt8(h >> 8 & 0xFF), UInt8(h >> 16 & 0xFF)])
    }

    private func webpVP8L(width: Int, height: Int, alpha: Bool = true) -> [UInt8] {
        let bits = (width - 1) | (height - 1) << 14 | (alpha ? 1 << 28 : 0)
        return riff("VP8L", [0x2F] + le32(bits) + [0, 0, 0])
    }

    private func webpVP8(width: Int, height: Int) -> [UInt8] {
        // Key-frame tag (bit 0 = 0, show_frame set), start code, 14-bit dims with scale bits
        // set in the top two bits to prove they are masked off.
        riff("VP8 ", [0x50, 0x02, 0x00, 0x9D, 0x01, 0x2A] + le16(width | 0x4000) + le16(height | 0x8000)
             + [UInt8](repeating: 0, count: 8))
    }

    private func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] {
        [0xFF, marker] + be16(payload.count + 2) + payload
    }

    private func sof(_ marker: UInt8, width: Int, height: Int) -> [UInt8] {
        segment(marker, [8] + be16(height) + be16(width) + [3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])
    }

    private func jpeg(_ middle: [UInt8]) -> [UInt8] {
        [0xFF, 0xD8] + middle + segment(0xDA, [1, 1, 0, 0, 63, 0]) + [0x12, 0x34, 0xFF, 0xD9]
    }

    private let app0 = [0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0]
    private let dqt = [0xFF, 0xDB] + [0x00, 0x43, 0x00] + [UInt8](repeating: 1, count: 64)

    /// Writes `bytes` to a temp file and runs `imageInfo` on an open descriptor.
    private func info(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> ImageInfo? {
        let url = tempDir.appendingPathComponent(Crypto.randomAlphanumeric(10))
        XCTAssertNoThrow(try Data(bytes).write(to: url), file: file, line: line)
        let fd = open(url.path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0, file: file, line: line)
        defer { close(fd) }
        return FileSniffer.imageInfo(readingFrom: fd)
    }

    // MARK: - detect

    func testDetectEachKind() {
        let cases: [([UInt8], FileKind)] = [
            ([0xFF, 0xD8, 0xFF, 0xE0] + ascii("JFIF"), .jpeg),
            (png(width: 1, height: 1), .png),
            (ascii("GIF87a") + [1, 0, 1, 0], .gif),
            (gif(width: 1, height: 1), .gif),
            (webpVP8X(width: 1, height: 1), .webp),
            (ascii("%PDF-1.7\n%\u{e2}\u{e3}"), .pdf),
            ([0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00], .zip),
            ([0x50, 0x4B, 0x05, 0x06] + [UInt8](repeating: 0, count: 18), .zip),
            ([0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0], .ole),
            ([0, 0, 0, 0x20] + ascii("ftypisom") + [0, 0, 2, 0] + ascii("isomiso2mp41"), .mp4),
            ([0, 0, 0, 0x14] + ascii("ftypqt  ") + [0, 0, 0, 0], .mp4),   // .mov
            ([0, 0, 0, 0x1C] + ascii("ftypM4A ") + [0, 0, 0, 0], .mp4),   // .m4a
            (ascii("ID3") + [4, 0, 0, 0, 0, 0x10, 0], .mp3),
            ([0xFF, 0xFB, 0x90, 0x64], .mp3),   // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz
            ([0xFF, 0xF3, 0x48, 0xC4], .mp3),   // MPEG-2 Layer III
            ([0xFF, 0xE3, 0x18, 0xC4], .mp3),   // MPEG-2.5 Layer III
            ([0xFF, 0xFD, 0x90, 0x04], .mp3),   // MPEG-1 Layer II
            ([0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC], .aac),  // ADTS MPEG-4 AAC-LC 44.1 kHz
            ([0xFF, 0xF9, 0x50, 0x80, 0x02, 0x1F, 0xFC], .aac),  // ADTS MPEG-2
            ([0xFF, 0xF0, 0x4C, 0x80], .aac),                    // ADTS with CRC
            (ascii("ADIF") + [0, 0, 0, 0], .aac),
            (ascii("#!AMR\n") + [0x3C], .amr),
            (ascii("#!AMR-WB\n"), .amr),
            (ascii("hello, world\n"), .text),
            (ascii("中文文本 with émojis 🎉\r\n\tend"), .text),
        ]
        for (header, kind) in cases {
            XCTAssertEqual(FileSniffer.detect(header), kind, "\(header.prefix(8).map { String($0, radix: 16) })")
            // Zero padding after the magic must not change the verdict (text excepted: NULs).
            if kind != .text { XCTAssertEqual(FileSniffer.detect(pad(header)), kind) }
        }
    }

    func testDetectRejectsUnknownAndBinary() {
        XCTAssertNil(FileSniffer.detect([]))
        XCTAssertNil(FileSniffer.detect([0x00, 0x01, 0x02, 0x03]))
        XCTAssertNil(FileSniffer.detect(ascii("abc") + [0] + ascii("def")))          // NUL → not text
        XCTAssertNil(FileSniffer.detect(ascii("RIFF") + le32(100) + ascii("WAVEfmt ")))  // WAV, not WebP
        XCTAssertNil(FileSniffer.detect([0x4D, 0x5A, 0x90, 0x00]))                     // PE executable
        XCTAssertNil(FileSniffer.detect([0x7F] + ascii("ELF") + [2, 1, 1, 0]))          // ELF has NULs
        XCTAssertNil(FileSniffer.detect([0xFF, 0xE1, 0x00, 0x00]))                     // MPEG-2.5 with reserved layer 00
        XCTAssertNil(FileSniffer.detect([0xFF, 0xFB, 0xF0, 0x00]))                     // bad bitrate index 1111
        XCTAssertNil(FileSniffer.detect([0xFF, 0xFB, 0x9C, 0x00]))                     // reserved sampling rate
        XCTAssertNil(FileSniffer.detect([0xFF, 0xEB, 0x90, 0x00]))                     // reserved MPEG version 01
        XCTAssertNil(FileSniffer.detect([0xFF, 0xF1, 0x3C, 0x80]))                     // ADTS sampling index 15
    }

    func testTextUTF8Validation() {
        XCTAssertNil(FileSniffer.detect([0x61, 0xC0, 0x80]))            // overlong NUL
        XCTAssertNil(FileSniffer.detect([0x61, 0xE0, 0x80, 0x80]))      // overlong 3-byte
        XCTAssertNil(FileSniffer.detect([0x61, 0xED, 0xA0, 0x80]))      // UTF-16 surrogate
        XCTAssertNil(FileSniffer.detect([0x61, 0xF4, 0x90, 0x80, 0x80]))  // > U+10FFFF
        XCTAssertNil(FileSniffer.detect([0x61, 0x80]))                  // stray continuation
        XCTAssertNil(FileSniffer.detect([0x61, 0xE4, 0xB8]))            // short file ends mid-char
        // A full-size header cut in the middle of a character is just a prefix of valid text.
        let cut = Array(ascii(String(repeating: "a", count: 62)) + [0xE4, 0xB8])
        XCTAssertEqual(cut.count, FileSniffer.headerBytesNeeded)
        XCTAssertEqual(FileSniffer.detect(cut), .text)
        // ...but not if the bytes present are already wrong.
        XCTAssertNil(FileSniffer.detect(Array(ascii(String(repeating: "a", count: 62)) + [0xE4, 0x41])))
    }

    // MARK: - extension policy

    func testExtensionPolicy() {
        XCTAssertEqual(FileSniffer.allowedExtensions, [
            "jpg", "jpeg", "png", "gif", "webp", "amr", "aac", "m4a", "mp3", "mp4", "mov",
            "pdf", "txt", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip"])
        let expected: [String: FileKind] = [
            "jpg": .jpeg, "jpeg": .jpeg, "png": .png, "gif": .gif, "webp": .webp, "amr": .amr,
            "aac": .aac, "m4a": .mp4, "mp4": .mp4, "mov": .mp4, "mp3": .mp3, "pdf": .pdf,
            "txt": .text, "doc": .ole, "xls": .ole, "ppt": .ole, "docx": .zip, "xlsx": .zip,
            "pptx": .zip, "zip": .zip]
        for ext in FileSniffer.allowedExtensions {
            let want = expected[ext]!
            for kind in FileKind.allCases {
                XCTAssertEqual(FileSniffer.extensionMatches(ext, kind: kind), kind == want, "\(ext) \(kind)")
            }
            XCTAssertFalse(FileSniffer.extensionMatches(ext, kind: nil))
            XCTAssertNotEqual(FileSniffer.contentType(forExtension: ext), "application/octet-stream", ext)
        }
        XCTAssertTrue(FileSniffer.extensionMatches("JPG", kind: .jpeg))
        XCTAssertFalse(FileSniffer.extensionMatches("html", kind: .text))
        XCTAssertFalse(FileSniffer.extensionMatches("svg", kind: .text))
        XCTAssertFalse(FileSniffer.extensionMatches("", kind: .text))
    }

    func testContentTypes() {
        XCTAssertEqual(FileSniffer.contentType(forExtension: "jpg"), "image/jpeg")
        XCTAssertEqual(FileSniffer.contentType(forExtension: "JPEG"), "image/jpeg")
        XCTAssertEqual(FileSniffer.contentType(forExtension: "mp3"), "audio/mpeg")
        XCTAssertEqual(FileSniffer.contentType(forExtension: "m4a"), "audio/mp4")
        XCTAssertEqual(FileSniffer.contentType(forExtension: "mov"), "video/quicktime")
        XCTAssertEqual(FileSniffer.contentType(forExtension: "txt"), "text/plain; charset=utf-8")
        XCTAssertEqual(FileSniffer.contentType(forExtension: "docx"),
                       "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        XCTAssertEqual(FileSniffer.contentType(forExtension: "html"), "application/octet-stream")
    }

    // MARK: - imageInfo

    func testPNGInfo() {
        XCTAssertEqual(info(png(width: 640, height: 480)), ImageInfo(kind: .png, width: 640, height: 480))
        XCTAssertEqual(info(png(width: 1, height: 70_000)), ImageInfo(kind: .png, width: 1, height: 70_000))
        XCTAssertNil(info(png(width: 0, height: 10)))
        XCTAssertNil(info(Array(png(width: 5, height: 5).prefix(20))))  // truncated IHDR
    }

    func testGIFInfo() {
        XCTAssertEqual(info(gif(width: 300, height: 2)), ImageInfo(kind: .gif, width: 300, height: 2))
        XCTAssertNil(info(gif(width: 0, height: 2)))
    }

    func testWebPInfo() {
        XCTAssertEqual(info(webpVP8X(width: 4000, height: 3000)), ImageInfo(kind: .webp, width: 4000, height: 3000))
        XCTAssertEqual(info(webpVP8X(width: 16_777_216, height: 1)),
                       ImageInfo(kind: .webp, width: 16_777_216, height: 1))
        XCTAssertEqual(info(webpVP8L(width: 400, height: 301)), ImageInfo(kind: .webp, width: 400, height: 301))
        XCTAssertEqual(info(webpVP8L(width: 16_384, height: 1, alpha: false)),
                       ImageInfo(kind: .webp, width: 16_384, height: 1))
        XCTAssertEqual(info(webpVP8(width: 1024, height: 768)), ImageInfo(kind: .webp, width: 1024, height: 768))

        var badStart = webpVP8(width: 10, height: 10)
        badStart[24] = 0x00   // corrupt the 9D 01 2A start code
        XCTAssertNil(info(badStart))
        var badSig = webpVP8L(width: 10, height: 10)
        badSig[20] = 0x2E
        XCTAssertNil(info(badSig))
        XCTAssertNil(info(riff("VP8 ", [0x50, 0x02, 0x00, 0x9D, 0x01, 0x2A] + le16(0) + le16(5) + [0, 0])))
        XCTAssertNil(info(riff("ALPH", [UInt8](repeating: 0, count: 20))))
        XCTAssertNil(info(Array(webpVP8X(width: 5, height: 5).prefix(26))))
    }

    func testJPEGBaselineWithAPP0() {
        let file = jpeg(app0 + dqt + sof(0xC0, width: 1920, height: 1080))
        XCTAssertEqual(FileSniffer.detect(Array(file.prefix(64))), .jpeg)
        XCTAssertEqual(info(file), ImageInfo(kind: .jpeg, width: 1920, height: 1080))
    }

    func testJPEGWithAPP1BeforeSOF0() {
        // A large EXIF APP1 pushes SOF0 past the reader's first 4 KiB window.
        let exif = segment(0xE1, ascii("Exif") + [0, 0] + [UInt8](repeating: 0x4D, count: 9000))
        let file = jpeg(exif + dqt + sof(0xC0, width: 3024, height: 4032))
        XCTAssertEqual(info(file), ImageInfo(kind: .jpeg, width: 3024, height: 4032))
    }

    func testJPEGProgressiveSOF2() {
        let file = jpeg(app0 + segment(0xFE, ascii("comment")) + dqt + sof(0xC2, width: 800, height: 600))
        XCTAssertEqual(info(file), ImageInfo(kind: .jpeg, width: 800, height: 600))
    }

    func testJPEGFillBytesAndStandaloneMarkers() {
        // Fill bytes before a marker and a stray RST/TEM between segments must be skipped.
        let file = [0xFF, 0xD8, 0xFF, 0xFF, 0xFF] + app0.dropFirst() + [0xFF, 0xD0, 0xFF, 0x01]
            + dqt + [0xFF, 0xFF] + sof(0xC1, width: 17, height: 9) + [0xFF, 0xD9]
        XCTAssertEqual(info(file), ImageInfo(kind: .jpeg, width: 17, height: 9))
    }

    func testJPEGDHTIsNotMistakenForSOF() {
        // C4 (DHT) and CC (DAC) sit inside the C0-CF range but are not frame headers.
        let dht = segment(0xC4, [0x00] + [UInt8](repeating: 0, count: 16) + [0])
        let dac = segment(0xCC, [0x00, 0x10])
        let file = jpeg(dht + dac + sof(0xC9, width: 64, height: 32))
        XCTAssertEqual(info(file), ImageInfo(kind: .jpeg, width: 64, height: 32))
    }

    func testJPEGCorruptOrTruncated() {
        let good = jpeg(app0 + dqt + sof(0xC0, width: 100, height: 50))
        let sofStart = 2 + app0.count + dqt.count
        XCTAssertNil(info(Array(good.prefix(sofStart + 6))))       // cut inside SOF0
        XCTAssertNil(info(Array(good.prefix(sofStart))))           // cut before SOF0
        XCTAssertNil(info([0xFF, 0xD8, 0xFF, 0xE1, 0x40, 0x00] + ascii("Exif")))  // APP1 runs past EOF
        XCTAssertNil(info([0xFF, 0xD8, 0xFF]))
        XCTAssertNil(info(jpeg(app0)))                              // SOS before any SOF
        XCTAssertNil(info([0xFF, 0xD8, 0xFF, 0xD9]))                // EOI right away
        XCTAssertNil(info([0xFF, 0xD8] + app0 + [0x00, 0x00, 0x00]))  // garbage where a marker belongs
        XCTAssertNil(info([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]))    // length < 2
        XCTAssertNil(info(jpeg(sof(0xC0, width: 100, height: 0))))  // DNL-defined height
        XCTAssertNil(info(jpeg(sof(0xC0, width: 0, height: 100))))
        // Endless fill bytes and endless tiny segments are both cut off.
        XCTAssertNil(info([0xFF, 0xD8] + [UInt8](repeating: 0xFF, count: 10_000)))
        let manyComments = [UInt8]((0..<2000).flatMap { _ in segment(0xFE, [0x20]) })
        XCTAssertNil(info(jpeg(manyComments + sof(0xC0, width: 1, height: 1))))
    }

    func testNonImagesAndEmptyFile() {
        XCTAssertNil(info([]))
        XCTAssertNil(info(ascii("%PDF-1.4\n")))
        XCTAssertNil(info(ascii("just text, not an image at all......")))
        XCTAssertNil(info([0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 40)))
    }

    func testImageInfoDoesNotMoveFileOffset() throws {
        let url = tempDir.appendingPathComponent("offset.png")
        try Data(png(width: 2, height: 3)).write(to: url)
        let fd = open(url.path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(lseek(fd, 5, SEEK_SET), 5)
        XCTAssertEqual(FileSniffer.imageInfo(readingFrom: fd), ImageInfo(kind: .png, width: 2, height: 3))
        XCTAssertEqual(lseek(fd, 0, SEEK_CUR), 5)
        XCTAssertNil(FileSniffer.imageInfo(readingFrom: -1))  // bad descriptor
    }
}
