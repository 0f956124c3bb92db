import Foundation
import XCTest
@testable import ChatSecurity

final class PasswordHasherTests: XCTestCase {

    func testHashIsYescryptAndVerifies() throws {
        let h = try PasswordHasher.hash("correct horse battery staple")
        XCTAssertTrue(h.hasPrefix("$y$"), h)
        XCTAssertTrue(PasswordHasher.verify("correct horse battery staple", against: h))
        XCTAssertFalse(PasswordHasher.verify("correct horse battery stapl", against: h))
        XCTAssertFalse(PasswordHasher.verify("", against: h))
    }

    func testUnicodeAndEmptySecrets() throws {
        let h = try PasswordHasher.hash("密码🔑pässwörd")
        XCTAssertTrue(PasswordHasher.verify("密码🔑pässwörd", against: h))
        XCTAssertFalse(PasswordHasher.verify("密码🔑passwörd", against: h))
        let e = try PasswordHasher.hash("")
        XCTAssertTrue(PasswordHasher.verify("", against: e))
        XCTAssertFalse(PasswordHasher.verify(" ", against: e))
    }

    func testSaltsDiffer() throws {
        let a = try PasswordHasher.hash("same secret")
        let b = try PasswordHasher.hash("same secret")
        XCTAssertNotEqual(a, b)
        XCTAssertTrue(PasswordHasher.verify("same secret", against: a))
        XCTAssertTrue(PasswordHasher.verify("same secret", against: b))
    }

    func testGarbageStoredHashIsFalse() throws {
        let good = try PasswordHasher.hash("pw")
        for stored in ["", "*", "*0", "garbage", "$y$", "$y$garbage", "$y$j9T$", "$2b$10$short",
                       "$1$abcdefgh$", "ab" /* DES setting: refused, not evaluated */,
                       String(good.dropLast(3)), good + "x", "*" + good] {
            XCTAssertFalse(PasswordHasher.verify("pw", against: stored), stored)
        }
        XCTAssertFalse(PasswordHasher.verify("pw", against: String(repeating: "$y$", count: 500)))
    }

    func testNulAndOverlongSecretsRejected() throws {
        XCTAssertThrowsError(try PasswordHasher.hash("abc\0def")) {
            XCTAssertEqual($0 as? PasswordHasherError, .invalidSecret)
        }
        XCTAssertThrowsError(try PasswordHasher.hash(String(repeating: "a", count: 600)))
        let h = try PasswordHasher.hash("abc")
        // Without the NUL check, C-string truncation would make this verify.
        XCTAssertFalse(PasswordHasher.verify("abc\0def", against: h))
        // The longest accepted secret works end to end.
        let long = String(repeating: "b", count: 511)
        XCTAssertTrue(PasswordHasher.verify(long, against: try PasswordHasher.hash(long)))
    }

    func testConcurrentHashingFromEightThreads() throws {
        let lock = NSLock()
        var results = [(String, String)]()
        var errors = [Error]()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let secret = "secret-\(i)-\(Crypto.randomToken())"
            do {
                let h = try PasswordHasher.hash(secret)
                lock.lock(); results.append((secret, h)); lock.unlock()
            } catch {
                lock.lock(); errors.append(error); lock.unlock()
            }
        }
        XCTAssertTrue(errors.isEmpty, "\(errors)")
        XCTAssertEqual(results.count, 8)
        XCTAssertEqual(Set(results.map { $0.1 }).count, 8)
        // Verify concurrently as well, each against its own and a neighbour's hash.
        var ok = [Bool](repeating: false, count: 8)
        var crossOk = [Bool](repeating: true, count: 8)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let good = PasswordHasher.verify(results[i].0, against: results[i].1)
            let cross = PasswordHasher.verify(results[i].0, against: results[(i + 1) % 8].1)
            lock.lock(); ok[i] = good; crossOk[i] = cross; lock.unlock()
        }
        XCTAssertEqual(ok, [Bool](repeating: true, count: 8))
        XCTAssertEqual(crossOk, [Bool](repeating: false, count: 8))
    }

    /// Documents the cost: prints the average time of one hash. The bound is loose on purpose
    /// (CI machines vary); it exists to catch an accidental seconds-long cost setting.
    func testHashTiming() throws {
        _ = try PasswordHasher.hash("warm-up")  // includes the one-time method probe
        let n = 5
        let start = DispatchTime.now().uptimeNanoseconds
        var last = ""
        for i in 0..<n { last = try PasswordHasher.hash("timing-\(i)") }
        let hashMs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(n)
        let vStart = DispatchTime.now().uptimeNanoseconds
        XCTAssertTrue(PasswordHasher.verify("timing-\(n - 1)", against: last))
        let verifyMs = Double(DispatchTime.now().uptimeNanoseconds - vStart) / 1e6
        print("PasswordHasher: hash \(String(format: "%.1f", hashMs)) ms avg over \(n), "
              + "verify \(String(format: "%.1f", verifyMs)) ms (\(last.prefix(7)))")
        XCTAssertLessThan(hashMs, 1000)
    }
}
