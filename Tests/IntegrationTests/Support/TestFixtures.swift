import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import XCTest

// Helpers shared by the integration tests (on top of StackClient.swift, which stays as it is).

// MARK: - The stack's files

extension Stack {
    /// `$CHAT_TEST_STACK_DIR` (scripts/stack.sh's STACK_DIR), when the environment names it.
    var stackDir: String? {
        let value = ProcessInfo.processInfo.environment["CHAT_TEST_STACK_DIR"] ?? ""
        return value.isEmpty ? nil : value
    }

    /// The application's log: `$CHAT_TEST_STACK_DIR/log/chat-fcgi.log` (a development stack may
    /// call it `log/app.log`).
    var appLogPath: String? {
        guard let dir = stackDir else { return nil }
        for name in ["log/chat-fcgi.log", "log/app.log"] where FileManager.default.fileExists(atPath: dir + "/" + name) {
            return dir + "/" + name
        }
        return nil
    }

    /// nginx's access log of the stack, when there is one.
    var nginxAccessLogPath: String? {
        guard let dir = stackDir else { return nil }
        let path = dir + "/nginx/logs/access.log"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// host and port of the plain-HTTP base URL (for raw-socket requests).
    var hostAndPort: (host: String, port: UInt16) {
        let components = URLComponents(string: baseURL)
        return (components?.host ?? "127.0.0.1", UInt16(components?.port ?? 80))
    }
}

func readWholeFile(_ path: String) -> String {
    guard let data = FileManager.default.contents(atPath: path) else { return "" }
    return String(decoding: data, as: UTF8.self)
}

/// What a log file gains after this is made: a test that looks for its own lines reads only those,
/// not the whole log of every earlier test.
struct LogTail {
    let path: String
    let start: UInt64

    init(_ path: String) {
        self.path = path
        start = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
    }

    var text: String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        try? handle.seek(toOffset: start)
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }
}

// MARK: - Envelope assertions

/// Headers every response must carry (API.md §1): `X-Request-Id` and `Cache-Control: no-store`.
func assertCommonHeaders(_ reply: Reply, _ context: String = "", file: StaticString = #filePath, line: UInt = #line) {
    let rid = reply.header("X-Request-Id") ?? ""
    XCTAssertFalse(rid.isEmpty, "no X-Request-Id (status \(reply.status)) \(context)", file: file, line: line)
    let cache = reply.header("Cache-Control") ?? ""
    XCTAssertTrue(cache.lowercased().contains("no-store"),
                  "Cache-Control is '\(cache)', expected no-store (status \(reply.status)) \(context)", file: file, line: line)
}

/// The body is the contract's envelope: a JSON object with `code` (an integer), `info` (a string)
/// and `data` (present, possibly null).
func assertIsEnvelope(_ reply: Reply, _ context: String = "", file: StaticString = #filePath, line: UInt = #line) {
    let object = (try? JSONSerialization.jsonObject(with: reply.body, options: [.fragmentsAllowed])) as? [String: Any]
    guard let object else {
        XCTFail("not a JSON envelope (status \(reply.status)): \(reply.text.prefix(300)) \(context)", file: file, line: line)
        return
    }
    XCTAssertNotNil(object["code"] as? Int, "envelope without an integer code: \(reply.text.prefix(300)) \(context)", file: file, line: line)
    XCTAssertNotNil(object["info"] as? String, "envelope without an info string: \(reply.text.prefix(300)) \(context)", file: file, line: line)
    XCTAssertTrue(object.keys.contains("data"), "envelope without data: \(reply.text.prefix(300)) \(context)", file: file, line: line)
}

/// Exact status and code, an envelope, the common headers, and (optionally) an `info` that
/// mentions some text (case-insensitively).
func assertReply(_ reply: Reply, status: Int, code: Int, infoContains: String? = nil, _ context: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(reply.status, status, "HTTP status; body: \(reply.text.prefix(400)) \(context)", file: file, line: line)
    assertIsEnvelope(reply, context, file: file, line: line)
    XCTAssertEqual(reply.code, code, "envelope code; body: \(reply.text.prefix(400)) \(context)", file: file, line: line)
    assertCommonHeaders(reply, context, file: file, line: line)
    if let expected = infoContains {
        let info = reply.info ?? ""
        XCTAssertTrue(info.lowercased().contains(expected.lowercased()),
                      "info '\(info)' does not mention '\(expected)' \(context)", file: file, line: line)
    }
}

/// A 200 with code 1.
func assertOK(_ reply: Reply, _ context: String = "", file: StaticString = #filePath, line: UInt = #line) {
    assertReply(reply, status: 200, code: 1, context, file: file, line: line)
}

