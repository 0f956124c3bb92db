import Foundation
import XCTest

/// A session's last use is written by each worker's background thread (at most once a minute per
/// session, within about a second of the request), not by the request itself.
final class SessionUseTests: StackTestCase {
    func lastUsedSecondsAgo(_ userId: Int64) throws -> Double {
        let rows = try StackDB.query(stack, """
            SELECT extract(epoch FROM now() - last_used_at) FROM sessions WHERE user_id = \(userId)
            """)
        return try XCTUnwrap(Double(try XCTUnwrap(rows.first?.first)))
    }

    func testAStaleSessionsUseIsRecordedSoonAfterARequestAndAFreshOneIsLeftAlone() throws {
        let account = client.newAccount(name: "SessionUse")
        _ = try StackDB.query(stack, "UPDATE sessions SET last_used_at = now() - interval '10 minutes' WHERE user_id = \(account.userId)")
        XCTAssertGreaterThan(try lastUsedSecondsAgo(account.userId), 590)

        // Through a route that checks the session itself and one that checks it in its statement.
        XCTAssertEqual(client.call(account, "/chat/getUserById", ["destId": String(account.userId)]).code, 1)
        XCTAssertEqual(client.call(account, "/chat/ready").code, 1)
        var waited = 0.0
        while try lastUsedSecondsAgo(account.userId) > 60 && waited < 5 {
            Thread.sleep(forTimeInterval: 0.2)
            waited += 0.2
        }
        XCTAssertLessThan(try lastUsedSecondsAgo(account.userId), 60, "the use was recorded within \(waited) s")

        // Used again within the minute: not written again (the time only grows by the wait).
        _ = try StackDB.query(stack, "UPDATE sessions SET last_used_at = now() - interval '30 seconds' WHERE user_id = \(account.userId)")
        XCTAssertEqual(client.call(account, "/chat/ready").code, 1)
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertGreaterThan(try lastUsedSecondsAgo(account.userId), 30)
    }
}
