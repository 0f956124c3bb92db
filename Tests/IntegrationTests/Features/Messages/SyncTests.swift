import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// `/chat/sync` (API.md §5): a long-poll over each user's ordered event stream. It answers at
/// once when anything is newer than `since`, otherwise waits up to `timeout` seconds; across
/// calls nothing is lost, skipped or repeated, also after a reconnect with an old cursor.
final class SyncTests: StackTestCase {
    typealias Account = StackClient.Account


    func friends(_ name: String) -> (Account, Account) {
        let users = client.newAccounts(2, name: name)
        client.msgMakeFriends(users[0], users[1])
        return (users[0], users[1])
    }

    /// Cursors strictly increase and `next` is the last one.
    func assertOrdered(_ events: [MsgSyncEvent], _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        let cursors = events.map { $0.cursor ?? -1 }
        XCTAssertFalse(cursors.contains(-1), "every event has an integer cursor (\(context))", file: file, line: line)
        XCTAssertEqual(cursors, cursors.sorted(), "cursors in order (\(context))", file: file, line: line)
        XCTAssertEqual(Set(cursors).count, cursors.count, "no cursor twice (\(context))", file: file, line: line)
    }

    // MARK: reading the stream

    func testSinceZeroReturnsEverythingInOrderAndNextIsTheLastCursor() throws {
        let (a, b) = friends("SyncAll")
        var sent: [MsgSent] = []
        for index in 1...4 {
            if let message = client.msgSend(a, to: b.userId, content: "to B #\(index)") { sent.append(message) }
        }
        let reply = client.msgSync(b, since: 0, timeout: 0)
        assertOK(reply.reply, "sync since=0")
        XCTAssertEqual(reply.reset, false, "a fresh stream read from 0 is not a reset: \(reply.reply.text.prefix(300))")
        let events = reply.events
        assertOrdered(events, "B since 0")
        XCTAssertEqual(reply.next, events.last?.cursor, "next is the last event's cursor")

        // First the friendship, then A's messages in seq order.
        let types = events.compactMap(\.type)
        XCTAssertEqual(types.first, "friend_added", "B's first event is the new friendship: \(events)")
        XCTAssertTrue(events.first?.dataMentions(a.userId) == true, "friend_added names A: \(String(describing: events.first))")
        let fromA = events.filter(\.isMessage).compactMap(\.message).filter { $0.fromId == a.userId }
        XCTAssertEqual(fromA.map(\.msgId), sent.map(\.msgId), "every message to B, once, in order")
        XCTAssertEqual(fromA.map(\.seq), [1, 2, 3, 4])
        for (message, expected) in zip(fromA, sent) {
            XCTAssertEqual(message.destId, b.userId)
            XCTAssertEqual(message.destType, 1)
            XCTAssertEqual(message.msgType, 1)
            XCTAssertEqual(message.sendTime, expected.sendTime)
        }
        for event in events.filter(\.isMessage) {
            XCTAssertNotNil(event.message, "a message event carries the whole message: \(event.raw)")
            XCTAssertEqual(event.silent, false, "silent is a JSON boolean, false when not muted: \(event.raw)")
        }
        XCTAssertEqual(fromA.map(\.content), (1...4).map { "to B #\($0)" })

        // Nothing newer: an empty page, `next` unchanged.
        let again = client.msgSync(b, since: reply.next ?? 0, timeout: 0)
        assertOK(again.reply)
        XCTAssertEqual(again.events.count, 0, "nothing after next: \(again.reply.text.prefix(300))")
        XCTAssertEqual(again.next, reply.next)
        XCTAssertEqual(again.reset, false)

        // Someone else's stream holds none of it.
        let outsider = client.newAccounts(1, name: "SyncAllX")[0]
        XCTAssertEqual(client.msgDrain(outsider).events.count, 0, "a new, unrelated user has no events")

        // A (the sender) has their own stream; it starts with the friendship too.
        let aEvents = client.msgDrain(a).events
        assertOrdered(aEvents, "A")
        XCTAssertEqual(aEvents.first?.type, "friend_added")
        XCTAssertFalse(aEvents.filter(\.isMessage).compactMap(\.message).contains { $0.destId == a.userId },
                       "A received no message")
    }