/// A JSON boolean, told apart from the numbers 0 and 1 by looking at the raw text.
func jsonBoolean(_ reply: Reply, key: String) -> Bool? {
    let text = reply.text
    for (literal, value) in [("true", true), ("false", false)] {
        if text.range(of: "\"\(key)\"\\s*:\\s*\(literal)\\b", options: .regularExpression) != nil { return value }
    }
    return nil
}

func int64(_ value: Any?) -> Int64? {
    if let number = value as? NSNumber { return number.int64Value }
    if let number = value as? Int { return Int64(number) }
    if let number = value as? Int64 { return number }
    return nil
}

// MARK: - Accounts

extension StackClient {
    func register(mobile: String, password: String, name: String = "Tester", code: String,
                  extra: [String: String] = [:]) -> Reply {
        var params = ["mobile": mobile, "pwd": password, "name": name, "validateNum": code]
        for (key, value) in extra { params[key] = value }
        return post("/chat/register", params)
    }

    func login(mobile: String, password: String, device: Int = 1) -> Reply {
        post("/chat/doLogin", ["mobile": mobile, "pwd": password, "device": String(device)])
    }

    /// A POST with the token sent as `Authorization: Bearer`.
    func authed(_ path: String, _ token: String, _ params: [String: String] = [:]) -> Reply {
        post(path, params, headers: ["Authorization": "Bearer \(token)"])
    }

    /// Registers a user without logging in: (mobile, password, userId, the code used).
    func registerOnly(name: String = "Tester", file: StaticString = #filePath, line: UInt = #line)
        -> (mobile: String, password: String, userId: Int64, code: String) {
        let mobile = StackClient.newMobile()
        let password = StackClient.md5Hex("pw-\(mobile)-\(UUID().uuidString)")
        let code = requestCode(for: mobile, file: file, line: line)
        let reply = register(mobile: mobile, password: password, name: name, code: code)
        XCTAssertEqual(reply.code, 1, reply.text, file: file, line: line)
        return (mobile, password, int64(reply.dataObject["userId"]) ?? 0, code)
    }
}

/// Accounts created as early as possible in a run (by whichever test class starts first), for the
/// tests that need a SECOND verification code for an existing user (findPwd, updateAuth): a number
/// gets at most one code per `sms_per_number_interval_s` (a minute in production, a few seconds
/// on the test stack), so those tests wait until that has passed since the code these accounts
/// were registered with, and the rest of the suite runs in between.
enum EarlyAccounts {
    private static let lock = NSLock()
    private static var accounts: [StackClient.Account] = []
    private static var codeSentAt = Date.distantPast
    private static let count = 2

    /// Creates the accounts on the first call of the run.
    static func warmUp(_ client: StackClient) {
        lock.lock()
        defer { lock.unlock() }
        guard accounts.isEmpty else { return }
        codeSentAt = Date()
        for index in 0..<count { accounts.append(client.newAccount(name: "Early\(index)")) }
    }

