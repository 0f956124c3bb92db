import XCTest
@testable import ChatApp
@testable import Messages

/// What `ready` counts again and what it takes from what a worker counted before.
final class UnreadCountsTests: XCTestCase {
    typealias Known = UnreadCounts.Known

    func candidate(_ id: Int64, read: Int64, visibleFrom: Int64 = 0, last: Int64) -> Known {
        Known(conversationId: id, readSeq: read, visibleFrom: visibleFrom, lastSeq: last, count: 0)
    }

    func known(_ list: [Known]) -> [Int64: Known] {
        Dictionary(uniqueKeysWithValues: list.map { ($0.conversationId, $0) })
    }

    func testNothingKnownCountsEverythingFromTheReadPosition() {
        let (facts, toCount) = UnreadCounts.plan([candidate(7, read: 3, last: 10), candidate(8, read: 0, last: 2)], known: [:])
        XCTAssertEqual(toCount.map(\.index), [0, 1])
        XCTAssertEqual(toCount.map(\.after), [3, 0])
        XCTAssertEqual(facts.map(\.count), [0, 0])
        XCTAssertEqual(facts.map(\.lastSeq), [10, 2])
    }

    func testAnUnchangedConversationIsNotCountedAgain() {
        let old = Known(conversationId: 7, readSeq: 3, visibleFrom: 0, lastSeq: 10, count: 5)
        let (facts, toCount) = UnreadCounts.plan([candidate(7, read: 3, last: 10)], known: known([old]))
        XCTAssertTrue(toCount.isEmpty)
        XCTAssertEqual(facts.first?.count, 5)
    }

    func testAConversationThatMovedOnCountsOnlyItsNewMessages() {
        let old = Known(conversationId: 7, readSeq: 3, visibleFrom: 0, lastSeq: 10, count: 5)
        let (facts, toCount) = UnreadCounts.plan([candidate(7, read: 3, last: 14)], known: known([old]))
        XCTAssertEqual(toCount.map(\.after), [10])
        XCTAssertEqual(facts.first?.count, 5, "the new ones are added to what was counted")
        XCTAssertEqual(facts.first?.lastSeq, 14)
    }

    func testANewReadPositionCountsAfresh() {
        let old = Known(conversationId: 7, readSeq: 3, visibleFrom: 0, lastSeq: 10, count: 5)
        let (facts, toCount) = UnreadCounts.plan([candidate(7, read: 8, last: 10)], known: known([old]))
        XCTAssertEqual(toCount.map(\.after), [8])
        XCTAssertEqual(facts.first?.count, 0)
    }

    func testANewVisibleFromTimeCountsAfresh() {
        // A member who left and joined again sees the messages from the new join on only.
        let old = Known(conversationId: 7, readSeq: 3, visibleFrom: 1_000, lastSeq: 10, count: 5)
        let (facts, toCount) = UnreadCounts.plan([candidate(7, read: 3, visibleFrom: 2_000, last: 10)], known: known([old]))
        XCTAssertEqual(toCount.map(\.after), [3])
        XCTAssertEqual(facts.first?.count, 0)
        XCTAssertEqual(facts.first?.visibleFrom, 2_000)
    }

    func testAnAnswerNewerThanTheRowIsNotUsedBackwards() {
        // Another thread remembered a count up to seq 12; this request's row saw the conversation
        // at seq 10: the stored count covers messages this answer must not include.
        let old = Known(conversationId: 7, readSeq: 3, visibleFrom: 0, lastSeq: 12, count: 7)
        let (facts, toCount) = UnreadCounts.plan([candidate(7, read: 3, last: 10)], known: known([old]))
        XCTAssertEqual(toCount.map(\.after), [3])
        XCTAssertEqual(facts.first?.count, 0)
        XCTAssertEqual(facts.first?.lastSeq, 10)
    }

    func testOnlyTheChangedConversationsAreCounted() {
        let olds = [Known(conversationId: 1, readSeq: 0, visibleFrom: 0, lastSeq: 4, count: 4),
                    Known(conversationId: 2, readSeq: 1, visibleFrom: 0, lastSeq: 9, count: 3)]
        let asked = [candidate(1, read: 0, last: 4), candidate(2, read: 1, last: 11), candidate(3, read: 0, last: 1)]
        let (facts, toCount) = UnreadCounts.plan(asked, known: known(olds))
        XCTAssertEqual(toCount.map(\.index), [1, 2])
        XCTAssertEqual(toCount.map(\.after), [9, 0])
        XCTAssertEqual(facts.map(\.count), [4, 3, 0])
    }

    func testRememberedCountsComeBackPerUserAndNotWithoutABudget() {
        let counts = UnreadCounts(budgets: CacheRegistry.budgets(MemberListsTests.config(lists: 1, copies: 0)))
        counts.remember([Known(conversationId: 5, readSeq: 1, visibleFrom: 0, lastSeq: 3, count: 2)], userId: 42)
        XCTAssertEqual(counts.lookup(userId: 42)[5]?.count, 2)
        XCTAssertTrue(counts.lookup(userId: 43).isEmpty)
        let none = UnreadCounts(budgets: .none)
        none.remember([Known(conversationId: 5, readSeq: 1, visibleFrom: 0, lastSeq: 3, count: 2)], userId: 42)
        XCTAssertTrue(none.lookup(userId: 42).isEmpty)
    }
}
