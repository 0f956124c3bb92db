import XCTest
@testable import ChatPostgres
@testable import Groups

final class GroupsStoreTests: XCTestCase {
    func testSearchStatementsBindTheTextAndKeepTheirLimitsConstant() {
        let short = GroupsStore.searchByGram("ab")
        XCTAssertEqual(short.binds.map { $0?.pgText }, ["ab"])
        XCTAssertTrue(short.text.contains("n.gram = $1"))
        XCTAssertTrue(short.text.contains("LIMIT 20"))

        let walk = GroupsStore.searchByRarestGram(["of", "ff"], pattern: "%coffee%")
        XCTAssertEqual(walk.binds.map { $0?.pgText }, ["{\"of\",\"ff\"}", "%coffee%"])
        XCTAssertTrue(walk.text.contains("LIMIT \(GroupsFeature.gramWalkLimit + 1))"), "the count stops one past the walk")
        XCTAssertTrue(walk.text.contains("LIMIT \(GroupsFeature.gramWalkLimit))"))
        XCTAssertTrue(walk.text.contains("LIKE $2"))

        let trigrams = GroupsStore.searchByTrigrams(pattern: "%a b%")
        XCTAssertEqual(trigrams.binds.map { $0?.pgText }, ["%a b%"])
        XCTAssertTrue(trigrams.text.contains("LIMIT 20"))
    }

    func testTheAvatarColumnJoinsWithNewlinesAndIsNamed() {
        let text = GroupsStore.headUrlsColumn.text
        XCTAssertTrue(text.contains("string_agg(head_url, E'\\n')"), text)
        XCTAssertTrue(text.hasSuffix("AS head_urls"), text)
        XCTAssertTrue(GroupsStore.headUrlsColumn.binds.isEmpty)
    }

    func testReadyStatementBindsTheUserOnce() {
        let statement = GroupsStore.groupsOf(42)
        XCTAssertEqual(statement.binds.map { $0?.pgText }, ["42"])
        XCTAssertTrue(statement.text.contains("AS list_version"))
    }

    func testHeadUrlsRenderAsAJSONArray() {
        XCTAssertEqual(String(decoding: GroupWriter.headUrls(nil), as: UTF8.self), "[]")
        XCTAssertEqual(String(decoding: GroupWriter.headUrls("a.png\nb\"c.png"), as: UTF8.self), #"["a.png","b\"c.png"]"#)
        XCTAssertEqual(GroupWriter.noHeadUrls, GroupWriter.headUrls(nil))
    }
}
