import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// queryGroup's answers, exactly: the newest 20 live groups (highest id first) whose lowercased
/// name contains the lowercased text, for one- and two-character texts (the gram path), longer
/// texts (the walk of a gram's postings, complete or cut off and followed by the trigram index) and
/// texts with whitespace. Every answer is also compared with the plain SQL that defines it.
///
/// The texts are made of rare CJK ideographs (Extension A) and random tokens, so only this run's
/// groups match them; where a case needs more than 100 groups sharing a gram, those groups are
/// made here too.
final class GroupSearchTests: StackTestCase {
    typealias Account = StackClient.Account

    /// Two friends: `a` creates every group, with `b` in it.
    func friends(_ name: String) -> (Account, Account) {
        let users = client.newAccounts(2, name: name)
        client.befriend(users[0], users[1])
        return (users[0], users[1])
    }

    /// Creates groups with these names, a few at a time, and returns their ids in the names' order.
    /// Groups of one call are all newer than those of earlier calls.
    func makeGroups(_ a: Account, _ b: Account, _ names: [String], file: StaticString = #filePath,
                    line: UInt = #line) -> [Int64] {
        var ids: [Int64] = []
        var next = 0
        while next < names.count {
            let batch = Array(names[next..<min(next + 6, names.count)])
            ids += raceThreads(batch.count) { index in
                self.client.makeGroup(a, [b], name: batch[index], file: file, line: line)
            }
            next += batch.count
        }
        return ids
    }

    /// n distinct rare ideographs.
    func rareIdeographs(_ count: Int) -> [String] {
        var set: [String] = []
        while set.count < count {
            let candidate = rareIdeograph()
            if !set.contains(candidate) { set.append(candidate) }
        }
        return set
    }

    /// The definition, in SQL: live groups whose lower(name) contains the lowercased text, LIKE's
    /// wildcards escaped, newest 20 first.
    func expectedBySQL(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Int64] {
        let lowered = text.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
        let pattern = "%" + lowered.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
        let literal = "'" + pattern.replacingOccurrences(of: "'", with: "''") + "'"
        return try StackDB.query(stack, """
            SELECT id FROM groups WHERE lower(name) LIKE \(literal) AND dissolved_at IS NULL ORDER BY id DESC LIMIT 20
            """, file: file, line: line).compactMap { $0.first.flatMap { Int64($0) } }
    }

    /// queryGroup answers exactly `expected` (in order), which is also what the SQL definition gives.
    func assertSearch(_ account: Account, _ text: String, _ expected: [Int64], _ note: String,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        let reply = client.queryGroup(account, text)
        assertOK(reply, "queryGroup '\(text)' (\(note))", file: file, line: line)
        let found = idsOf(reply.dataArray, key: "groupId")
        XCTAssertEqual(found, expected, "queryGroup '\(text)' (\(note)): \(reply.text.prefix(400))", file: file, line: line)
        XCTAssertEqual(found, try expectedBySQL(text, file: file, line: line),
                       "queryGroup '\(text)' (\(note)) against the SQL definition", file: file, line: line)
    }

    /// The newest `count` of `ids` (highest first).
    func newest(_ ids: [Int64], _ count: Int = 20) -> [Int64] { Array(ids.sorted(by: >).prefix(count)) }

    // MARK: one and two characters

    func testOneAndTwoCharacterTextsGiveTheNewestTwentyInOrder() throws {
        let (a, b) = friends("SearchShort")
        let r = rareIdeographs(3)
        let both = makeGroups(a, b, (0..<23).map { "\(r[0])\(r[1]) \($0)" })
        let second = makeGroups(a, b, ["x\(r[1])\(r[2])", "\(r[1])"])
        try assertSearch(b, r[0], newest(both), "one character, 23 matches")
        try assertSearch(b, "\(r[0])\(r[1])", newest(both), "two characters, 23 matches")
        try assertSearch(b, r[1], newest(both + second), "one character, 25 matches")
        try assertSearch(b, "\(r[1])\(r[2])", [second[0]], "two characters, one match")
        try assertSearch(b, "\(r[2])\(r[0])", [], "two characters, adjacent in no name")
    }

    // MARK: three characters and more

    func testLongerTextsGiveTheNewestTwentyInOrder() throws {
        let (a, b) = friends("SearchLong")
        let r = rareIdeographs(5)
        let token = uniqueToken(8)
        // 23 matches and nothing else sharing their grams: the walk sees every posting.
        let matches = makeGroups(a, b, (0..<23).map { "组\(r[0])\(r[1])\(r[2])\(r[3])\(token)队\($0)" })
        try assertSearch(b, "\(r[0])\(r[1])\(r[2])", newest(matches), "three characters")
        try assertSearch(b, "\(r[1])\(r[2])\(r[3])\(token)", newest(matches), "eleven characters")
        try assertSearch(b, token, newest(matches), "letters and digits")
        try assertSearch(b, "\(r[3])\(token.uppercased())队", newest(matches), "capitals in the text")
        try assertSearch(b, "\(r[0])\(r[2])\(r[1])", [], "no match")
        try assertSearch(b, "\(r[0])\(r[1])\(r[2])\(r[4])", [], "no match, the first three of four match")
    }

