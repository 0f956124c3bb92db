import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

// Helpers for the messaging tests (API.md §5: sendMsg, getMsgHistory, sync, markRead, and
// `ready`'s `unread`), on top of StackClient.swift, TestFixtures.swift and SocialFixtures.swift.
// Names carry a `msg`/`Msg` prefix so that they cannot clash with other suites' helpers.

/// What `/chat/sendMsg` answered: `data` `{"msgId", "seq", "sendTime"}`.
struct MsgSent: Equatable, CustomStringConvertible {
    let msgId: Int64
    let seq: Int64
    let sendTime: Int64
    var description: String { "{msgId \(msgId), seq \(seq), sendTime \(sendTime)}" }

    init?(_ reply: Reply) {
        guard reply.status == 200, reply.code == 1,
              let msgId = int64(reply.dataObject["msgId"]), let seq = int64(reply.dataObject["seq"]),
              let sendTime = int64(reply.dataObject["sendTime"]) else { return nil }
        self.msgId = msgId
        self.seq = seq
        self.sendTime = sendTime
    }
}

/// One message as history and sync show it:
/// `{"msgId", "seq", "fromId", "destId", "destType", "msgType", "content", "sendTime"}`.
struct MsgRecord: Equatable, CustomStringConvertible {
    let msgId: Int64
    let seq: Int64
    let fromId: Int64
    let destId: Int64
    let destType: Int64
    let msgType: Int64
    let content: String
    let sendTime: Int64
    var description: String { "{msgId \(msgId) seq \(seq) from \(fromId) → \(destId)/\(destType) type \(msgType) '\(content.prefix(30))' at \(sendTime)}" }

    /// nil when a field is missing or of the wrong JSON type.
    init?(_ object: Any?) {
        guard let o = object as? [String: Any],
              let msgId = int64(o["msgId"]), let seq = int64(o["seq"]), let fromId = int64(o["fromId"]),
              let destId = int64(o["destId"]), let destType = int64(o["destType"]), let msgType = int64(o["msgType"]),
              let content = o["content"] as? String, let sendTime = int64(o["sendTime"]) else { return nil }
        self.msgId = msgId
        self.seq = seq
        self.fromId = fromId
        self.destId = destId
        self.destType = destType
        self.msgType = msgType
        self.content = content
        self.sendTime = sendTime
    }
}

/// One sync event: `{"cursor", "type", "silent", "message": {…}}` or `{"cursor", "type", "data": {…}}`.
struct MsgSyncEvent: CustomStringConvertible {
    let raw: [String: Any]
    var cursor: Int64? { int64(raw["cursor"]) }
    var type: String? { raw["type"] as? String }
    /// `silent` as a JSON boolean (nil when absent or not a boolean).
    var silent: Bool? {
        guard let number = raw["silent"] as? NSNumber else { return nil }
        // JSONSerialization gives JSON booleans as boolean NSNumbers (objCType "c"), numbers as "i"/"q"/"d".
        return String(cString: number.objCType) == "c" ? number.boolValue : nil
    }
    var message: MsgRecord? { MsgRecord(raw["message"]) }
    var data: [String: Any]? { raw["data"] as? [String: Any] }
    var isMessage: Bool { type == "message" }
    var description: String {
        if isMessage { return "#\(cursor ?? -1) message silent=\(silent.map(String.init) ?? "?") \(message.map(\.description) ?? "(unreadable: \(raw["message"] ?? "nil"))")" }
        return "#\(cursor ?? -1) \(type ?? "?") \(data.map { "\($0)" } ?? "(no data)")"
    }

    /// True when some number anywhere in `data` equals `id`.
    func dataMentions(_ id: Int64) -> Bool { StackDB.Event.contains(raw["data"], id) }
}

/// `/chat/sync`'s `data`: `{"events": [...], "next": cursor, "reset": bool}`.
struct MsgSyncPage {
    let reply: Reply
    var ok: Bool { reply.status == 200 && reply.code == 1 }
    var events: [MsgSyncEvent] { (reply.dataObject["events"] as? [Any] ?? []).map { MsgSyncEvent(raw: $0 as? [String: Any] ?? [:]) } }
    var hasEventsArray: Bool { reply.dataObject["events"] is [Any] }
    var next: Int64? { int64(reply.dataObject["next"]) }
    var reset: Bool? { jsonBoolean(reply, key: "reset") }
}

