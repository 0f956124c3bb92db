import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// The gapless per-conversation sequence under concurrency: the n-th message stored in a
/// conversation has seq n; concurrent senders never get the same or a skipped number; concurrent
/// identical retries store one message.
final class MessageOrderingTests: StackTestCase {
    typealias Account = StackClient.Account


    struct Attempt {
        let thread: Int
        let index: Int
        let sender: Int64
        let content: String
        let reply: Reply
        var sent: MsgSent? { MsgSent(reply) }
    }

    /// Each thread sends `perThread` messages in turn as `senders[thread]`, all threads at once.
    func sendConcurrently(_ senders: [Account], to dest: @escaping (Account) -> Int64, destType: Int, perThread: Int) -> [Attempt] {
        raceThreads(senders.count) { thread -> [Attempt] in
            let sender = senders[thread]
            return (0..<perThread).map { index in
                let content = "t\(thread)-m\(index)-\(uniqueToken(4))"
                let reply = self.client.msgSendReply(sender, to: dest(sender), destType: destType, content: content,
                                                     clientMsgId: msgClientId("ord\(thread)-\(index)"))
                return Attempt(thread: thread, index: index, sender: sender.userId, content: content, reply: reply)
            }
        }.flatMap { $0 }
    }

    /// Every send succeeded; the seqs handed out are exactly 1…n; history (paged by sendTime)
    /// holds each message once, seqs 1…n in order, sendTime never going backwards along seq; each
    /// thread's own messages got increasing seqs.
    func checkConversation(_ attempts: [Attempt], viewer: Account, destId: Int64, destType: Int,
                           file: StaticString = #filePath, line: UInt = #line) -> [MsgRecord] {
        let n = attempts.count
        let failed = attempts.filter { $0.sent == nil }
        XCTAssertEqual(failed.count, 0, "failed sends: \(failed.prefix(5).map { "\($0.reply.status) \($0.reply.text.prefix(200))" })",
                       file: file, line: line)
        let seqs = attempts.compactMap { $0.sent?.seq }
        XCTAssertEqual(seqs.sorted(), Array(1...Int64(n)), "the seqs handed out are exactly 1…\(n): duplicates \(duplicates(seqs)), missing \(Set(1...Int64(n)).subtracting(seqs).sorted())",
                       file: file, line: line)
        XCTAssertEqual(Set(attempts.compactMap { $0.sent?.msgId }).count, n, "msgIds are unique", file: file, line: line)
        for thread in Set(attempts.map(\.thread)) {
            let own = attempts.filter { $0.thread == thread }.sorted { $0.index < $1.index }.compactMap { $0.sent?.seq }
            XCTAssertEqual(own, own.sorted(), "thread \(thread)'s sequential sends got increasing seqs", file: file, line: line)
        }

        let history = overlappingHistory(viewer, destId: destId, destType: destType, file: file, line: line)
        XCTAssertEqual(history.map(\.seq), Array(1...Int64(n)), "history holds seqs 1…\(n) exactly, in order", file: file, line: line)
        let byMsgId = Dictionary(attempts.compactMap { a in a.sent.map { ($0.msgId, a) } }, uniquingKeysWith: { first, _ in first })
        for record in history {
            guard let attempt = byMsgId[record.msgId] else {
                XCTFail("history holds a message nobody sent: \(record)", file: file, line: line)
                continue
            }
            XCTAssertEqual(record.seq, attempt.sent?.seq, "history seq = the seq sendMsg returned", file: file, line: line)
            XCTAssertEqual(record.content, attempt.content, file: file, line: line)
            XCTAssertEqual(record.fromId, attempt.sender, file: file, line: line)
            XCTAssertEqual(record.sendTime, attempt.sent?.sendTime, file: file, line: line)
        }
        XCTAssertEqual(Set(history.map(\.msgId)).count, history.count, "no message twice in history", file: file, line: line)
        let times = history.map(\.sendTime)
        XCTAssertEqual(times, times.sorted(), "the n-th message stored has seq n: sendTime never decreases along seq",
                       file: file, line: line)
        let ties = zip(times, times.dropFirst()).filter { $0 == $1 }.count
        print("\(n) concurrent messages: \(ties) neighbouring pairs share a sendTime millisecond")
        return history
    }

