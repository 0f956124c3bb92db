import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// The per-user message rate of sendMsg (API.md §5).
final class MessageRateTests: StackTestCase {
    /// `rate_limit.send_msg.per_user` is counted per worker: W workers let at most W × the limit
    /// through in a window, so W × limit + 1 quick messages meet a 429 with Retry-After.
    func testSendingFasterThanTheMessageRateIs429() {
        let limit = stack.rateLimit("send_msg.per_user", default: (120, 60))
        let total = limit.count * stack.workerCount + 1
        guard total <= 2_000 else { return }
        let alice = client.newAccount(name: "Flood")
        let bob = client.newAccount(name: "Flooded")
        client.befriend(alice, bob)
        let started = Date()
        let replies = concurrently(4) { thread -> [Reply] in
            (0..<((total + 3) / 4)).map { n in self.client.msgSendReply(alice, to: bob.userId, content: "f\(thread)-\(n)") }
        }.flatMap { $0 }
        let elapsed = Date().timeIntervalSince(started)
        let refused = replies.filter { $0.status == 429 }
        let sent = replies.filter { $0.status == 200 && $0.code == 1 }
        XCTAssertEqual(refused.count + sent.count, replies.count, "every send is 200/1 or 429")
        if elapsed < Double(limit.seconds) {
            XCTAssertFalse(refused.isEmpty, "\(replies.count) messages in \(elapsed) s, none refused")
            XCTAssertLessThanOrEqual(sent.count, limit.count * stack.workerCount)
        }
        if let first = refused.first { assertTooManyRequests(first, maxSeconds: limit.seconds) }
        // Another sender is not affected.
        assertOK(client.msgSendReply(bob, to: alice.userId, content: "still here"))
    }
}