    func testPagingThroughMoreThan100EventsLosesAndRepeatsNothing() throws {
        let (a, b) = friends("SyncPage")
        // 104 messages from four threads at once: more than a page (100), and within one user's
        // message rate (rate_limit.send_msg.per_user, 120 a minute) however the workers share them.
        let perThread = 26
        let results = concurrently(4) { thread -> [MsgSent] in
            (0..<perThread).compactMap { index in
                MsgSent(self.client.msgSendReply(a, to: b.userId, content: "t\(thread)-\(index)"))
            }
        }
        let sent = results.flatMap { $0 }
        XCTAssertEqual(sent.count, 4 * perThread, "every send succeeded")

        let drained = client.msgDrain(b)
        XCTAssertGreaterThan(drained.pages, 2, "more than 100 events took more than one page")
        assertOrdered(drained.events, "B's whole stream")
        let messages = drained.events.filter(\.isMessage).compactMap(\.message).filter { $0.fromId == a.userId }
        XCTAssertEqual(messages.count, sent.count, "each message once: got \(messages.count) of \(sent.count)")
        XCTAssertEqual(Set(messages.map(\.msgId)), Set(sent.map(\.msgId)), "exactly the sent messages")
        XCTAssertEqual(messages.map(\.seq), Array(1...Int64(sent.count)), "in seq order, no gap, no repeat")
        XCTAssertEqual(drained.next, drained.events.last?.cursor)

        // The same stream read again in pages of whatever size the server uses is identical.
        let second = client.msgDrain(b)
        XCTAssertEqual(second.events.map { $0.cursor ?? -1 }, drained.events.map { $0.cursor ?? -1 })
        XCTAssertEqual(second.events.compactMap(\.message).map(\.msgId), drained.events.compactMap(\.message).map(\.msgId))
    }