    /// The whole history, paged backwards in pages of 100 with `sendTime` = the oldest sendTime
    /// of the page before + 1 (so messages sharing that millisecond are fetched again, not
    /// skipped), de-duplicated by msgId. Checks what is stored, independent of how paging treats
    /// same-millisecond neighbours (checkPagingOneByOne covers that).
    func overlappingHistory(_ viewer: Account, destId: Int64, destType: Int,
                            file: StaticString = #filePath, line: UInt = #line) -> [MsgRecord] {
        var all: [MsgRecord] = []
        var seen = Set<Int64>()
        var before: Int64? = nil
        for _ in 0..<100 {
            let page = client.msgHistory(viewer, destId, destType: destType, sendTime: before, size: 100, file: file, line: line)
            let fresh = page.filter { !seen.contains($0.msgId) }
            if fresh.isEmpty { break }
            for record in fresh { seen.insert(record.msgId) }
            all = fresh + all
            guard let oldest = page.first?.sendTime else { break }
            before = oldest + 1
        }
        return all
    }

    /// Pages back one message at a time, each time with `sendTime` = the sendTime of the message
    /// just seen (API.md §5: "sent before sendTime"), and expects to visit every message. Messages
    /// that share a millisecond (concurrent senders) are where such paging can skip one.
    func checkPagingOneByOne(_ history: [MsgRecord], viewer: Account, destId: Int64, destType: Int,
                             file: StaticString = #filePath, line: UInt = #line) {
        var seen: [Int64] = []
        var before: Int64? = nil
        for _ in 0..<(history.count + 5) {
            let page = client.msgHistory(viewer, destId, destType: destType, sendTime: before, size: 1, file: file, line: line)
            guard let message = page.first else { break }
            seen.append(message.seq)
            before = message.sendTime
        }
        let skipped = Set(history.map(\.seq)).subtracting(seen).sorted()
        let tied = zip(history, history.dropFirst()).filter { $0.sendTime == $1.sendTime }.map { "\($0.seq)&\($1.seq)" }
        print("paging one by one through \(history.count) messages visited \(seen.count); skipped seqs \(skipped); same-ms neighbours \(tied)")
        XCTAssertEqual(skipped, [],
                       "getMsgHistory paged backwards by sendTime (size 1) must visit every message with no gap: skipped seqs \(skipped); neighbours sharing a sendTime millisecond: \(tied)",
                       file: file, line: line)
        XCTAssertEqual(seen, seen.sorted(by: >), "each page is older than the one before", file: file, line: line)
        XCTAssertEqual(Set(seen).count, seen.count, "no message on two pages", file: file, line: line)
    }

    func duplicates(_ values: [Int64]) -> [Int64] {
        var seen = Set<Int64>(), dups = Set<Int64>()
        for value in values where !seen.insert(value).inserted { dups.insert(value) }
        return dups.sorted()
    }

    // MARK: direct chat

    func testConcurrentSendersOnBothSidesOfADirectChatGetSeqs1ToN() throws {
        let users = client.newAccounts(2, name: "OrdDirect")
        let (a, b) = (users[0], users[1])
        client.msgMakeFriends(a, b)
        // 8 threads × 25: four as A, four as B.
        let senders = [a, b, a, b, a, b, a, b]
        let attempts = sendConcurrently(senders, to: { $0.userId == a.userId ? b.userId : a.userId }, destType: 1, perThread: 25)
        XCTAssertEqual(attempts.count, 200)
        let historyA = checkConversation(attempts, viewer: a, destId: b.userId, destType: 1)
        let historyB = client.msgFullHistory(b, a.userId).messages
        XCTAssertEqual(historyB, historyA, "both sides see the same history")
        checkPagingOneByOne(historyA, viewer: b, destId: a.userId, destType: 1)

        // Delivery: B's stream holds each of A's 100 messages once, in seq order.
        let delivered = client.msgDrain(b).events.compactMap(\.message).filter { $0.fromId == a.userId }
        let expected = historyA.filter { $0.fromId == a.userId }
        XCTAssertEqual(delivered.map(\.msgId), expected.map(\.msgId), "B's sync has A's messages once each, in seq order")

        // The next message continues the sequence.
        XCTAssertEqual(client.msgSend(a, to: b.userId, content: "after the storm")?.seq, 201)
    }