/// A sync running on its own thread; `wait()` gives its answer and the moment it arrived.
final class MsgPendingSync: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private(set) var page: MsgSyncPage?
    /// `DispatchTime.now().uptimeNanoseconds` when the request was sent and when its answer came.
    let startedAt: UInt64
    private(set) var answeredAt: UInt64 = 0

    init(client: StackClient, account: StackClient.Account, since: Int64, timeout: Int) {
        startedAt = DispatchTime.now().uptimeNanoseconds
        let thread = Thread { [self] in
            let page = client.msgSync(account, since: since, timeout: timeout)
            self.answeredAt = DispatchTime.now().uptimeNanoseconds
            self.page = page
            self.done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// The answer (nil if none came within `seconds`).
    func wait(seconds: Double = 40) -> MsgSyncPage? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        done.signal() // let later waits return too
        return page
    }

    var elapsed: Double { Double(answeredAt &- startedAt) / 1e9 }
}

func msgNow() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
func msgSeconds(_ from: UInt64, _ to: UInt64) -> Double { (Double(to) - Double(from)) / 1e9 }
func msgWallMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// A client message id that no other test (or earlier run) uses.
func msgClientId(_ tag: String = "c") -> String { "\(tag)-\(UUID().uuidString.lowercased())" }

extension StackClient {
    // MARK: friends and groups, quickly

    /// b stops requiring approval, a asks: friends at once (`code` 2, asserted).
    func msgMakeFriends(_ a: Account, _ b: Account, file: StaticString = #filePath, line: UInt = #line) {
        let setting = call(b, "/chat/updatePrivateSetting", ["needAuth": "0"])
        XCTAssertEqual(setting.code, 1, "updatePrivateSetting: \(setting.text)", file: file, line: line)
        let asked = call(a, "/chat/requestFriend", ["destId": String(b.userId), "destType": "1"])
        XCTAssertEqual(asked.status, 200, asked.text, file: file, line: line)
        XCTAssertEqual(asked.code, 2, "requestFriend to a needAuth=0 user: \(asked.text)", file: file, line: line)
    }

    /// `hub` becomes a friend of each of `others` (a few at a time).
    func msgMakeFriends(hub: Account, _ others: [Account], file: StaticString = #filePath, line: UInt = #line) {
        inBatches(others, of: 8) { other in self.msgMakeFriends(hub, other, file: file, line: line) }
    }

    /// A group of `owner` and `members` (each must be the owner's friend); asserted.
    func msgGroup(_ owner: Account, _ members: [Account], file: StaticString = #filePath, line: UInt = #line) -> Int64 {
        let reply = call(owner, "/chat/createGroup", ["ids": members.map { String($0.userId) }.joined(separator: ","),
                                                      "name": "MsgGroup" + uniqueToken(6)])
        XCTAssertEqual(reply.status, 200, reply.text, file: file, line: line)
        XCTAssertEqual(reply.code, 1, "createGroup: \(reply.text)", file: file, line: line)
        return int64(reply.dataObject["groupId"]) ?? 0
    }

    // MARK: messages

    func msgSendReply(_ from: Account, to destId: Int64, destType: Int = 1, content: String, msgType: Int = 1,
                      clientMsgId: String? = nil) -> Reply {
        call(from, "/chat/sendMsg", ["destId": String(destId), "destType": String(destType), "msgType": String(msgType),
                                     "content": content, "clientMsgId": clientMsgId ?? msgClientId()])
    }

    /// Sends and asserts `code` 1 with the three fields; nil (and a failure) otherwise.
    @discardableResult
    func msgSend(_ from: Account, to destId: Int64, destType: Int = 1, content: String, msgType: Int = 1,
                 clientMsgId: String? = nil, file: StaticString = #filePath, line: UInt = #line) -> MsgSent? {
        let reply = msgSendReply(from, to: destId, destType: destType, content: content, msgType: msgType, clientMsgId: clientMsgId)
        guard let sent = MsgSent(reply) else {
            XCTFail("sendMsg \(from.userId) → \(destId)/\(destType) '\(content.prefix(40))': expected 200 code 1 with msgId/seq/sendTime, got \(reply.status) \(reply.text.prefix(300))",
                    file: file, line: line)
            return nil
        }
        return sent
    }

    func msgHistoryReply(_ account: Account, _ destId: Int64, destType: Int = 1, sendTime: Int64? = nil, size: Int? = nil) -> Reply {
        var params = ["destId": String(destId), "destType": String(destType)]
        if let sendTime { params["sendTime"] = String(sendTime) }
        if let size { params["size"] = String(size) }
        return call(account, "/chat/getMsgHistory", params)
    }

    /// One history page (asserted 200/1, every item readable).
    func msgHistory(_ account: Account, _ destId: Int64, destType: Int = 1, sendTime: Int64? = nil, size: Int? = nil,
                    file: StaticString = #filePath, line: UInt = #line) -> [MsgRecord] {
        let reply = msgHistoryReply(account, destId, destType: destType, sendTime: sendTime, size: size)
        XCTAssertEqual(reply.status, 200, "getMsgHistory: \(reply.text.prefix(300))", file: file, line: line)
        XCTAssertEqual(reply.code, 1, "getMsgHistory: \(reply.text.prefix(300))", file: file, line: line)
        XCTAssertTrue(reply.data is [Any], "getMsgHistory data must be an array: \(reply.text.prefix(300))", file: file, line: line)
        let items = reply.dataArray
        let records = items.compactMap { MsgRecord($0) }
        XCTAssertEqual(records.count, items.count, "unreadable history items: \(reply.text.prefix(500))", file: file, line: line)
        return records
    }

