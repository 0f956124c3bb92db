import XCTest
@testable import ChatPostgres
@testable import ChatHTTP

final class JSONWriterTests: XCTestCase {
    func testIntegersMatchTheirDecimalText() {
        for value: Int64 in [0, 7, -7, 10, 99, 100, -100, 1_234_567_890, Int64.max, Int64.min] {
            var w = JSONWriter()
            w.int(value)
            XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), String(value))
        }
    }

    func testStringsEscapeLikeTheJSONTree() {
        let samples = ["", "plain", "中文 and emoji 😀", "quote\" back\\slash", "\n\r\t\u{0}\u{1F}\u{7F}",
                       "\"starts and ends\"", String(repeating: "長い", count: 300) + "\u{7}"]
        for sample in samples {
            var w = JSONWriter()
            w.string(sample)
            XCTAssertEqual(w.bytes, JSON.string(sample).serialized(), sample)
            let decoded = try? JSONSerialization.jsonObject(with: Data(w.bytes), options: [.fragmentsAllowed]) as? String
            XCTAssertEqual(decoded, sample)
        }
    }

    func testBuildingAnObjectByHandEqualsTheTree() {
        var w = JSONWriter()
        w.raw("{\"a\":")
        w.int(-3)
        w.raw(",\"b\":")
        w.bool(false)
        w.raw(",\"c\":")
        w.json(["x", nil])
        w.byte(UInt8(ascii: "}"))
        let tree: JSON = ["a": -3, "b": false, "c": ["x", nil]]
        XCTAssertEqual(w.bytes, tree.serialized())
        // Bytes written this way embed as they are.
        XCTAssertEqual(JSON.array([.bytes(w.bytes), 1]).text, "[" + tree.text + ",1]")
    }
}
