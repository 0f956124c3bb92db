import Foundation
import XCTest
@testable import ChatSecurity
@testable import ChatCache
@testable import Accounts

final class ChangeStripesTests: XCTestCase {
    func listening() -> ChangeStripes {
        let stripes = ChangeStripes()
        stripes.setListening(true)
        return stripes
    }

    func testNoVersionWhileTheListenerIsAway() {
        let stripes = ChangeStripes()
        let key = ChangeStripes.Key("p", 42)
        XCTAssertNil(stripes.version(of: key), "nothing is trusted before the first LISTEN")
        stripes.setListening(true)
        XCTAssertNotNil(stripes.version(of: key))
        stripes.setListening(false)
        XCTAssertNil(stripes.version(of: key), "nor after the connection is lost")
    }

    func testABumpMovesItsKeyOnly() {
        let stripes = listening()
        let profile = ChangeStripes.Key("p", 42), relations = ChangeStripes.Key("r", 42), other = ChangeStripes.Key("p", 43)
        let before = [profile, relations, other].map { stripes.version(of: $0) }
        stripes.bump(profile)
        XCTAssertNotEqual(stripes.version(of: profile), before[0])
        XCTAssertEqual(stripes.version(of: relations), before[1], "same id, other kind: another counter")
        XCTAssertEqual(stripes.version(of: other), before[2])
    }

    func testTheEpochAndEveryReconnectMoveEveryKey() {
        let stripes = listening()
        let keys = (1...50).map { ChangeStripes.Key("r", Int64($0)) }
        var before = keys.map { stripes.version(of: $0) }
        stripes.bumpAll()
        for (key, old) in zip(keys, before) { XCTAssertNotEqual(stripes.version(of: key), old) }
        before = keys.map { stripes.version(of: $0) }
        stripes.setListening(false)
        stripes.setListening(true)
        for (key, old) in zip(keys, before) {
            XCTAssertNotEqual(stripes.version(of: key), old, "notifications may have been lost meanwhile")
        }
    }

    func testNotificationPayloads() {
        let stripes = listening()
        let hash = Crypto.sha256(Array("token".utf8))
        let session = ChangeStripes.Key(Sessions.changeKind, Sessions.changeId(tokenHash: hash))
        let profile = ChangeStripes.Key("p", 10001), relations = ChangeStripes.Key("r", 10002)
        let untouched = ChangeStripes.Key("p", 10003)
        let before = [session, profile, relations, untouched].map { stripes.version(of: $0) }

        // As the triggers spell them: s + the first 8 bytes of the token hash as a bigint.
        stripes.apply(payload: "s" + String(Sessions.changeId(tokenHash: hash)))
        stripes.apply(payload: "p10001")
        stripes.apply(payload: "r10002 p10001")
        let after = [session, profile, relations, untouched].map { stripes.version(of: $0) }
        XCTAssertNotEqual(after[0], before[0])
        XCTAssertNotEqual(after[1], before[1])
        XCTAssertNotEqual(after[2], before[2])
        XCTAssertEqual(after[3], before[3])

        // Anything not understood ends everything rather than nothing.
        for payload in ["*", "p", "s12x", "x?", "P10003"] {
            let old = stripes.version(of: untouched)
            stripes.apply(payload: payload)
            XCTAssertNotEqual(stripes.version(of: untouched), old, payload)
        }
    }

    func testTheSharedSegmentIsSharedBetweenMappings() throws {
        let fd = ChangeStripes.makeSegment()
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let first = try XCTUnwrap(ChangeStripes(fd: fd)), second = try XCTUnwrap(ChangeStripes(fd: fd))
        first.setListening(true)
        second.setListening(true)
        let key = ChangeStripes.Key("p", 7)
        let seen = second.version(of: key)
        first.bump(key)
        XCTAssertNotEqual(second.version(of: key), seen, "a bump in one process is seen by the others")
        XCTAssertNil(ChangeStripes(fd: -1))
    }

    func testConcurrentBumpsAreNotLost() {
        let stripes = listening()
        let key = ChangeStripes.Key("r", 5)
        let start = stripes.version(of: key)!
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 { stripes.bump(key) }
        }
        XCTAssertEqual(stripes.version(of: key)! - start, 80_000)
    }
}
