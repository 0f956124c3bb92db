import Foundation

/// Uploads (API.md §9): files stream from the request body to a temporary file in the uploads
/// folder, are checked by their first bytes (never by their name), and are renamed into
/// `uploads/YYYY/MM/<random>.<ext>`, from where nginx serves them. Memory use does not depend on
/// the size of the file.
public final class UploadsFeature {
    let config: Config
    static let maxImagesPerRequest = 9
    static let chunkSize = 64 * 1024
    static let nameLength = 24
    static let multipartOverhead = 1 << 20

    public init(config: Config) {
        self.config = config
    }

    public func register(on router: Router) {
        router.add("/chat/uploadImage", body: .stream, uploadImage)
        router.add("/chat/doUploads", body: .stream, doUploads)
    }

    /// True for a path this feature could have produced: `YYYY/MM/<24 [a-z0-9]>.<allowed ext>`.
    public static func isStoredName(_ relative: String) -> Bool {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[0].allSatisfy(\.isASCIIDigit),
              parts[1].count == 2, parts[1].allSatisfy(\.isASCIIDigit) else { return false }
        let file = parts[2].split(separator: ".", omittingEmptySubsequences: false)
        guard file.count == 2, file[0].count == nameLength,
              file[0].allSatisfy({ $0.isASCIIDigit || ("a"..."z").contains($0) }) else { return false }
        return FileSniffer.allowedExtensions.contains(String(file[1]))
    }

    func url(for relative: String) -> String { config.uploadsURL + "/" + relative }

    // MARK: uploadImage (multipart)

    func uploadImage(_ c: RequestContext) throws -> Response {
        let request = c.request
        guard request.mediaType == "multipart/form-data",
              let boundary = MultipartParser.boundary(fromContentType: request.contentType) else {
            throw HTTPError.badRequest("expected a multipart/form-data body with the field fileUpload")
        }
        // The whole request, all images together, is bounded like nginx bounds it: the image limit
        // plus room for the multipart framing and small fields.
        let requestLimit = config.maxImageBytes + UploadsFeature.multipartOverhead
        if let length = request.contentLength, length > requestLimit { throw HTTPError.payloadTooLarge }
        guard let body = request.body else { throw HTTPError.missing("fileUpload") }

        let parser = MultipartParser(boundary: boundary)
        var current: UploadFile? = nil
        var currentIsFile = false
        var otherPartBytes = 0
        var results: [JSON] = []
        var storedPaths: [String] = []
        var received = 0
        var buffer = [UInt8](repeating: 0, count: UploadsFeature.chunkSize)
        var succeeded = false
        defer {
            current?.discard()
            // All or nothing: a request that fails leaves none of its images behind.
            if !succeeded { for path in storedPaths { unlink(config.uploadsDir + "/" + path) } }
        }

        func handle(_ event: MultipartEvent) throws {
            switch event {
            case .partBegin(let headers):
                currentIsFile = headers.name == "fileUpload"
                if currentIsFile {
                    guard results.count < UploadsFeature.maxImagesPerRequest else {
                        throw HTTPError.badRequest("at most \(UploadsFeature.maxImagesPerRequest) images per request")
                    }
                    current = try UploadFile(config: config, limit: config.maxImageBytes)
                }
            case .partData(let data):
                if currentIsFile {
                    try current?.append(data)
                } else {
                    otherPartBytes += data.count
                    if otherPartBytes > config.maxFormBytes { throw HTTPError.payloadTooLarge }
                }
            case .partEnd:
                if currentIsFile, let file = current {
                    current = nil
                    let stored = try file.storeImage()
                    storedPaths.append(stored.relativePath)
                    results.append([
                        "url": .string(url(for: stored.relativePath)), "size": .int(stored.size),
                        "width": .int(stored.width), "height": .int(stored.height),
                    ])
                }
                currentIsFile = false
            }
        }

        while true {
            let n = buffer.withUnsafeMutableBytes { body.readBody(into: $0) }
            if n == 0 { break }
            received += n
            if received > requestLimit { throw HTTPError.payloadTooLarge }
            try buffer.withUnsafeBytes { raw in
                try parser.feed(UnsafeRawBufferPointer(rebasing: raw[0..<n]), handle)
            }
        }
        try parser.finish()
        guard !results.isEmpty else { throw HTTPError.missing("fileUpload") }
        succeeded = true
        return .ok(.array(results))
    }

    // MARK: doUploads (raw body)

