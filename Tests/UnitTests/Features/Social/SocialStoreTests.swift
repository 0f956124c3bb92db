import XCTest
@testable import ChatPostgres
@testable import Social

final class SocialStoreTests: XCTestCase {
    /// The list numbers stay constants in the text, so that the planner sees them.
    func testUserListVersionWritesTheListAsAConstant() {
        let requests = SocialStore.userListVersion(.requests)
        XCTAssertEqual(requests.text, "COALESCE((SELECT v.version FROM user_list_versions v WHERE v.user_id = u.id AND v.list = 1), 0)")
        XCTAssertTrue(requests.binds.isEmpty)
        XCTAssertTrue(SocialStore.userListVersion(.groups).text.hasSuffix("v.list = 2), 0)"))
        XCTAssertTrue(SocialStore.userListVersion(.settings).text.hasSuffix("v.list = 3), 0)"))
    }

    func testReadyVersionColumnsAreNamedAndBindNothing() {
        let columns = SocialStore.readyVersionColumns
        XCTAssertEqual(columns.map { $0.text.components(separatedBy: " AS ").last },
                       ["friend_list_version", "request_list_version", "group_list_version", "setting_list_version"])
        XCTAssertTrue(columns.allSatisfy { $0.binds.isEmpty })
    }

    func testRequestListBindsTheUserOnceAndKeepsItsLimitConstant() {
        let statement = SocialStore.requestList(of: 10_042)
        XCTAssertTrue(statement.text.hasSuffix("ORDER BY r.created_at DESC LIMIT 200"))
        XCTAssertEqual(statement.binds.map { $0?.pgText }, ["10042"])
        XCTAssertEqual(statement.text.components(separatedBy: "$1").count, 3, "the same $1 in both places")
    }

    func testRelationStatementsBindTheUserOnce() {
        for statement in [SocialStore.relations(of: 7), SocialStore.friendList(of: 7), SocialStore.settingLists(of: 7)] {
            XCTAssertEqual(statement.binds.map { $0?.pgText }, ["7"], statement.text)
            XCTAssertFalse(statement.text.contains("$2"), statement.text)
        }
    }

    func testRelationColumnsAreNamedAndEmbedTheirOperands() {
        let relation = SocialFeature.relationColumns(me: "\(Int64(5))::bigint", other: "u.id")
        XCTAssertTrue(relation.columns.text.hasPrefix("f.remark AS relation_remark, "))
        XCTAssertTrue(relation.columns.text.hasSuffix(" AS relation_blocked"))
        XCTAssertTrue(relation.columns.text.contains("b.user_id = $1::bigint AND b.blocked_id = u.id"))
        XCTAssertEqual(relation.joins.text, "LEFT JOIN friendships f ON f.user_id = $1::bigint AND f.friend_id = u.id")
        XCTAssertEqual(relation.columns.binds.map { $0?.pgText }, ["5"])
    }

    func testConversationCodeNamesTheDestination() {
        let group: Int64 = 42, user: Int64 = 10_001
        XCTAssertEqual(SettingListsWriter.conversationJSON(code: group * 2 + 1), .object([("destId", .int(group)), ("destType", 2)]))
        XCTAssertEqual(SettingListsWriter.conversationJSON(code: user * 2), .object([("destId", .int(user)), ("destType", 1)]))
    }
}