    /// Account `index`, after waiting until its number may receive a new code.
    static func takeReadyForNewCode(_ index: Int, client: StackClient) -> StackClient.Account {
        warmUp(client)
        lock.lock()
        let account = accounts[index]
        let ready = codeSentAt.addingTimeInterval(Double(client.stack.smsIntervalSeconds) + 1.5)
        lock.unlock()
        let wait = ready.timeIntervalSinceNow
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
        return account
    }
}

// MARK: - Operator command

/// Runs `$CHAT_TEST_BINARY args… --config $CHAT_TEST_CONFIG`; returns its exit status and output.
func runOperatorCommand(_ stack: Stack, _ arguments: [String]) throws -> (status: Int32, output: String) {
    guard let binary = stack.binary, !binary.isEmpty, let config = stack.configPath, !config.isEmpty else {
        throw XCTSkip("CHAT_TEST_BINARY / CHAT_TEST_CONFIG are not set")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments + ["--config", config]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

// MARK: - Multipart

struct MultipartPart {
    var name: String
    var filename: String?
    var contentType: String?
    var data: Data
}

/// A multipart/form-data body and its Content-Type.
func multipartBody(_ parts: [MultipartPart]) -> (body: Data, contentType: String) {
    let boundary = "----chatTestBoundary" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
    var body = Data()
    for part in parts {
        var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
        if let filename = part.filename { head += "; filename=\"\(filename)\"" }
        head += "\r\n"
        if let type = part.contentType { head += "Content-Type: \(type)\r\n" }
        head += "\r\n"
        body.append(Data(head.utf8))
        body.append(part.data)
        body.append(Data("\r\n".utf8))
    }
    body.append(Data("--\(boundary)--\r\n".utf8))
    return (body, "multipart/form-data; boundary=\(boundary)")
}

extension StackClient {
    /// uploadImage with one `fileUpload` part.
    func uploadImage(token: String, data: Data, filename: String = "image.bin",
                     contentType: String = "application/octet-stream") -> Reply {
        let (body, type) = multipartBody([MultipartPart(name: "fileUpload", filename: filename, contentType: contentType, data: data)])
        return postRaw("/chat/uploadImage", body: body, contentType: type, headers: ["Authorization": "Bearer \(token)"])
    }

    func doUploads(token: String, fileExt: String, body: Data) -> Reply {
        postRaw("/chat/doUploads", query: ["fileExt": fileExt], body: body, contentType: "application/octet-stream",
                headers: ["Authorization": "Bearer \(token)"])
    }
}

/// The path part of an upload URL (which may be a path or an absolute URL).
func uploadPath(_ url: String) -> String {
    if url.hasPrefix("/") { return url }
    return URLComponents(string: url)?.path ?? url
}

/// `/uploads/YYYY/MM/<24 chars [a-z0-9]>.<ext>`
func isStoredUploadPath(_ path: String, ext: String) -> Bool {
    path.range(of: "^/uploads/[0-9]{4}/(0[1-9]|1[0-2])/[a-z0-9]{24}\\.\(ext)$", options: .regularExpression) != nil
}

// MARK: - Hand-built images

enum TestImages {
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in bytes {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return (b << 16) | a
    }

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func le16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF)] }
    static func be16(_ value: Int) -> [UInt8] { [UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }
    static func le24(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF)] }
    static func le32(_ value: Int) -> [UInt8] { le16(value & 0xFFFF) + le16(value >> 16) }

    /// A complete 8-bit greyscale PNG: IHDR, one IDAT (zlib with a stored deflate block), IEND.
    static func png(width: Int, height: Int) -> Data {
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + data
            return be32(UInt32(data.count)) + typed + be32(crc32(typed))
        }
        var raw: [UInt8] = []
        for y in 0..<height {
            raw.append(0) // filter: none
            for x in 0..<width { raw.append(UInt8((x * 37 + y * 91) & 0xFF)) }
        }
        precondition(raw.count < 65536)
        var zlib: [UInt8] = [0x78, 0x01, 0x01] // zlib header; final stored block
        zlib += le16(raw.count) + le16(~raw.count & 0xFFFF) + raw + be32(adler32(raw))
        let ihdr = be32(UInt32(width)) + be32(UInt32(height)) + [8, 0, 0, 0, 0]
        let bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", ihdr) + chunk("IDAT", zlib) + chunk("IEND", [])
        return Data(bytes)
    }

    /// A complete GIF89a with a 4-colour global palette, LZW-coded with a clear code every two
    /// pixels (so the code size stays at 3 bits).
    static func gif(width: Int, height: Int) -> Data {
        var bytes: [UInt8] = Array("GIF89a".utf8) + le16(width) + le16(height)
        bytes += [0x81, 0x00, 0x00] // global colour table, 2^(1+1) = 4 entries
        bytes += [0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF]
        bytes += [0x2C] + le16(0) + le16(0) + le16(width) + le16(height) + [0x00]
        // LZW: minimum code size 2 → clear 4, end 5, codes of 3 bits.
        var codes: [Int] = []
        let pixels = width * height
        for index in 0..<pixels {
            if index % 2 == 0 { codes.append(4) }
            codes.append(index % 4)
        }
        codes.append(5)
        var packed: [UInt8] = []
        var accumulator = 0, bits = 0
        for code in codes {
            accumulator |= code << bits
            bits += 3
            while bits >= 8 {
                packed.append(UInt8(accumulator & 0xFF))
                accumulator >>= 8
                bits -= 8
            }
        }
        if bits > 0 { packed.append(UInt8(accumulator & 0xFF)) }
        bytes.append(2)
        var offset = 0
        while offset < packed.count {
            let n = min(255, packed.count - offset)
            bytes.append(UInt8(n))
            bytes += packed[offset..<(offset + n)]
            offset += n
        }
        bytes += [0x00, 0x3B]
        return Data(bytes)
    }

    /// A baseline greyscale JPEG with an APP0 (JFIF) and an APP1 (Exif) segment before SOF0. Every
    /// 8×8 block is flat mid-grey: DC difference 0 and an immediate end-of-block, each a 1-bit
    /// Huffman code.
    static func jpeg(width: Int, height: Int) -> Data {
        func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] { [0xFF, marker] + be16(payload.count + 2) + payload }
        var bytes: [UInt8] = [0xFF, 0xD8]
        bytes += segment(0xE0, Array("JFIF".utf8) + [0, 1, 1, 0] + be16(72) + be16(72) + [0, 0])
        bytes += segment(0xE1, Array("Exif".utf8) + [0, 0] + Array("MM".utf8) + [0, 42, 0, 0, 0, 8, 0, 0])
        bytes += segment(0xDB, [0x00] + [UInt8](repeating: 1, count: 64))
        bytes += segment(0xC0, [8] + be16(height) + be16(width) + [1, 1, 0x11, 0])
        // DC table 0: one code of length 1 for category 0; AC table 0: one code of length 1 for EOB.
        let oneCode: [UInt8] = [1] + [UInt8](repeating: 0, count: 15)
        bytes += segment(0xC4, [0x00] + oneCode + [0x00])
        bytes += segment(0xC4, [0x10] + oneCode + [0x00])
        bytes += segment(0xDA, [1, 1, 0x00, 0, 63, 0])
        let blocks = ((width + 7) / 8) * ((height + 7) / 8)
        var bits = [UInt8](repeating: 0, count: blocks * 2) // "0" (DC 0) "0" (EOB) per block
        while bits.count % 8 != 0 { bits.append(1) }
        for start in stride(from: 0, to: bits.count, by: 8) {
            var byte: UInt8 = 0
            for bit in bits[start..<(start + 8)] { byte = (byte << 1) | bit }
            bytes.append(byte)
            if byte == 0xFF { bytes.append(0x00) }
        }
        bytes += [0xFF, 0xD9]
        return Data(bytes)
    }

    /// An extended WebP (VP8X chunk with the canvas size) holding a lossless VP8L bitstream of one
    /// colour: five "simple" prefix codes of one symbol each, so every pixel takes zero bits.
    static func webp(width: Int, height: Int) -> Data {
        var writer = BitWriter()
        writer.write(width - 1, 14)
        writer.write(height - 1, 14)
        writer.write(0, 1) // alpha is not used
        writer.write(0, 3) // version
        writer.write(0, 1) // no transform
        writer.write(0, 1) // no colour cache
        writer.write(0, 1) // no meta prefix codes
        for symbol in [0x40, 0x80, 0xC0, 0xFF] { // green, red, blue, alpha
            writer.write(1, 1) // simple code
            writer.write(0, 1) // one symbol
            writer.write(1, 1) // 8-bit symbol
            writer.write(symbol, 8)
        }
        writer.write(1, 1) // distance: simple code, one 1-bit symbol 0
        writer.write(0, 1)
        writer.write(0, 1)
        writer.write(0, 1)
        let vp8l: [UInt8] = [0x2F] + writer.bytes
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            Array(type.utf8) + le32(data.count) + data + (data.count % 2 == 1 ? [0] : [])
        }
        let vp8x = chunk("VP8X", [0, 0, 0, 0] + le24(width - 1) + le24(height - 1))
        let payload = Array("WEBP".utf8) + vp8x + chunk("VP8L", vp8l)
        return Data(Array("RIFF".utf8) + le32(payload.count) + payload)
    }

    struct BitWriter {
        var bytes: [UInt8] = []
        var used = 0 // bits used in the last byte

        mutating func write(_ value: Int, _ count: Int) {
            for bit in 0..<count {
                if used == 0 { bytes.append(0) }
                if (value >> bit) & 1 == 1 { bytes[bytes.count - 1] |= UInt8(1 << used) }
                used = (used + 1) % 8
            }
        }
    }
}

