import XCTest
@testable import ChatSecurity
@testable import ChatPostgres

final class CryptoTests: XCTestCase {

    func testSHA256KnownVectors() {
        // FIPS 180-2 appendix B.1 and the empty-message digest.
        XCTAssertEqual(Crypto.sha256Hex("abc"),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Crypto.hex(Crypto.sha256([])),
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(Crypto.sha256(Array("abc".utf8)).count, 32)
    }

    func testHMACSHA256RFC4231() {
        // RFC 4231 test case 2.
        XCTAssertEqual(Crypto.hmacSHA256Hex(key: Array("Jefe".utf8), message: "what do ya want for nothing?"),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // RFC 4231 test case 1 (binary key).
        XCTAssertEqual(Crypto.hmacSHA256Hex(key: [UInt8](repeating: 0x0b, count: 20), message: "Hi There"),
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // RFC 4231 test case 6: key longer than the block size is hashed first.
        XCTAssertEqual(Crypto.hmacSHA256Hex(key: [UInt8](repeating: 0xaa, count: 131),
                                            message: "Test Using Larger Than Block-Size Key - Hash Key First"),
                       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        // Empty key and message must work (no NULL-pointer surprises).
        XCTAssertEqual(Crypto.hex(Crypto.hmacSHA256(key: [], message: [])),
                       "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    func testHexRoundTrip() {
        let bytes: [UInt8] = [0x00, 0x01, 0x7f, 0x80, 0xab, 0xff]
        XCTAssertEqual(Crypto.hex(bytes), "00017f80abff")
        XCTAssertEqual(Crypto.fromHex("00017f80abff"), bytes)
        XCTAssertEqual(Crypto.fromHex("00017F80ABFF"), bytes)
        XCTAssertEqual(Crypto.fromHex(""), [])
        XCTAssertEqual(Crypto.hex([]), "")
        let random = Crypto.randomBytes(100)
        XCTAssertEqual(Crypto.fromHex(Crypto.hex(random)), random)
    }

    func testFromHexRejectsMalformed() {
        XCTAssertNil(Crypto.fromHex("abc"))      // odd length
        XCTAssertNil(Crypto.fromHex("zz"))
        XCTAssertNil(Crypto.fromHex("0g"))
        XCTAssertNil(Crypto.fromHex(" 00"))
        XCTAssertNil(Crypto.fromHex("éé"))
    }

    func testRandomTokenFormatAndUniqueness() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let t = Crypto.randomToken()
            XCTAssertEqual(t.utf8.count, 64)
            XCTAssertTrue(t.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }, t)
            seen.insert(t)
        }
        XCTAssertEqual(seen.count, 1000)
    }

    func testRandomBytes() {
        XCTAssertEqual(Crypto.randomBytes(0), [])
        XCTAssertEqual(Crypto.randomBytes(17).count, 17)
        XCTAssertNotEqual(Crypto.randomBytes(32), Crypto.randomBytes(32))
    }

    func testRandomDigits() {
        XCTAssertEqual(Crypto.randomDigits(0), "")
        for _ in 0..<200 {
            let code = Crypto.randomDigits(6)
            XCTAssertEqual(code.utf8.count, 6)
            XCTAssertTrue(code.utf8.allSatisfy { (48...57).contains($0) }, code)
        }
        // Loose uniformity check: 20 000 digits, each expected 2 000 times; a biased or
        // stuck generator would fall far outside ±300 (≈ 7 standard deviations).
        var counts = [Int](repeating: 0, count: 10)
        for c in Crypto.randomDigits(20_000).utf8 { counts[Int(c - 48)] += 1 }
        for n in counts { XCTAssertTrue((1700...2300).contains(n), "\(counts)") }
    }

    func testRandomAlphanumeric() {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        let s = Crypto.randomAlphanumeric(10_000)
        XCTAssertEqual(s.utf8.count, 10_000)
        XCTAssertTrue(s.utf8.allSatisfy { allowed.contains($0) })
        XCTAssertEqual(Set(s.utf8).count, 36)  // every symbol shows up in 10k draws
        XCTAssertEqual(Crypto.randomAlphanumeric(0), "")
    }

    func testConstantTimeEquals() {
        XCTAssertTrue(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Crypto.constantTimeEquals([1, 2, 3], [1, 2]))
        XCTAssertTrue(Crypto.constantTimeEquals([UInt8](), []))
        XCTAssertTrue(Crypto.constantTimeEquals("token", "token"))
        XCTAssertFalse(Crypto.constantTimeEquals("token", "tokem"))
        XCTAssertFalse(Crypto.constantTimeEquals("token", "token "))
        XCTAssertFalse(Crypto.constantTimeEquals("", "a"))
    }
}
