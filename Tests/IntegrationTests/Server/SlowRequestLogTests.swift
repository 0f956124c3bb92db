import Foundation
import XCTest

/// A request that runs longer than `slow_request_ms` (1,000 ms on the test stack) is logged while
/// it runs, with its path and how long it has been running.
final class SlowRequestLogTests: StackTestCase {
    func testARequestRunningLongerThanTheLimitIsLoggedWithItsPath() throws {
        guard let logPath = stack.appLogPath else { throw XCTSkip("no app log under $CHAT_TEST_STACK_DIR") }
        let account = client.newAccount(name: "Slow")
        let tail = LogTail(logPath)

        // A request that waits for a row lock held by another transaction runs that long: psql
        // changes the user's row and holds the lock for 2.5 s while updateProfile waits for it.
        let stack = self.stack!
        let holder = Thread {
            _ = try? StackDB.query(stack, """
                BEGIN; UPDATE users SET nick_name = nick_name WHERE id = \(account.userId); SELECT pg_sleep(2.5); COMMIT;
                """)
        }
        holder.start()
        // Until psql holds the lock (its transaction is asleep).
        let holding = StackProcesses.eventually(within: 5) {
            let rows = (try? StackDB.query(stack, """
                SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2.5)%' AND wait_event = 'PgSleep'
                """)) ?? []
            return rows.first?.first == "1"
        }
        XCTAssertTrue(holding, "psql never took the row lock")
        let reply = client.authed("/chat/updateProfile", account.token, ["nickName": "Slow Poke"])
        assertOK(reply)

        // The watchdog looks every 250 ms; the line is written while the request runs.
        let log = tail.text
        let slowLines = log.components(separatedBy: "\n").filter { $0.contains("request.slow") }
        XCTAssertFalse(slowLines.isEmpty, "no request.slow line in \(logPath)")
        XCTAssertTrue(slowLines.contains { $0.contains("path=/chat/updateProfile") && $0.contains("running_ms=") },
                      "request.slow lines: \(slowLines.suffix(3))")
        // And it never carries the token.
        XCTAssertFalse(log.contains(account.token))
    }
}
