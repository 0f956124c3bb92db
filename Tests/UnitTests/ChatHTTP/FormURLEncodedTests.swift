import XCTest
@testable import ChatPostgres
@testable import ChatHTTP

final class FormURLEncodedTests: XCTestCase {
    private let malformed = HTTPError.badRequest("malformed form encoding")

    /// Pairs are tuples (not Equatable), so compare them as arrays of two-element arrays.
    private func parsed(_ string: String, file: StaticString = #filePath, line: UInt = #line) -> [[String]] {
        do {
            return try FormURLEncoded.parse(string).map { [$0.name, $0.value] }
        } catch {
            XCTFail("unexpected error \(error) for \(string)", file: file, line: line)
            return []
        }
    }

    private func assertMalformed(_ string: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try FormURLEncoded.parse(string), "input: \(string)", file: file, line: line) { error in
            XCTAssertEqual(error as? HTTPError, malformed, file: file, line: line)
        }
    }

    func testPlusIsSpaceAndPercentDecoding() {
        XCTAssertEqual(parsed("a=hello+world&b=%41%62c"), [["a", "hello world"], ["b", "Abc"]])
        XCTAssertEqual(parsed("x=%2f%2F%3d%26%2B"), [["x", "//=&+"]])
        // `%2B` is a literal plus, unlike `+`.
        XCTAssertEqual(parsed("x=1%2B1+2"), [["x", "1+1 2"]])
    }

    func testNamesAreDecodedLikeValues() {
        XCTAssertEqual(parsed("a%20b+c=1&%E5%90%8D=v"), [["a b c", "1"], ["名", "v"]])
    }

    func testUTF8() {
        XCTAssertEqual(parsed("gender=%E5%A5%B3&city=%e5%8c%97%e4%ba%ac"), [["gender", "女"], ["city", "北京"]])
        // Unescaped UTF-8 (some clients send it raw) is accepted as long as it is valid.
        XCTAssertEqual(parsed("q=女+子"), [["q", "女 子"]])
        XCTAssertEqual(parsed("e=%F0%9F%98%80"), [["e", "😀"]])
    }

    func testInvalidUTF8Throws() {
        assertMalformed("a=%FF")
        assertMalformed("%FF=a")
        assertMalformed("a=%E5%A5")        // truncated multi-byte sequence
        assertMalformed("a=%C0%AF")        // overlong encoding of "/"
        assertMalformed("a=%ED%A0%80")     // UTF-16 surrogate
        // Raw invalid bytes, not only escaped ones.
        XCTAssertThrowsError(try FormURLEncoded.parse([UInt8(ascii: "a"), UInt8(ascii: "="), 0xFF]))
        XCTAssertThrowsError(try FormURLEncoded.parse([0xC3, UInt8(ascii: "=")]))
    }

    func testMalformedEscapesThrow() {
        for input in ["a=%", "a=%4", "a=%zz", "a=%4g", "a=%g4", "%=1", "a=1%&b=2", "a=%%41", "a=%-1"] {
            assertMalformed(input)
        }
    }

    func testErrorDoesNotEchoTheValue() {
        XCTAssertThrowsError(try FormURLEncoded.parse("password=hunter2%ZZ")) { error in
            let info = (error as? HTTPError)?.info ?? ""
            XCTAssertFalse(info.contains("hunter2"))
            XCTAssertFalse(info.contains("password"))
            XCTAssertEqual((error as? HTTPError)?.status, 400)
        }
    }

    func testEmptyPairsAreSkipped() {
        XCTAssertEqual(parsed(""), [])
        XCTAssertEqual(parsed("&"), [])
        XCTAssertEqual(parsed("&&&"), [])
        XCTAssertEqual(parsed("&&a=1&&b=2&"), [["a", "1"], ["b", "2"]])
    }

    func testPairsWithoutOrWithSeveralEquals() {
        XCTAssertEqual(parsed("flag&x=&=v"), [["flag", ""], ["x", ""], ["", "v"]])
        XCTAssertEqual(parsed("a=b=c"), [["a", "b=c"]])
        XCTAssertEqual(parsed("a=="), [["a", "="]])
    }

    func testDuplicateNamesKeptInOrder() {
        XCTAssertEqual(parsed("x=1&y=2&x=3&x=1"), [["x", "1"], ["y", "2"], ["x", "3"], ["x", "1"]])
    }

    func testByteAndRawBufferEntryPoints() throws {
        let bytes = Array("a=1&b=%41".utf8)
        XCTAssertEqual(try FormURLEncoded.parse(bytes).map { [$0.name, $0.value] }, [["a", "1"], ["b", "A"]])
        let fromRaw = try bytes.withUnsafeBytes { try FormURLEncoded.parse($0) }
        XCTAssertEqual(fromRaw.map { [$0.name, $0.value] }, [["a", "1"], ["b", "A"]])
        XCTAssertTrue(try FormURLEncoded.parse(UnsafeRawBufferPointer(start: nil, count: 0)).isEmpty)
    }

    func testPercentDecode() throws {
        XCTAssertEqual(try FormURLEncoded.percentDecode(Array("a+b%20c".utf8), plusIsSpace: true), "a b c")
        XCTAssertEqual(try FormURLEncoded.percentDecode(Array("a+b%20c".utf8), plusIsSpace: false), "a+b c")
        XCTAssertEqual(try FormURLEncoded.percentDecode("%E5%A5%B3".utf8, plusIsSpace: false), "女")
        XCTAssertEqual(try FormURLEncoded.percentDecode([UInt8](), plusIsSpace: true), "")
        // A slice and a non-contiguous collection take the same path to the same result.
        let bytes = Array("xx%41+yy".utf8)
        XCTAssertEqual(try FormURLEncoded.percentDecode(bytes[2..<6], plusIsSpace: true), "A ")
        XCTAssertEqual(try FormURLEncoded.percentDecode(Array("14%".utf8).reversed(), plusIsSpace: true), "A")
        XCTAssertThrowsError(try FormURLEncoded.percentDecode(Array("%F".utf8), plusIsSpace: true))
        XCTAssertThrowsError(try FormURLEncoded.percentDecode(Array("%FF".utf8), plusIsSpace: true))
    }

    /// Encodes random strings (ASCII, controls, CJK, emoji, form metacharacters) the way a
    /// browser does and checks they decode back exactly.
    func testRandomRoundTrip() throws {
        var generator = ParserTestRNG(seed: 42)
        let alphabet: [Character] = Array("aZ09 +&=%-_.~*'()!\u{0}\n\t女子北京😀é")
        func encode(_ string: String) -> String {
            var out = ""
            for byte in string.utf8 {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                     UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                     UInt8(ascii: "."), UInt8(ascii: "*"):
                    out.unicodeScalars.append(Unicode.Scalar(byte))
                case UInt8(ascii: " "):
                    out += "+"
                default:
                    // Alternate hex case to cover both.
                    let digits = Array(Bool.random(using: &generator) ? "0123456789ABCDEF" : "0123456789abcdef")
                    out += "%" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xF)])
                }
            }
            return out
        }
        for _ in 0..<500 {
            var pairs: [[String]] = []
            for _ in 0..<Int.random(in: 1...5, using: &generator) {
                let name = String((0..<Int.random(in: 1...6, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
                let value = String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
                pairs.append([name, value])
            }
            let query = pairs.map { encode($0[0]) + "=" + encode($0[1]) }.joined(separator: "&")
            XCTAssertEqual(parsed(query), pairs, query)
        }
    }
}

/// Small deterministic generator so randomised tests are reproducible.
struct ParserTestRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
