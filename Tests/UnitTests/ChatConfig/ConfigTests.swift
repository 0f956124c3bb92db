import XCTest
@testable import ChatConfig

final class ConfigTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "config-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try String(repeating: "ab", count: 32).write(toFile: dir + "/secret.key", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ text: String) throws -> String {
        let path = dir + "/chat.conf"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testFileValuesAndEnvironmentOverrides() throws {
        let path = try write("""
            # comment
            listen = /tmp/x.sock
            threads = 4
            secret_key_file = \(dir!)/secret.key
            payment_secret_file = \(dir!)/secret.key
            version.ios = 2.1.0
            version.ios.force = 1
            """)
        let config = try Config.load(path: path, environment: ["CHAT_THREADS": "6", "CHAT_VERSION_IOS_URL": "https://x"])
        XCTAssertEqual(config.listen, "/tmp/x.sock")
        XCTAssertEqual(config.threads, 6)
        XCTAssertEqual(config.versions[2], Config.AppVersion(version: "2.1.0", url: "https://x", force: true, note: ""))
        XCTAssertEqual(config.secretKey.count, 32)
        XCTAssertGreaterThan(config.workers, 0)
    }

    func testRefusesToStartWithoutSecrets() throws {
        let path = try write("listen = /tmp/x.sock\n")
        XCTAssertThrowsError(try Config.load(path: path, environment: [:]))
        XCTAssertNoThrow(try Config.load(path: path, environment: [:], requireSecrets: false))
    }

    func testUnknownKeysAndBadValuesFailLoudly() throws {
        XCTAssertThrowsError(try Config.load(path: try write("lissten = x\n"), environment: [:], requireSecrets: false))
        XCTAssertThrowsError(try Config.load(path: try write("threads = lots\n"), environment: [:], requireSecrets: false))
        XCTAssertThrowsError(try Config.load(path: try write("sms_sender = command\n"), environment: [:], requireSecrets: false))
    }

    func testSecretFileContentIsNeverInTheError() throws {
        try "not-hex-SECRETVALUE".write(toFile: dir + "/bad.key", atomically: true, encoding: .utf8)
        let path = try write("secret_key_file = \(dir!)/bad.key\n")
        XCTAssertThrowsError(try Config.load(path: path, environment: [:])) { error in
            XCTAssertFalse(String(describing: error).contains("SECRETVALUE"))
        }
    }
}
