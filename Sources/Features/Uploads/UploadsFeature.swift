import Foundation
import ChatConfig
import ChatHTTP
import ChatPostgres
import ChatRouting
import ChatSecurity

/// Uploads (API.md §9): files stream from the request body to a temporary file in the uploads
/// folder, are checked by their first bytes (never by their name), and are renamed into
/// `uploads/YYYY/MM/<random>.<ext>`, from where nginx serves them. Memory use does not depend on
/// the size of the file.
public final class UploadsFeature {
    let config: Config
    let slots: UploadSlots
    let quota: UploadQuota
    static let maxImagesPerRequest = 9
    static let chunkSize = 64 * 1024
    static let nameLength = 24
    static let multipartOverhead = 1 << 20
    /// A temporary file this old belongs to no upload in progress (a worker killed mid-upload).
    static let staleTemporarySeconds = 3600
    /// Longest a multipart `token` field may be.
    static let maxTokenFieldBytes = 256

    public init(config: Config) {
        self.config = config
        self.slots = UploadSlots(limit: config.maxUploadsPerWorker)
        self.quota = UploadQuota(bytesPerDay: Int64(config.uploadQuotaMiBPerDay) << 20)
    }

    public func register(on router: Router) {
        router.add("/chat/uploadImage", body: .stream, tokenInBody: true, uploadImage)
        router.add("/chat/doUploads", body: .stream, doUploads)
    }

    /// Uploads being received by this worker process, for the status page.
    public var uploadsInFlight: Int { slots.inUse }

    /// Housekeeping of the usage rows the quota no longer needs.
    public static let cleanupJobs = UploadsStore.cleanupJobs

    /// Removes temporary files older than `staleTemporarySeconds` (left by a worker that was killed
    /// mid-upload): at a worker's start, then every ten minutes.
    public func startSweeping() {
        let thread = Thread { [config] in
            while true {
                UploadsFeature.sweepTemporaryFiles(in: config.uploadsDir + "/.tmp",
                                                   olderThan: UploadsFeature.staleTemporarySeconds)
                sleep(600)
            }
        }
        thread.name = "uploads-sweep"
        thread.start()
    }

    /// Returns how many files it removed.
    @discardableResult
    public static func sweepTemporaryFiles(in folder: String, olderThan seconds: Int) -> Int {
        guard let dir = opendir(folder) else { return 0 }
        defer { closedir(dir) }
        let limit = time(nil) - seconds
        var removed = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.hasSuffix(".part") else { continue }
            let path = folder + "/" + name
            var info = stat()
            if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_mtim.tv_sec < limit,
               unlink(path) == 0 {
                removed += 1
            }
        }
        if removed > 0 { Log.info("uploads.swept", ["files": removed]) }
        return removed
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

    /// Extensions of the stored files that are images (what a post or an image favorite may show).
    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png", "gif", "webp"]