    func doUploads(_ c: RequestContext) throws -> Response {
        var ext = try c.params.required("fileExt", maxLength: 8).lowercased()
        if ext.hasPrefix(".") { ext.removeFirst() }
        guard FileSniffer.allowedExtensions.contains(ext) else { throw HTTPError.invalid("fileExt") }
        if let length = c.request.contentLength, length > config.maxFileBytes { throw HTTPError.payloadTooLarge }
        guard let body = c.request.body else { throw HTTPError.badRequest("empty file") }

        let file = try UploadFile(config: config, limit: config.maxFileBytes)
        defer { file.discard() }
        var buffer = [UInt8](repeating: 0, count: UploadsFeature.chunkSize)
        while true {
            let n = buffer.withUnsafeMutableBytes { body.readBody(into: $0) }
            if n == 0 { break }
            try buffer.withUnsafeBytes { try file.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        let stored = try file.store(extension: ext)
        return .ok(["url": .string(url(for: stored.relativePath)), "size": .int(stored.size)])
    }
}

/// A file being received: a temporary file in the uploads folder (same file system, so the final
/// rename is atomic), removed again unless it is stored.
final class UploadFile {
    let config: Config
    let limit: Int
    let tempPath: String
    var fd: Int32
    var size = 0
    var header: [UInt8] = []

    struct Stored {
        var relativePath: String
        var size: Int
        var width = 0
        var height = 0
    }

    init(config: Config, limit: Int) throws {
        self.config = config
        self.limit = limit
        let tempDir = config.uploadsDir + "/.tmp"
        mkdir(config.uploadsDir, 0o755)
        mkdir(tempDir, 0o700)
        tempPath = tempDir + "/" + Crypto.randomAlphanumeric(24) + ".part"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            Log.error("upload.open_failed", ["errno": errno])
            throw HTTPError.internalError
        }
    }

    func append(_ data: UnsafeRawBufferPointer) throws {
        size += data.count
        if size > limit { throw HTTPError.payloadTooLarge }
        if header.count < FileSniffer.headerBytesNeeded {
            header.append(contentsOf: data.prefix(FileSniffer.headerBytesNeeded - header.count))
        }
        var offset = 0
        while offset < data.count {
            let n = write(fd, data.baseAddress! + offset, data.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                Log.error("upload.write_failed", ["errno": errno])
                throw HTTPError.internalError
            }
            offset += n
        }
    }

    /// Stores an image (JPEG, PNG, GIF or WebP) and reads its dimensions from its header.
    func storeImage() throws -> Stored {
        guard let kind = FileSniffer.detect(header), [.jpeg, .png, .gif, .webp].contains(kind) else {
            throw HTTPError.badRequest("fileUpload is not a JPEG, PNG, GIF or WebP image")
        }
        // The temporary file was opened write-only; the header parser reads through its own descriptor.
        let readFD = open(tempPath, O_RDONLY | O_CLOEXEC)
        defer { if readFD >= 0 { close(readFD) } }
        guard readFD >= 0, let info = FileSniffer.imageInfo(readingFrom: readFD) else {
            throw HTTPError.badRequest("fileUpload is not a readable image")
        }
        let ext = kind == .jpeg ? "jpg" : kind.rawValue
        var stored = try store(extension: ext)
        stored.width = info.width
        stored.height = info.height
        return stored
    }

    /// Checks the content against the extension and renames the file into place.
    func store(extension ext: String) throws -> Stored {
        guard size > 0 else { throw HTTPError.badRequest("empty file") }
        guard FileSniffer.extensionMatches(ext, kind: FileSniffer.detect(header)) else {
            throw HTTPError.badRequest("the file's content does not match fileExt")
        }
        guard fsync(fd) == 0 else { throw HTTPError.internalError }
        close(fd)
        fd = -1
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        let folder = String(format: "%04d/%02d", parts.tm_year + 1900, parts.tm_mon + 1)
        mkdir(config.uploadsDir + "/" + String(folder.prefix(4)), 0o755)
        mkdir(config.uploadsDir + "/" + folder, 0o755)
        let relative = folder + "/" + Crypto.randomAlphanumeric(UploadsFeature.nameLength) + "." + ext
        guard rename(tempPath, config.uploadsDir + "/" + relative) == 0 else {
            Log.error("upload.rename_failed", ["errno": errno])
            throw HTTPError.internalError
        }
        return Stored(relativePath: relative, size: size)
    }

    /// Removes the temporary file if it was not stored.
    func discard() {
        if fd >= 0 {
            close(fd)
            fd = -1
            unlink(tempPath)
        }
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