// MARK: - Raw HTTP over a socket

/// Requests URLSession cannot make: bodies it would not send, query strings it would not accept
/// (`%zz`), or a `Content-Length` that announces a body that never comes.
enum RawHTTP {
    /// Sends `head` (request line and headers, without the final blank line) and `body`, with
    /// `Connection: close`, and reads the whole answer.
    static func send(_ stack: Stack, method: String, target: String, headers: [String: String] = [:],
                     body: Data = Data(), contentLength: Int? = nil, chunked: Bool = false, timeout: Int = 20,
                     sourceAddress: String? = nil) -> Reply {
        let (host, port) = stack.hostAndPort
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if chunked {
            head += "Transfer-Encoding: chunked\r\n"
        } else if let length = contentLength ?? (body.isEmpty && method == "GET" ? nil : body.count) {
            head += "Content-Length: \(length)\r\n"
        }
        head += "\r\n"
        var request = Data(head.utf8)
        if chunked {
            // Uneven chunks, as a streaming client would send them.
            var offset = 0, size = 1000
            while offset < body.count {
                let n = min(size, body.count - offset)
                request.append(Data((String(n, radix: 16) + "\r\n").utf8))
                request.append(body.subdata(in: offset..<(offset + n)))
                request.append(Data("\r\n".utf8))
                offset += n
                size = size * 3 + 7
            }
            request.append(Data("0\r\n\r\n".utf8))
        } else {
            request.append(body)
        }
        guard let raw = exchange(host: host, port: port, request: request, timeout: timeout, sourceAddress: sourceAddress) else {
            return Reply(status: 0, headers: [:], body: Data())
        }
        return parse(raw)
    }

