import Foundation
import XCTest

/// The moments routes' answers, decoded strictly: a missing field or a wrong type fails the test.
struct FeedItem: Decodable, Equatable {
    struct User: Decodable, Equatable {
        let userId: Int64
        let mobile: String
        let name: String
    }
    let feedId: Int64
    let userId: Int64
    let user: User
    let text: String
    let images: [String]
    let createTime: Int64
    let comments: [FeedComment]
    let praises: [FeedPraise]
}

struct FeedComment: Decodable, Equatable {
    let commentId: Int64
    let userId: Int64
    let name: String
    let headUrl: String
    let replyId: Int64
    let replyName: String
    let text: String
    let createTime: Int64
}

struct FeedPraise: Decodable, Equatable {
    let userId: Int64
    let name: String
    let headUrl: String
    let createTime: Int64
}

struct FeedPage: Decodable {
    let code: Int
    let data: [FeedItem]
    let nextBeforeId: Int64

    var ids: [Int64] { data.map(\.feedId) }
    func item(_ feedId: Int64) -> FeedItem? { data.first { $0.feedId == feedId } }
}

/// Decodes a whole answer as `T`, failing the test (with the body) when it does not fit.
func decodeReply<T: Decodable>(_ reply: Reply, as type: T.Type, file: StaticString = #filePath, line: UInt = #line) -> T? {
    do {
        return try JSONDecoder().decode(T.self, from: reply.body)
    } catch {
        XCTFail("cannot decode \(T.self) (HTTP \(reply.status)): \(error)\n\(reply.text.prefix(600))", file: file, line: line)
        return nil
    }
}

extension StackClient {
    /// Posts and returns the new post's id (asserted).
    @discardableResult
    func addFeed(_ account: Account, text: String, images: [String] = [], file: StaticString = #filePath, line: UInt = #line) -> Int64 {
        var params = ["text": text]
        if !images.isEmpty { params["images"] = images.joined(separator: ",") }
        let reply = call(account, "/feed/addFeed", params)
        assertOK(reply, "addFeed", file: file, line: line)
        return int64(reply.dataObject["feedId"]) ?? 0
    }

    /// A page of a moments list route, decoded (200, code 1 asserted).
    func feedPage(_ account: Account, _ path: String, _ params: [String: String] = [:],
                  file: StaticString = #filePath, line: UInt = #line) -> FeedPage {
        let reply = call(account, path, params)
        assertOK(reply, path, file: file, line: line)
        return decodeReply(reply, as: FeedPage.self, file: file, line: line) ?? FeedPage(code: 0, data: [], nextBeforeId: 0)
    }

    func timeline(_ account: Account, pageNo: Int = 1, file: StaticString = #filePath, line: UInt = #line) -> FeedPage {
        feedPage(account, "/feed/getFeed", ["pageNo": String(pageNo)], file: file, line: line)
    }

    func postsOf(_ author: Int64, as viewer: Account, pageNo: Int = 1, file: StaticString = #filePath, line: UInt = #line) -> FeedPage {
        feedPage(viewer, "/feed/getFriendFeed", ["friendId": String(author), "pageNo": String(pageNo)], file: file, line: line)
    }

    func album(_ author: Int64, as viewer: Account, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        let reply = call(viewer, "/feed/getFeedAlbum", ["destId": String(author)])
        assertOK(reply, "getFeedAlbum", file: file, line: line)
        return reply.dataArray.compactMap { $0 as? String }
    }

    /// An image uploaded by `account`; its URL (asserted).
    func uploadedImage(_ account: Account, width: Int = 2, height: Int = 2, file: StaticString = #filePath, line: UInt = #line) -> String {
        let reply = uploadImage(token: account.token, data: TestImages.png(width: width, height: height))
        assertOK(reply, "uploadImage", file: file, line: line)
        return (reply.dataArray.first as? [String: Any])?["url"] as? String ?? ""
    }

    /// The events of `account` after `since` (no waiting): (type, data) pairs.
    func feedEvents(_ account: Account, since: Int64 = 0) -> [(type: String, data: [String: Any])] {
        let reply = call(account, "/chat/sync", ["since": String(since), "timeout": "0"])
        let events = reply.dataObject["events"] as? [[String: Any]] ?? []
        return events.map { ($0["type"] as? String ?? "", $0["data"] as? [String: Any] ?? $0) }
    }
}
