import XCTest
@testable import ChatConfig
@testable import ChatHTTP
@testable import Uploads

final class UploadsFeatureTests: XCTestCase {
    func testStoredNamesAreRecognisedAndNothingElse() {
        XCTAssertTrue(UploadsFeature.isStoredName("2026/11/abcdefghijklmnopqrstuvwx.png"))
        XCTAssertTrue(UploadsFeature.isStoredName("2026/01/0123456789abcdefghijklmn.pdf"))
        XCTAssertFalse(UploadsFeature.isStoredName("2026/11/../../etc/passwd.png"))
        XCTAssertFalse(UploadsFeature.isStoredName("2026/11/ABCDEFGHIJKLMNOPQRSTUVWX.png"))
        XCTAssertFalse(UploadsFeature.isStoredName("2026/11/abcdefghijklmnopqrstuvwx.exe"))
        XCTAssertFalse(UploadsFeature.isStoredName("2026/11/short.png"))
        XCTAssertFalse(UploadsFeature.isStoredName(".tmp/abcdefghijklmnopqrstuvwx.part"))
    }
}

final class UploadHousekeepingTests: XCTestCase {
    func makeFolder() throws -> String {
        let folder = NSTemporaryDirectory() + "uploads-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder + "/.tmp", withIntermediateDirectories: true)
        return folder
    }

    func config(_ folder: String) -> Config {
        var config = Config()
        config.uploadsDir = folder
        return config
    }

    func temporaryFiles(_ folder: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: folder + "/.tmp")) ?? []
    }

    /// Only `.part` files older than the limit go; fresh ones and other names stay.
    func testTheSweepRemovesOnlyStaleTemporaryFiles() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for name in ["old.part", "new.part", "old.keep"] {
            XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/.tmp/" + name, contents: Data("x".utf8)))
        }
        var times = [timespec(tv_sec: time(nil) - 7200, tv_nsec: 0), timespec(tv_sec: time(nil) - 7200, tv_nsec: 0)]
        for name in ["old.part", "old.keep"] { XCTAssertEqual(utimensat(AT_FDCWD, folder + "/.tmp/" + name, &times, 0), 0) }
        XCTAssertEqual(UploadsFeature.sweepTemporaryFiles(in: folder + "/.tmp", olderThan: 3600), 1)
        XCTAssertEqual(Set(temporaryFiles(folder)), ["new.part", "old.keep"])
    }

    /// A file that fails to be stored, or is simply dropped, leaves no temporary file and no
    /// open descriptor.
    func testAnUploadFileThatIsNotStoredLeavesNothing() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let descriptorsBefore = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        do {
            let file = try UploadFile(config: config(folder), limit: 1 << 20)
            try Data("not an image".utf8).withUnsafeBytes { try file.append($0) }
            XCTAssertThrowsError(try file.storeImage())
        }
        do {
            // The rename fails: the year's folder name is taken by a file.
            var now = time(nil)
            var parts = tm()
            gmtime_r(&now, &parts)
            XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/" + String(parts.tm_year + 1900), contents: Data()))
            let file = try UploadFile(config: config(folder), limit: 1 << 20)
            try Data("plain text".utf8).withUnsafeBytes { try file.append($0) }
            XCTAssertThrowsError(try file.store(extension: "txt"))
        }
        do {
            let file = try UploadFile(config: config(folder), limit: 4)
            XCTAssertThrowsError(try Data("too long".utf8).withUnsafeBytes { try file.append($0) })
        }
        XCTAssertEqual(temporaryFiles(folder), [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count, descriptorsBefore)
    }

    /// A full disk is 507 and keeps nothing (a 64 KiB tmpfs stands in for the disk).
    func testAFullDiskIs507AndLeavesNothing() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func run(_ arguments: [String]) -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return -1 }
            process.waitUntilExit()
            return process.terminationStatus
        }
        guard getuid() == 0, run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder]) == 0 else {
            throw XCTSkip("cannot mount a small tmpfs here")
        }
        defer { _ = run(["umount", folder]) }
        let file = try UploadFile(config: config(folder), limit: 1 << 20)
        let chunk = Data(repeating: 0x41, count: 16 << 10)
        XCTAssertThrowsError(try (0..<8).forEach { _ in try chunk.withUnsafeBytes { try file.append($0) } }) { error in
            XCTAssertEqual((error as? HTTPError)?.status, 507)
        }
        file.discard()
        XCTAssertEqual(temporaryFiles(folder), [])
    }

    func testUploadSlotsRefuseBeyondTheirLimitAndComeBack() throws {
        let slots = UploadSlots(limit: 2)
        let first = try slots.acquire()
        let second = try slots.acquire()
        XCTAssertThrowsError(try slots.acquire()) { error in
            XCTAssertEqual((error as? HTTPError)?.status, 503)
            XCTAssertNotNil((error as? HTTPError)?.retryAfterSeconds)
        }
        first.release()
        XCTAssertEqual(slots.inUse, 1)
        let third = try slots.acquire()
        second.release()
        third.release()
        XCTAssertEqual(slots.inUse, 0)
    }
}