    /// `sourceAddress`: the local IPv4 address to connect from (another loopback address, such as
    /// 127.0.0.2, makes the request come from another client address).
    static func exchange(host: String, port: UInt16, request: Data, timeout: Int, sourceAddress: String? = nil) -> Data? {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if let sourceAddress {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            guard inet_pton(AF_INET, sourceAddress, &local.sin_addr) == 1 else { return nil }
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { return nil }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else { return nil }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return nil }
        // Send what the server takes; it may answer (413) and stop reading early.
        let bytes = [UInt8](request)
        var offset = 0
        while offset < bytes.count {
            #if canImport(Glibc)
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            #else
            let n = bytes[offset...].withUnsafeBytes { Darwin.send(fd, $0.baseAddress, $0.count, 0) }
            #endif
            if n <= 0 { break }
            offset += n
        }
        var response = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
            // nginx keeps a refused upload's connection open for a while (lingering close), waiting
            // for the announced body: stop as soon as the whole answer is in.
            if isComplete(response) { break }
        }
        return response
    }

    /// The answer's head is in and its body is complete (by Content-Length or the last chunk).
    static func isComplete(_ data: Data) -> Bool {
        guard let end = data.range(of: Data([13, 10, 13, 10])) else { return false }
        let head = String(decoding: data[data.startIndex..<end.lowerBound], as: UTF8.self).lowercased()
        let bodyCount = data.distance(from: end.upperBound, to: data.endIndex)
        for line in head.components(separatedBy: "\r\n") {
            if line.hasPrefix("content-length:"), let length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) {
                return bodyCount >= length
            }
            if line.hasPrefix("transfer-encoding:") && line.contains("chunked") {
                return data.suffix(5) == Data("0\r\n\r\n".utf8)
            }
        }
        return false
    }

    static func parse(_ raw: Data) -> Reply {
        let bytes = [UInt8](raw)
        let separator: [UInt8] = [13, 10, 13, 10]
        var split: Int? = nil
        if bytes.count >= 4 {
            for index in 0...(bytes.count - 4) where Array(bytes[index..<(index + 4)]) == separator {
                split = index
                break
            }
        }
        guard let split else { return Reply(status: 0, headers: [:], body: raw) }
        let headText = String(decoding: bytes[0..<split], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        let status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = headers[name].map { $0 + ", " + value } ?? value
        }
        var body = Array(bytes[(split + 4)...])
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true { body = dechunk(body) }
        return Reply(status: status, headers: headers, body: Data(body))
    }

    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            var end = index
            while end + 1 < bytes.count, !(bytes[end] == 13 && bytes[end + 1] == 10) { end += 1 }
            let sizeText = String(decoding: bytes[index..<end], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = end + 2
            guard start + size <= bytes.count else { output += bytes[start...]; break }
            output += bytes[start..<(start + size)]
            index = start + size + 2
        }
        return output
    }
}

/// True when `needle` occurs in `text` not as part of a longer run of letters and digits (a
/// 6-digit code inside a hex request id is not a leak).
func containsStandalone(_ text: String, _ needle: String) -> Bool {
    guard !needle.isEmpty else { return false }
    var searchRange = text.startIndex..<text.endIndex
    while let found = text.range(of: needle, range: searchRange) {
        let before = found.lowerBound > text.startIndex ? text[text.index(before: found.lowerBound)] : " "
        let after = found.upperBound < text.endIndex ? text[found.upperBound] : " "
        if !(before.isLetter || before.isNumber) && !(after.isLetter || after.isNumber) { return true }
        searchRange = found.upperBound..<text.endIndex
    }
    return false
}

/// Runs `count` calls at once (each on its own thread) and returns their results in index order.
func concurrently<T>(_ count: Int, _ body: @escaping (Int) -> T) -> [T] {
    var results = [T?](repeating: nil, count: count)
    let lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: count) { index in
        let result = body(index)
        lock.lock()
        results[index] = result
        lock.unlock()
    }
    return results.map { $0! }
}