    /// The path under the uploads folder of a file this server stored, given the URL (or the
    /// `/uploads/…` path) an upload returned; nil for anything else: another server's URL, a name
    /// this server never makes, a file that is not there, or (with `imagesOnly`) not an image.
    public func storedFile(_ url: String, imagesOnly: Bool) -> String? {
        if url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) { return nil }
        for prefix in Set([config.uploadsURL + "/", "/uploads/"]) where url.hasPrefix(prefix) {
            let relative = String(url.dropFirst(prefix.count))
            guard UploadsFeature.isStoredName(relative) else { return nil }
            if imagesOnly, !UploadsFeature.imageExtensions.contains(String(relative.split(separator: ".").last ?? "")) {
                return nil
            }
            return FileManager.default.fileExists(atPath: config.uploadsDir + "/" + relative) ? relative : nil
        }
        return nil
    }

    /// The URL clients are given for a stored file (as uploads return it).
    public func publicURL(ofStored relative: String) -> String { url(for: relative) }

    // MARK: uploadImage (multipart)

    func uploadImage(_ c: RequestContext) throws -> Response {
        let request = c.request
        // Without a multipart body no token can come in it: the session decides first (401).
        if c.awaitsBodyToken && request.mediaType != "multipart/form-data" { throw HTTPError.missingToken }
        guard request.mediaType == "multipart/form-data",
              let boundary = MultipartParser.boundary(fromContentType: request.contentType) else {
            throw HTTPError.badRequest("expected a multipart/form-data body with the field fileUpload")
        }
        // The whole request, all images together, is bounded like nginx bounds it: the image limit
        // plus room for the multipart framing and small fields.
        let requestLimit = config.maxImageBytes + UploadsFeature.multipartOverhead
        if let length = request.contentLength, length > requestLimit { throw HTTPError.payloadTooLarge }
        guard let body = request.body else { throw HTTPError.missing("fileUpload") }
        let slot = try slots.acquire()
        defer { slot.release() }
        // Checked now when the token came in the header or the query; a token field is checked
        // when it ends, and before the first file part in any case.
        var reservation: UploadQuota.Reservation? = nil
        if !c.awaitsBodyToken { reservation = try quota.reserve(c, bytes: request.contentLength ?? 0) }

        let parser = MultipartParser(boundary: boundary)
        var current: UploadFile? = nil
        var currentPart = Part.other
        var otherPartBytes = 0
        var tokenField: [UInt8] = []
        var results: [JSON] = []
        var storedPaths: [String] = []
        var received = 0
        var buffer = [UInt8](repeating: 0, count: UploadsFeature.chunkSize)
        var succeeded = false
        defer {
            current?.discard()
            // All or nothing: a request that fails leaves none of its images behind.
            if !succeeded {
                for path in storedPaths { unlink(config.uploadsDir + "/" + path) }
                reservation?.cancel(c)
            }
        }

        func handle(_ event: MultipartEvent) throws {
            switch event {
            case .partBegin(let headers):
                currentPart = headers.name == "fileUpload" ? .file : headers.name == "token" && c.awaitsBodyToken ? .token : .other
                if currentPart == .file {
                    if c.awaitsBodyToken { throw HTTPError.missingToken }
                    guard results.count < UploadsFeature.maxImagesPerRequest else {
                        throw HTTPError.badRequest("at most \(UploadsFeature.maxImagesPerRequest) images per request")
                    }
                    current = try UploadFile(config: config, limit: config.maxImageBytes)
                }
            case .partData(let data):
                switch currentPart {
                case .file: try current?.append(data)
                case .token:
                    tokenField.append(contentsOf: data)
                    if tokenField.count > UploadsFeature.maxTokenFieldBytes { throw HTTPError.unauthorized }
                case .other:
                    otherPartBytes += data.count
                    if otherPartBytes > config.maxFormBytes { throw HTTPError.payloadTooLarge }
                }
            case .partEnd:
                switch currentPart {
                case .file:
                    if let file = current {
                        current = nil
                        let stored = try file.storeImage()
                        storedPaths.append(stored.relativePath)
                        results.append([
                            "url": .string(url(for: stored.relativePath)), "size": .int(stored.size),
                            "width": .int(stored.width), "height": .int(stored.height),
                        ])
                    }
                case .token:
                    try c.authenticate(bodyToken: String(decoding: tokenField, as: UTF8.self))
                    reservation = try quota.reserve(c, bytes: request.contentLength ?? 0)
                case .other:
                    break
                }
                currentPart = .other
            }
        }

        while true {
            let n = try buffer.withUnsafeMutableBytes { try body.read(into: $0) }
            if n == 0 { break }
            received += n
            if received > requestLimit { throw HTTPError.payloadTooLarge }
            try buffer.withUnsafeBytes { raw in
                try parser.feed(UnsafeRawBufferPointer(rebasing: raw[0..<n]), handle)
            }
        }
        try parser.finish()
        if c.awaitsBodyToken { throw HTTPError.missingToken }
        guard !results.isEmpty else { throw HTTPError.missing("fileUpload") }
        succeeded = true
        return .ok(.array(results))
    }

    private enum Part { case file, token, other }

    // MARK: doUploads (raw body)

    func doUploads(_ c: RequestContext) throws -> Response {
        var ext = try c.params.required("fileExt", maxLength: 8).lowercased()
        if ext.hasPrefix(".") { ext.removeFirst() }
        guard FileSniffer.allowedExtensions.contains(ext) else { throw HTTPError.invalid("fileExt") }
        if let length = c.request.contentLength, length > config.maxFileBytes { throw HTTPError.payloadTooLarge }
        guard let body = c.request.body else { throw HTTPError.badRequest("empty file") }
        let slot = try slots.acquire()
        defer { slot.release() }
        let reservation = try quota.reserve(c, bytes: c.request.contentLength ?? 0)
        var succeeded = false
        defer { if !succeeded { reservation.cancel(c) } }

        let file = try UploadFile(config: config, limit: config.maxFileBytes)
        defer { file.discard() }
        var buffer = [UInt8](repeating: 0, count: UploadsFeature.chunkSize)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try body.read(into: $0) }
            if n == 0 { break }
            try buffer.withUnsafeBytes { try file.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        let stored = try file.store(extension: ext)
        succeeded = true
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
    /// Set once the temporary file is renamed into place or removed; until then it is removed
    /// whichever way the request ends (a thrown error drops the last reference: deinit).
    private var settled = false

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
                let code = errno
                if code == EINTR { continue }
                Log.error("upload.write_failed", ["errno": code])
                throw code == ENOSPC || code == EDQUOT ? HTTPError.insufficientStorage : HTTPError.internalError
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
        guard fsync(fd) == 0 else {
            let code = errno
            Log.error("upload.fsync_failed", ["errno": code])
            throw code == ENOSPC || code == EDQUOT ? HTTPError.insufficientStorage : HTTPError.internalError
        }
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
        settled = true
        close(fd)
        fd = -1
        return Stored(relativePath: relative, size: size)
    }

    /// Closes the descriptor, and removes the temporary file unless it was stored.
    func discard() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        if !settled {
            settled = true
            unlink(tempPath)
        }
    }

    deinit { discard() }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