    func testMatchesOlderThanManyGroupsSharingTheGram() throws {
        let (a, b) = friends("SearchDeep")
        let r = rareIdeographs(6)
        let text = "\(r[0])\(r[1])\(r[2])"           // its one sure gram: r[1]
        let other = "\(r[3])\(r[4])\(r[5])\(r[4])"  // its one sure gram: r[4]r[5]
        let oldest = makeGroups(a, b, (0..<20).map { "A\(text)\($0)" } + ["\(other) 0", "\(other) 1"])
        // More than 100 newer groups with r[1] and r[4]r[5] in their names, matching neither text.
        let decoys = makeGroups(a, b, (0..<110).map { "\(r[1])\(r[4])\(r[5])\(r[0]) \($0)" })
        XCTAssertEqual(decoys.count, 110)
        try assertSearch(b, text, newest(Array(oldest.prefix(20))), "20 matches behind 110 groups sharing the gram")
        try assertSearch(b, other, newest(Array(oldest.suffix(2))), "2 matches behind 110 groups sharing the gram")
        // Five new matches: a walk of the 100 newest postings meets only them, then all 25 count.
        let newer = makeGroups(a, b, (0..<5).map { "B\(text)\($0)" })
        try assertSearch(b, text, newest(Array(oldest.prefix(20)) + newer), "5 matches in front of the groups sharing the gram, 20 behind")
        // 25 more new matches: the walk finds 20 among the newest postings.
        let newest25 = makeGroups(a, b, (0..<25).map { "C\(text)\($0)" })
        try assertSearch(b, text, newest(newest25), "many matches in front")
        // A dissolved match is not found, however new.
        let dissolved = makeGroups(a, b, ["D\(text)"])[0]
        assertOK(client.quitGroup(a, dissolved))
        assertOK(client.quitGroup(b, dissolved))
        try assertSearch(b, text, newest(newest25), "a new but dissolved match")
    }

    // MARK: whitespace

    func testTextsWithWhitespace() throws {
        let (a, b) = friends("SearchSpace")
        let r = rareIdeographs(4)
        let token = uniqueToken(6)
        let spaced = makeGroups(a, b, (0..<22).map { "\(token) \(r[0])\(r[1]) \(r[2])\(r[3]) \($0)" })
        let joined = makeGroups(a, b, ["\(token)\(r[0])\(r[1])\(r[2])\(r[3])", "\(r[1])\u{3000}\(r[2])", "\(r[1])  \(r[2])"])
        try assertSearch(b, "\(r[1]) \(r[2])", newest(spaced), "three characters, a space in the middle")
        try assertSearch(b, "\(r[0])\(r[1]) \(r[2])\(r[3])", newest(spaced), "a space between two pairs")
        try assertSearch(b, "  \(r[0])\(r[1]) \(r[2])\t", newest(spaced), "spaces and tabs around are trimmed")
        try assertSearch(b, "\(token) \(r[0])", newest(spaced), "letters, a space, an ideograph")
        try assertSearch(b, "\(r[1])\(r[2])\(r[3])", [joined[0]], "no space: only the name without one")
        try assertSearch(b, "\(r[1])\u{3000}\(r[2])", [joined[1]], "an ideographic space is not a space")
        try assertSearch(b, "\(r[1])  \(r[2])", [joined[2]], "two spaces")
        try assertSearch(b, "\(r[2])\(r[3]) 1", newest(spaced.enumerated().filter { "\($0.offset)".hasPrefix("1") }.map(\.element)),
                         "a pair, a space and a digit")
    }

    // MARK: names that Swift splits or lowercases unlike PostgreSQL

    /// PostgreSQL matches code points of lower(name); group_name_grams holds Swift's grapheme
    /// clusters of Swift's lowercase. The walk must still find every match.
    func testNamesWithCombiningMarksPrependedMarksAndDottedCapitalI() throws {
        let (a, b) = friends("SearchUnicode")
        let r = rareIdeographs(5)
        let text = "\(r[0])\(r[1])\(r[2])"
        let combining = makeGroups(a, b, ["x\(text)\u{301}y"])[0]   // the last character takes the accent
        let prepended = makeGroups(a, b, ["\u{600}\(text)"])[0]     // the first joins the prepended mark
        let plain = makeGroups(a, b, ["\(text)"])[0]
        try assertSearch(b, text, [plain, prepended, combining], "the text's ends joined to marks in the names")
        // PostgreSQL lowers "İ" to "i", Swift to "i" + U+0307: "i" is never a walked gram.
        let dotted = makeGroups(a, b, ["\(r[3])\(r[4])İ\(r[0])\(r[1])", "\(r[3])\(r[4])I\(r[0])\(r[1])"])
        try assertSearch(b, "\(r[3])\(r[4])i\(r[0])\(r[1])", newest(dotted), "a capital I with a dot and without")
        try assertSearch(b, "\(r[4])i\(r[0])", newest(dotted), "three characters, i in the middle")
    }
}