    // MARK: group

    func testConcurrentSendersInOneGroupGetSeqs1ToN() throws {
        let members = client.newAccounts(6, name: "OrdGroup")
        client.msgMakeFriends(hub: members[0], Array(members[1...]))
        let groupId = client.msgGroup(members[0], Array(members[1...]))
        let attempts = sendConcurrently(members, to: { _ in groupId }, destType: 2, perThread: 25)
        XCTAssertEqual(attempts.count, 150)
        let history = checkConversation(attempts, viewer: members[3], destId: groupId, destType: 2)
        checkPagingOneByOne(history, viewer: members[1], destId: groupId, destType: 2)

        // Every member's stream has every message from the others, once, in seq order.
        for member in members {
            let delivered = client.msgDrain(member).events.compactMap(\.message).filter { $0.destId == groupId && $0.fromId != member.userId }
            let expected = history.filter { $0.fromId != member.userId }
            XCTAssertEqual(delivered.map(\.seq), expected.map(\.seq), "member \(member.userId)'s sync: others' messages once each, in seq order")
        }
        XCTAssertEqual(client.msgSend(members[5], to: groupId, destType: 2, content: "after the storm")?.seq, 151)
    }

    // MARK: identical retries at once

    func testTenIdenticalRetriesAtOnceStoreOneMessage() throws {
        let users = client.newAccounts(3, name: "OrdRetry")
        let (a, b, c) = (users[0], users[1], users[2])
        client.msgMakeFriends(hub: a, [b, c])
        let groupId = client.msgGroup(a, [b, c])

        let rounds = 5
        for (destId, destType) in [(b.userId, 1), (groupId, 2)] {
            let first = try XCTUnwrap(client.msgSend(a, to: destId, destType: destType, content: "warm-up"))
            XCTAssertEqual(first.seq, 1)
            var stored: [MsgSent] = []
            for round in 1...rounds {
                let clientId = msgClientId("same\(round)")
                let replies = raceThreads(10) { _ in
                    self.client.msgSendReply(a, to: destId, destType: destType, content: "sent ten times #\(round)", clientMsgId: clientId)
                }
                let sent = replies.compactMap { MsgSent($0) }
                let context = "destType \(destType), round \(round)"
                XCTAssertEqual(sent.count, 10, "all ten answered code 1 (\(context)); the others: \(replies.filter { MsgSent($0) == nil }.map { "\($0.status) \($0.text.prefix(120))" })")
                XCTAssertEqual(Set(sent.map(\.msgId)).count, 1, "one msgId for all ten (\(context)): \(sent)")
                XCTAssertEqual(Set(sent.map(\.seq)), [Int64(round + 1)], "one seq for all ten, the next one (\(context))")
                XCTAssertEqual(Set(sent.map(\.sendTime)).count, 1, "one sendTime for all ten (\(context))")
                if let one = sent.first { stored.append(one) }
            }
            let history = client.msgHistory(b, destType == 1 ? a.userId : groupId, destType: destType, size: 100)
            XCTAssertEqual(history.map(\.seq), Array(1...Int64(rounds + 1)), "exactly one stored message per round (destType \(destType))")
            for round in 1...rounds {
                XCTAssertEqual(history.filter { $0.content == "sent ten times #\(round)" }.count, 1, "destType \(destType), round \(round)")
            }
            XCTAssertEqual(client.msgSend(a, to: destId, destType: destType, content: "next")?.seq, Int64(rounds + 2),
                           "the retries consumed no numbers (destType \(destType))")
            let delivered = client.msgDrain(b).events.compactMap(\.message).filter { m in stored.contains { $0.msgId == m.msgId } }
            XCTAssertEqual(delivered.map(\.msgId), stored.map(\.msgId), "each delivered once (destType \(destType))")
        }
    }
}
