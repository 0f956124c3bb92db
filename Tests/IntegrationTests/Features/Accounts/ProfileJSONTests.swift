import Foundation
import XCTest

/// A Profile is built in two places: in Swift (Profile.json: getUserById, queryUser, ready.user)
/// and in PostgreSQL (chat_profile_json, sql/0004: the long lists, getGroupMember and
/// ready.friends). The two must agree field for field, masked mobiles included.
final class ProfileJSONTests: StackTestCase {
    func testProfilesFromSwiftAndFromPostgreSQLAgree() throws {
        let owner = client.newAccount(name: "Owner")
        let friend = client.newAccount(name: "Friend \"quoted\" 张三 😀")
        let stranger = client.newAccount(name: "Stranger")
        for (account, fields) in [(friend, ["nickName": "fr\\nd", "sign": "line\nbreak", "sex": "女", "city": "北京"]),
                                  (stranger, ["province": "上海", "sex": "男"])] {
            XCTAssertEqual(client.post("/chat/updateProfile", fields.merging(["token": account.token]) { a, _ in a }).code, 1)
        }
        client.msgMakeFriends(owner, friend)
        client.msgMakeFriends(owner, stranger)
        // A group with all three, then the stranger is no longer the owner's friend's friend:
        // the friend sees the stranger's masked mobile.
        let group = client.post("/chat/createGroup", ["token": owner.token, "name": "Profiles",
                                                       "ids": "\(friend.userId),\(stranger.userId)"])
        XCTAssertEqual(group.code, 1, group.text)
        let groupId = int64(group.dataObject["groupId"]) ?? 0

        let members = client.post("/chat/getGroupMember", ["token": friend.token, "groupId": String(groupId)])
        XCTAssertEqual(members.code, 1, members.text)
        let listed = Dictionary(uniqueKeysWithValues: members.dataArray.compactMap { $0 as? [String: Any] }.compactMap { entry -> (Int64, NSDictionary)? in
            guard let id = int64(entry["userId"]), let user = entry["user"] as? [String: Any] else { return nil }
            return (id, user as NSDictionary)
        })
        XCTAssertEqual(listed.count, 3)
        for account in [owner, friend, stranger] {
            let single = client.post("/chat/getUserById", ["token": friend.token, "destId": String(account.userId)])
            XCTAssertEqual(single.code, 1, single.text)
            let fromSwift = (single.dataObject["user"] as? [String: Any] ?? [:]) as NSDictionary
            XCTAssertEqual(listed[account.userId], fromSwift, "profile of \(account.userId): PostgreSQL vs Swift")
        }
        // The stranger's number is masked for the friend (they are not friends) in both.
        let masked = listed[stranger.userId]?["mobile"] as? String ?? ""
        XCTAssertTrue(masked.contains("****"), masked)
        XCTAssertNotEqual(masked, stranger.mobile)

        // ready.friends (PostgreSQL) against getUserById (Swift) for the owner's friends.
        let ready = client.post("/chat/ready", ["token": owner.token])
        let friends = ready.dataObject["friends"] as? [[String: Any]] ?? []
        XCTAssertEqual(friends.count, 2, ready.text)
        for entry in friends {
            guard let id = int64(entry["userId"]) else { XCTFail("no userId"); continue }
            let single = client.post("/chat/getUserById", ["token": owner.token, "destId": String(id)])
            var fromSwift = single.dataObject["user"] as? [String: Any] ?? [:]
            fromSwift["remark"] = ""
            fromSwift["friendGroupId"] = 0
            XCTAssertEqual(entry as NSDictionary, fromSwift as NSDictionary, "friend \(id) in ready vs getUserById")
        }
    }
}