    func testAReconnectWithAnOldCursorGetsExactlyTheEventsAfterIt() throws {
        let (a, b) = friends("SyncOld")
        for index in 1...12 { client.msgSend(index % 4 == 0 ? b : a, to: index % 4 == 0 ? a.userId : b.userId, content: "m\(index)") }
        let all = client.msgDrain(b).events
        XCTAssertGreaterThanOrEqual(all.count, 10)
        assertOrdered(all, "B")
        for pick in [0, 3, all.count / 2, all.count - 2] where pick >= 0 && pick < all.count {
            guard let old = all[pick].cursor else { continue }
            let replay = client.msgDrain(b, since: old)
            let expected = Array(all[(pick + 1)...])
            XCTAssertEqual(replay.events.map { $0.cursor ?? -1 }, expected.map { $0.cursor ?? -1 },
                           "since=\(old): exactly the later events")
            XCTAssertEqual(replay.events.map { $0.type ?? "" }, expected.map { $0.type ?? "" })
            XCTAssertEqual(replay.events.compactMap(\.message), expected.compactMap(\.message), "the same messages")
        }
        // The very first page again, from 0.
        let fromZero = client.msgDrain(b, since: 0).events
        XCTAssertEqual(fromZero.map { $0.cursor ?? -1 }, all.map { $0.cursor ?? -1 })
        // A stream where the client is caught up, then one more message: only that one.
        let last = all.last?.cursor ?? 0
        let newest = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "newest"))
        let tail = client.msgSync(b, since: last, timeout: 0)
        XCTAssertEqual(tail.events.compactMap(\.message).map(\.msgId), [newest.msgId])
        XCTAssertEqual(tail.events.count, 1)
        XCTAssertEqual(tail.next, tail.events.last?.cursor)
    }

    func testAReaderFollowingTheStreamWhileManySendLosesAndRepeatsNothing() throws {
        let users = client.newAccounts(7, name: "SyncFollow")
        let reader = users[0]
        let senders = Array(users[1...])
        client.msgMakeFriends(hub: reader, senders)
        let start = client.msgDrain(reader).next

        // The reader long-polls and follows `next` while six friends send 20 messages each at once.
        final class Collected: @unchecked Sendable { var events: [MsgSyncEvent] = []; var calls = 0; var failures: [String] = [] }
        let collected = Collected()
        let stop = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let expected = senders.count * 20
        let readerThread = Thread { [client = client!] in
            var cursor = start
            while collected.events.filter(\.isMessage).count < expected {
                let page = client.msgSync(reader, since: cursor, timeout: 5)
                collected.calls += 1
                guard page.ok, let next = page.next else { collected.failures.append(page.reply.text); break }
                collected.events += page.events
                cursor = next
                if stop.wait(timeout: .now()) == .success { break }
            }
            finished.signal()
        }
        readerThread.start()
        let sent = raceThreads(senders.count) { index -> [MsgSent] in
            (0..<20).compactMap { n in MsgSent(self.client.msgSendReply(senders[index], to: reader.userId, content: "s\(index)-\(n)")) }
        }.flatMap { $0 }
        XCTAssertEqual(sent.count, expected)
        if finished.wait(timeout: .now() + 15) == .timedOut {
            stop.signal()
            XCTFail("the following reader did not get all \(expected) messages within 15 s (has \(collected.events.filter(\.isMessage).count))")
            _ = finished.wait(timeout: .now() + 6)
        }
        XCTAssertEqual(collected.failures, [])
        print("a reader following the stream got \(collected.events.count) events in \(collected.calls) sync calls")
        let cursors = collected.events.map { $0.cursor ?? -1 }
        XCTAssertEqual(cursors, cursors.sorted(), "cursors in order across calls")
        XCTAssertEqual(Set(cursors).count, cursors.count, "no event twice across calls")
        let got = collected.events.compactMap(\.message).map(\.msgId)
        XCTAssertEqual(got.count, Set(got).count, "no message twice")
        XCTAssertEqual(Set(got), Set(sent.map(\.msgId)), "every message, none lost")
        // Each conversation's messages arrive in seq order.
        for sender in senders {
            let seqs = collected.events.compactMap(\.message).filter { $0.fromId == sender.userId }.map(\.seq)
            XCTAssertEqual(seqs, Array(1...20), "sender \(sender.userId)'s messages in seq order")
        }
        // A fresh read of the same range gives the same events.
        let again = client.msgDrain(reader, since: start).events
        XCTAssertEqual(again.map { $0.cursor ?? -1 }, cursors)
    }

    // MARK: long-polling

    func testAParkedSyncWakesWithinASecondOfAMessage() throws {
        let (a, b) = friends("SyncWake")
        var cursor = client.msgDrain(b).next
        var latencies: [Double] = []
        for round in 1...3 {
            let pending = client.msgSyncInBackground(b, since: cursor, timeout: 10)
            Thread.sleep(forTimeInterval: 0.6) // parked by now
            let sendStart = msgNow()
            let sent = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "wake up \(round)"))
            let sentAt = msgNow()
            guard let page = pending.wait(seconds: 15) else {
                XCTFail("round \(round): the parked sync never answered")
                continue
            }
            assertOK(page.reply, "round \(round)")
            let messages = page.events.compactMap(\.message)
            if pending.answeredAt < sendStart {
                XCTFail("round \(round): the sync answered before the message was sent (after \(pending.elapsed) s, \(page.events.count) events; a reload of the stack?): \(page.reply.text.prefix(200))")
                cursor = page.next ?? cursor
                continue
            }
            // The sync may even answer before the send's own response has arrived (negative latency).
            let latency = msgSeconds(sentAt, pending.answeredAt)
            latencies.append(latency)
            print("sync wake-up latency, round \(round): \(String(format: "%.1f", latency * 1000)) ms after the send's response, \(String(format: "%.1f", msgSeconds(sendStart, pending.answeredAt) * 1000)) ms after the send began (parked \(String(format: "%.2f", pending.elapsed)) s)")
            XCTAssertLessThan(latency, 1.0, "round \(round): the parked sync must answer within 1 s of the send")
            XCTAssertEqual(messages.map(\.msgId), [sent.msgId], "round \(round): the wake delivers that message")
            XCTAssertEqual(page.next, page.events.last?.cursor)
            cursor = page.next ?? cursor
        }
        print("sync wake-up latencies (ms): \(latencies.map { String(format: "%.1f", $0 * 1000) })")
    }

    func testASyncWithNothingNewWaitsForItsTimeout() throws {
        let (_, b) = friends("SyncIdle")
        let cursor = client.msgDrain(b).next
        XCTAssertGreaterThan(cursor, 0)

        let started = msgNow()
        let page = client.msgSync(b, since: cursor, timeout: 2)
        let elapsed = msgSeconds(started, msgNow())
        print("sync timeout=2 with nothing new answered after \(String(format: "%.3f", elapsed)) s")
        assertOK(page.reply)
        XCTAssertTrue(elapsed >= 1.8 && elapsed <= 4.0, "timeout 2 answered after \(elapsed) s (expected 1.8 … 4)")
        XCTAssertEqual(page.events.count, 0, page.reply.text)
        XCTAssertTrue(page.hasEventsArray, "events is an (empty) array")
        XCTAssertEqual(page.next, cursor, "next unchanged")
        XCTAssertEqual(page.reset, false)

        // timeout 0 (and no timeout) answer at once.
        for timeout in [0, nil] as [Int?] {
            let start = msgNow()
            let quick = client.msgSync(b, since: cursor, timeout: timeout)
            let took = msgSeconds(start, msgNow())
            assertOK(quick.reply)
            XCTAssertLessThan(took, 0.5, "timeout \(String(describing: timeout)) must not wait (\(took) s)")
            XCTAssertEqual(quick.next, cursor)
        }

        // Something already newer than since: answered at once even with a long timeout.
        let start = msgNow()
        let immediate = client.msgSync(b, since: 0, timeout: 10)
        XCTAssertLessThan(msgSeconds(start, msgNow()), 0.5, "events are pending: no waiting")
        XCTAssertFalse(immediate.events.isEmpty)
    }

    func testAMutedConversationDeliversSilently() throws {
        let users = client.newAccounts(3, name: "SyncMute")
        let (a, b, c) = (users[0], users[1], users[2])
        client.msgMakeFriends(a, b)
        client.msgMakeFriends(b, c)
        var cursor = client.msgDrain(b).next

        assertOK(client.call(b, "/chat/setIgonre", ["destId": String(a.userId), "destType": "1", "receiveTip": "0"]))
        let muted = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "muted"))
        let fromC = try XCTUnwrap(client.msgSend(c, to: b.userId, content: "C is not muted"))
        var page = client.msgDrain(b, since: cursor)
        var events = page.events.filter(\.isMessage)
        XCTAssertEqual(events.compactMap(\.message).map(\.msgId), [muted.msgId, fromC.msgId], "muted messages are still delivered")
        XCTAssertEqual(events.first?.silent, true, "muted conversation: silent true (\(String(describing: events.first)))")
        XCTAssertEqual(events.last?.silent, false, "another conversation stays loud")
        // A's own stream (A did not mute): not silent.
        let aCopy = client.msgDrain(a).events.first { $0.message?.msgId == muted.msgId }
        if let aCopy { XCTAssertEqual(aCopy.silent, false, "the sender's copy is not silent") }
        cursor = page.next

        assertOK(client.call(b, "/chat/setIgonre", ["destId": String(a.userId), "destType": "1", "receiveTip": "1"]))
        let loud = try XCTUnwrap(client.msgSend(a, to: b.userId, content: "unmuted"))
        page = client.msgDrain(b, since: cursor)
        events = page.events.filter(\.isMessage)
        XCTAssertEqual(events.compactMap(\.message).map(\.msgId), [loud.msgId])
        XCTAssertEqual(events.first?.silent, false, "after receiveTip=1: silent false")

        // A muted group: silent for the member who muted it only.
        let groupId = client.msgGroup(b, [a, c])
        let cursors = [a, b, c].map { client.msgDrain($0).next }
        assertOK(client.call(c, "/chat/setIgonre", ["destId": String(groupId), "destType": "2", "receiveTip": "0"]))
        let groupMessage = try XCTUnwrap(client.msgSend(a, to: groupId, destType: 2, content: "group hello"))
        for (index, member) in [b, c].enumerated() {
            let event = client.msgDrain(member, since: cursors[index + 1]).events.first { $0.message?.msgId == groupMessage.msgId }
            XCTAssertNotNil(event, "member \(member.userId) gets the group message")
            XCTAssertEqual(event?.silent, member.userId == c.userId, "silent only for the member who muted the group")
        }
        _ = cursors[0]
    }

    func testSocialEventsArriveThroughSync() throws {
        let users = client.newAccounts(3, name: "SyncSocial")
        let (a, b, owner) = (users[0], users[1], users[2])
        let bCursor = client.msgDrain(b).next
        let aCursor = client.msgDrain(a).next

        // A parked sync wakes for a friend request, too.
        let pending = client.msgSyncInBackground(b, since: bCursor, timeout: 10)
        Thread.sleep(forTimeInterval: 0.6)
        let asked = client.call(a, "/chat/requestFriend", ["destId": String(b.userId), "destType": "1", "message": "hi, it's A"])
        let askedAt = msgNow()
        assertReply(asked, status: 200, code: 1)
        let page = try XCTUnwrap(pending.wait(seconds: 15), "the parked sync never answered")
        let latency = msgSeconds(askedAt, pending.answeredAt)
        print("sync wake-up latency for a friend request: \(String(format: "%.1f", latency * 1000)) ms")
        XCTAssertLessThan(latency, 1.0)
        XCTAssertEqual(page.events.map { $0.type ?? "" }, ["friend_request"], page.reply.text)
        let request = page.events.first
        XCTAssertEqual(int64(request?.data?["fromId"]), a.userId, "friend_request names the requester: \(String(describing: request))")
        XCTAssertNotNil(request?.data?["requestId"], "friend_request carries the request id")

        // B accepts: A hears request_accepted.
        assertOK(client.call(b, "/chat/acceptRequest", ["destId": String(a.userId), "destType": "1"]))
        let aEvents = client.msgDrain(a, since: aCursor).events
        XCTAssertTrue(aEvents.contains { $0.type == "request_accepted" && $0.dataMentions(b.userId) },
                      "A gets request_accepted naming B: \(aEvents)")

        // Being put into a group: group_joined.
        client.msgMakeFriends(owner, b)
        let bAfter = client.msgDrain(b, since: page.next ?? bCursor)
        XCTAssertTrue(bAfter.events.contains { $0.type == "friend_added" && $0.dataMentions(owner.userId) },
                      "B gets friend_added for the immediate friendship: \(bAfter.events)")
        let groupId = client.msgGroup(owner, [b])
        let joined = client.msgDrain(b, since: bAfter.next).events
        XCTAssertTrue(joined.contains { $0.type == "group_joined" && $0.dataMentions(groupId) },
                      "B gets group_joined naming the group: \(joined)")
        assertOrdered(client.msgDrain(b).events, "B's whole stream")
    }

    func testFiftyParkedClientsAllWakeWithTheirOwnMessage() throws {
        let count = 50
        let setupStart = msgNow()
        let users = client.newAccounts(count + 1, name: "SyncMany")
        let hub = users[0]
        let others = Array(users[1...])
        client.msgMakeFriends(hub: hub, others)
        let cursors = concurrently(others.count) { index in self.client.msgDrain(others[index]).next }
        print("50 parked clients: setup took \(String(format: "%.1f", msgSeconds(setupStart, msgNow()))) s")

        let pending = others.indices.map { client.msgSyncInBackground(others[$0], since: cursors[$0], timeout: 10) }
        Thread.sleep(forTimeInterval: 1.0)
        XCTAssertTrue(pending.allSatisfy { $0.answeredAt == 0 }, "no sync may answer before its message is sent")

        let sent = concurrently(others.count) { index -> (MsgSent?, UInt64) in
            let message = MsgSent(self.client.msgSendReply(hub, to: others[index].userId, content: "for \(index)"))
            return (message, msgNow())
        }
        var latencies: [Double] = []
        for (index, wait) in pending.enumerated() {
            guard let page = wait.wait(seconds: 20) else {
                XCTFail("client \(index) never answered")
                continue
            }
            assertOK(page.reply, "client \(index)")
            guard let message = sent[index].0 else {
                XCTFail("send to client \(index) failed")
                continue
            }
            XCTAssertEqual(page.events.compactMap(\.message).map(\.msgId), [message.msgId],
                           "client \(index) gets exactly its message: \(page.reply.text.prefix(300))")
            latencies.append(msgSeconds(sent[index].1, wait.answeredAt))
            XCTAssertLessThan(wait.elapsed, 9.0, "client \(index) answered by its wake, not by its timeout")
        }
        let sorted = latencies.sorted()
        if !sorted.isEmpty {
            print("50 parked clients: wake-up latency after each send: median \(String(format: "%.1f", sorted[sorted.count / 2] * 1000)) ms, max \(String(format: "%.1f", sorted.last! * 1000)) ms")
            XCTAssertLessThan(sorted.last!, 2.0, "every parked client answered within 2 s of its message")
        }
    }

    func testAGroupMessageReachesEveryMembersSync() throws {
        let users = client.newAccounts(5, name: "SyncGroup")
        let owner = users[0]
        client.msgMakeFriends(hub: owner, Array(users[1...]))
        let groupId = client.msgGroup(owner, Array(users[1...]))
        let sender = users[2]
        let receivers = users.filter { $0.userId != sender.userId }
        let cursors = concurrently(users.count) { self.client.msgDrain(users[$0]).next }

        let pending = receivers.map { member -> MsgPendingSync in
            let index = users.firstIndex { $0.userId == member.userId }!
            return client.msgSyncInBackground(member, since: cursors[index], timeout: 10)
        }
        Thread.sleep(forTimeInterval: 0.6)
        let sent = try XCTUnwrap(client.msgSend(sender, to: groupId, destType: 2, content: "hello everyone"))
        let sentAt = msgNow()
        var latencies: [Double] = []
        for (member, wait) in zip(receivers, pending) {
            let page = try XCTUnwrap(wait.wait(seconds: 15), "member \(member.userId) never answered")
            let messages = page.events.compactMap(\.message)
            XCTAssertEqual(messages.map(\.msgId), [sent.msgId], "member \(member.userId): \(page.reply.text.prefix(300))")
            XCTAssertEqual(messages.first?.destId, groupId)
            XCTAssertEqual(messages.first?.destType, 2)
            XCTAssertEqual(messages.first?.fromId, sender.userId)
            XCTAssertEqual(messages.first?.seq, 1)
            latencies.append(msgSeconds(sentAt, wait.answeredAt))
        }
        print("group message wake-up latencies (ms): \(latencies.map { String(format: "%.1f", $0 * 1000) })")
        XCTAssertLessThan(latencies.max() ?? 0, 1.0)
    }
}
