import Foundation
import XCTest

/// A direct `sendMsg` is checked from each worker's copies of the session and both users'
/// relations when they are current (docs/caching.md). These tests hold the rules (friends only,
/// blocks either way) to the same promise as without the copies: a change made through the API
/// applies to the very next message, from every worker; one made in PostgreSQL within moments.
///
/// Every look is an `agreeingLook`: many messages at once, twice, so that both worker processes (and
/// several threads of each) answer (the first round fills the copies, the second uses them), and
/// expects the same outcome from all.
final class SendRulesFreshnessTests: StackTestCase {
    typealias Account = StackClient.Account

    /// A message's outcome: HTTP status, code and info.
    func send(_ from: Account, _ to: Account, _ label: String) -> () -> String {
        {
            let reply = self.client.msgSendReply(from, to: to.userId, content: label)
            return "\(reply.status)/\(reply.code.map(String.init) ?? "-") \(reply.info ?? "")"
        }
    }

    /// The one outcome of every message of an `agreeingLook` from `from` to `to`.
    func look(_ from: Account, _ to: Account, _ label: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        agreeingLook(file: file, line: line, send(from, to, label))
    }

    func eventually(_ from: Account, _ to: Account, _ label: String, file: StaticString = #filePath, line: UInt = #line,
                    _ accept: (String) -> Bool) {
        eventuallyEvery(label, file: file, line: line, send(from, to, label), accept: accept)
    }

    static let sent = "200/1 ok"
    static let notFriends = "200/-1 only friends can message each other"
    static let theyBlock = "200/-1 this user does not accept your messages"
    static let iBlock = "200/-1 you block this user; unblock them first"

    func friends(_ name: String) -> (Account, Account) {
        let users = client.newAccounts(2, name: name)
        client.msgMakeFriends(users[0], users[1])
        return (users[0], users[1])
    }

    func testBlocksAndTheirEndsApplyToTheNextMessage() {
        let (a, b) = friends("SendBlock")
        XCTAssertEqual(look(a, b, "friends"), Self.sent)
        XCTAssertEqual(look(b, a, "friends, back"), Self.sent)

        assertOK(client.call(b, "/chat/setBlock", ["blockId": String(a.userId)]))
        XCTAssertEqual(look(a, b, "B blocks A"), Self.theyBlock)
        XCTAssertEqual(look(b, a, "B blocks A, back"), Self.iBlock)
        assertOK(client.call(b, "/chat/removeBlack", ["destId": String(a.userId)]))
        XCTAssertEqual(look(a, b, "B unblocked A"), Self.sent)

        assertOK(client.call(a, "/chat/setBlock", ["blockId": String(b.userId)]))
        XCTAssertEqual(look(b, a, "A blocks B"), Self.theyBlock)
        assertOK(client.call(a, "/chat/removeBlack", ["destId": String(b.userId)]))
        XCTAssertEqual(look(b, a, "A unblocked B"), Self.sent)
    }

    func testTheEndAndTheReturnOfAFriendshipApplyToTheNextMessage() throws {
        let (a, b) = friends("SendFriends")
        XCTAssertEqual(look(a, b, "friends"), Self.sent)
        XCTAssertEqual(look(b, a, "friends, back"), Self.sent)

        assertOK(client.call(b, "/chat/delFriend", ["destId": String(a.userId)]))
        XCTAssertEqual(look(a, b, "B ended it"), Self.notFriends)
        XCTAssertEqual(look(b, a, "B ended it, back"), Self.notFriends)

        client.msgMakeFriends(a, b)
        XCTAssertEqual(look(a, b, "friends again"), Self.sent)
        XCTAssertEqual(look(b, a, "friends again, back"), Self.sent)
        // Every accepted message is there once, in one conversation, numbered without gaps.
        let stored = try StackDB.query(stack, """
            SELECT count(*), count(DISTINCT conversation_id), max(seq) FROM messages WHERE from_id IN (\(a.userId), \(b.userId))
            """)
        let accepted = String(4 * 2 * concurrentLookWidth)
        XCTAssertEqual(stored.first, [accepted, "1", accepted])
    }

    func testChangesMadeInTheDatabaseApplyWithinMoments() throws {
        let (a, b) = friends("SendSQL")
        XCTAssertEqual(look(a, b, "friends"), Self.sent)
        XCTAssertEqual(look(b, a, "friends, back"), Self.sent)

        try StackDB.query(stack, "INSERT INTO blocks (user_id, blocked_id) VALUES (\(b.userId), \(a.userId))")
        eventually(a, b, "a block inserted in SQL") { $0 == Self.theyBlock }
        try StackDB.query(stack, "DELETE FROM blocks WHERE user_id = \(b.userId)")
        eventually(a, b, "the block deleted in SQL") { $0 == Self.sent }

        try StackDB.query(stack, "DELETE FROM friendships WHERE user_id IN (\(a.userId), \(b.userId))")
        eventually(a, b, "the friendship deleted in SQL") { $0 == Self.notFriends }

        try StackDB.query(stack, "DELETE FROM sessions WHERE user_id = \(a.userId)")
        eventually(a, b, "the session deleted in SQL") { $0.hasPrefix("401/") }
    }
}