/// How many uploads one worker process receives at once: an upload holds a thread for as long as
/// its body takes to arrive from nginx, and uploads must never take every thread.
final class UploadSlots: @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private var used = 0

    init(limit: Int) { self.limit = max(1, limit) }

    var inUse: Int { lock.withLock { used } }

    struct Slot {
        let owner: UploadSlots
        func release() { owner.lock.withLock { owner.used -= 1 } }
    }

    /// A slot, or 503 with Retry-After when every slot is taken.
    func acquire() throws -> Slot {
        let taken: Bool = lock.withLock {
            if used >= limit { return false }
            used += 1
            return true
        }
        guard taken else { throw HTTPError.unavailable("too many uploads in progress; try again shortly", retryAfterSeconds: 2) }
        return Slot(owner: self)
    }
}

/// Bytes a user may upload per UTC day. The request's declared length is reserved before its body
/// is read (nginx always sends the length: it buffers the body first), in one statement that
/// refuses what would pass the quota, so parallel uploads cannot overshoot it; a failed upload
/// gives its reservation back.
struct UploadQuota {
    let bytesPerDay: Int64

    struct Reservation {
        let bytes: Int64
        func cancel(_ c: RequestContext) {
            guard bytes > 0, let db = try? c.db else { return }
            do {
                try UploadsStore(db: db).giveBack(userId: c.userId, bytes: bytes)
            } catch {
                Log.warn("upload.quota_refund_failed", ["error": String(describing: error)])
            }
        }
    }

    func reserve(_ c: RequestContext, bytes: Int) throws -> Reservation {
        guard bytesPerDay > 0, bytes > 0 else { return Reservation(bytes: 0) }
        let exceeded = HTTPError.tooManyRequests("daily upload quota exceeded", retryAfterSeconds: UploadQuota.secondsUntilTomorrow())
        guard Int64(bytes) <= bytesPerDay else { throw exceeded }
        guard try UploadsStore(db: c.db).reserve(userId: c.userId, bytes: Int64(bytes), bytesPerDay: bytesPerDay) else {
            throw exceeded
        }
        return Reservation(bytes: Int64(bytes))
    }

    /// Seconds until the next UTC midnight, when the quota starts again.
    static func secondsUntilTomorrow() -> Int {
        let now = Int(time(nil))
        return 86_400 - now % 86_400
    }
}
