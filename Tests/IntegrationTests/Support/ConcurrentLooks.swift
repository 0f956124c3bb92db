import Foundation
import XCTest

// Looks at what the workers answer from their copies (docs/caching.md): a request may reach any
// worker process and any thread of it, so one look is many requests at once, and a change made
// outside the API is awaited rather than expected at once.

/// How many requests one round of a look sends at once.
let concurrentLookWidth = 16

/// Two rounds of `concurrentLookWidth` requests at once (the second answered from what the first
/// may have stored); fails unless every answer equals the first, which it returns.
func agreeingLook<T: Equatable>(file: StaticString = #filePath, line: UInt = #line, _ request: @escaping () -> T) -> T {
    let answers = raceThreads(concurrentLookWidth) { _ in request() } + raceThreads(concurrentLookWidth) { _ in request() }
    for (index, answer) in answers.enumerated() where answer != answers[0] {
        XCTFail("answers differ: #0 \(answers[0]), #\(index) \(answer)", file: file, line: line)
        break
    }
    return answers[0]
}

/// Rounds of `concurrentLookWidth` requests at once until every answer satisfies `accept` (a
/// change made outside the API reaches the workers through a notification, so answers may differ
/// for a moment), for up to 3 s.
func eventuallyEvery<T>(_ context: String, file: StaticString = #filePath, line: UInt = #line,
                        _ request: @escaping () -> T, accept: (T) -> Bool) {
    let deadline = Date().addingTimeInterval(3)
    var last = raceThreads(concurrentLookWidth) { _ in request() }
    while !last.allSatisfy(accept) && Date() < deadline {
        Thread.sleep(forTimeInterval: 0.05)
        last = raceThreads(concurrentLookWidth) { _ in request() }
    }
    XCTAssertTrue(last.allSatisfy(accept), "\(context): still \(last.first { !accept($0) }.map { "\($0)" } ?? "") after 3 s",
                  file: file, line: line)
}
