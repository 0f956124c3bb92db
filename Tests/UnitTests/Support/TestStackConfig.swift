import Foundation
import XCTest
@testable import ChatConfig
@testable import ChatPostgres

/// The running test stack's configuration, for the unit tests that use its database; they are
/// skipped outside `make test` (which sets `CHAT_TEST_CONFIG`).
enum TestStackConfig {
    static func load() throws -> Config {
        guard let path = ProcessInfo.processInfo.environment["CHAT_TEST_CONFIG"], !path.isEmpty else {
            throw XCTSkip("CHAT_TEST_CONFIG is not set: tests on the stack's database run under `make test`")
        }
        return try Config.load(path: path)
    }

    /// A connection to the stack's database, opened.
    static func database() throws -> PGConnection {
        let db = PGConnection(conninfo: try load().database)
        try db.connect()
        return db
    }
}