    /// The whole history, paged backwards with `sendTime` = the oldest sendTime of the page before.
    func msgFullHistory(_ account: Account, _ destId: Int64, destType: Int = 1, pageSize: Int = 100,
                        file: StaticString = #filePath, line: UInt = #line) -> (messages: [MsgRecord], pages: Int) {
        var all: [MsgRecord] = []
        var before: Int64? = nil
        var pages = 0
        while pages < 1000 {
            let page = msgHistory(account, destId, destType: destType, sendTime: before, size: pageSize, file: file, line: line)
            pages += 1
            if page.isEmpty { break }
            all = page + all
            guard let oldest = page.first?.sendTime else { break }
            before = oldest
        }
        return (all, pages)
    }

    // MARK: sync

    func msgSyncReply(_ account: Account, since: Int64?, timeout: Int?) -> Reply {
        var params: [String: String] = [:]
        if let since { params["since"] = String(since) }
        if let timeout { params["timeout"] = String(timeout) }
        return call(account, "/chat/sync", params)
    }

    func msgSync(_ account: Account, since: Int64?, timeout: Int? = 0) -> MsgSyncPage {
        MsgSyncPage(reply: msgSyncReply(account, since: since, timeout: timeout))
    }

    /// Every event after `since`, paging with `next` (timeout 0) until a page is empty.
    /// Asserts each page is 200/1 with an events array and a `next`.
    func msgDrain(_ account: Account, since: Int64 = 0, file: StaticString = #filePath, line: UInt = #line)
        -> (events: [MsgSyncEvent], next: Int64, pages: Int) {
        var events: [MsgSyncEvent] = []
        var cursor = since
        var pages = 0
        while pages < 500 {
            let page = msgSync(account, since: cursor, timeout: 0)
            pages += 1
            XCTAssertTrue(page.ok, "sync since=\(cursor): \(page.reply.status) \(page.reply.text.prefix(300))", file: file, line: line)
            XCTAssertTrue(page.hasEventsArray, "sync without an events array: \(page.reply.text.prefix(300))", file: file, line: line)
            guard page.ok, let next = page.next else {
                XCTFail("sync since=\(cursor) has no next: \(page.reply.text.prefix(300))", file: file, line: line)
                break
            }
            let batch = page.events
            if batch.isEmpty {
                XCTAssertEqual(next, cursor, "an empty sync page must leave the cursor where it was", file: file, line: line)
                break
            }
            events += batch
            cursor = next
        }
        return (events, cursor, pages)
    }

    /// Starts a sync on its own thread.
    func msgSyncInBackground(_ account: Account, since: Int64, timeout: Int) -> MsgPendingSync {
        MsgPendingSync(client: self, account: account, since: since, timeout: timeout)
    }

    // MARK: read positions

    func msgMarkRead(_ account: Account, _ destId: Int64, destType: Int = 1, seq: Int64) -> Reply {
        call(account, "/chat/markRead", ["destId": String(destId), "destType": String(destType), "seq": String(seq)])
    }

    /// `ready`'s `unread` entries, keyed by (destId, destType): (count, lastSeq).
    func msgUnread(_ account: Account, file: StaticString = #filePath, line: UInt = #line) -> [MsgConversationKey: (count: Int64, lastSeq: Int64)] {
        let reply = call(account, "/chat/ready")
        XCTAssertEqual(reply.code, 1, "ready: \(reply.text.prefix(300))", file: file, line: line)
        guard let items = reply.dataObject["unread"] as? [Any] else {
            XCTFail("ready has no unread array: \(reply.text.prefix(500))", file: file, line: line)
            return [:]
        }
        var result: [MsgConversationKey: (count: Int64, lastSeq: Int64)] = [:]
        for item in items {
            guard let o = item as? [String: Any], let destId = int64(o["destId"]), let destType = int64(o["destType"]),
                  let count = int64(o["count"]), let lastSeq = int64(o["lastSeq"]) else {
                XCTFail("unreadable unread entry \(item)", file: file, line: line)
                continue
            }
            let key = MsgConversationKey(destId: destId, destType: destType)
            XCTAssertNil(result[key], "two unread entries for \(key)", file: file, line: line)
            result[key] = (count, lastSeq)
        }
        return result
    }
}

struct MsgConversationKey: Hashable, CustomStringConvertible {
    let destId: Int64
    let destType: Int64
    var description: String { "\(destId)/\(destType)" }
}
