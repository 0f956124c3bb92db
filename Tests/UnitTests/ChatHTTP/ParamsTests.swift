import XCTest
@testable import ChatHTTP

final class ParamsTests: XCTestCase {
    func params(_ pairs: [(String, String)]) -> Params { Params(pairs.map { (name: $0.0, value: $0.1) }) }

    func status(_ body: () throws -> Any?) -> Int? {
        do { _ = try body(); return nil } catch let error as HTTPError { return error.status } catch { return -1 }
    }

    func testFirstValueWinsWithinOneSourceAndLaterSourceOverrides() {
        var p = params([("a", "1"), ("a", "2")])
        XCTAssertEqual(p["a"], "1")
        p.merge([(name: "a", value: "3")])
        XCTAssertEqual(p["a"], "3")
    }

    func testLengthsCountCharactersNotBytes() throws {
        let p = params([("name", String(repeating: "张", count: 32)), ("long", String(repeating: "a", count: 33))])
        XCTAssertEqual(try p.string("name", maxLength: 32)?.count, 32)
        XCTAssertEqual(status { try p.string("long", maxLength: 32) }, 400)
    }

    func testControlCharactersAreRefused() {
        let p = params([("a", "x\u{0}y"), ("b", "line\nbreak")])
        XCTAssertEqual(status { try p.string("a", maxLength: 10) }, 400)
        XCTAssertNil(status { try p.string("b", maxLength: 20) })
    }

    func testRequiredAndIntegers() throws {
        let p = params([("empty", ""), ("n", "12"), ("neg", "-1"), ("big", "99999999999999999999"), ("abc", "abc")])
        XCTAssertEqual(status { try p.required("missing", maxLength: 5) }, 400)
        XCTAssertEqual(status { try p.required("empty", maxLength: 5) }, 400)
        XCTAssertEqual(try p.requiredId("n"), 12)
        XCTAssertEqual(status { try p.requiredId("neg") }, 400)
        XCTAssertEqual(status { try p.requiredId("big") }, 400)
        XCTAssertEqual(status { try p.requiredId("abc") }, 400)
        XCTAssertNil(try p.id("empty"))
    }

    func testFlagsMobilesAndPasswords() throws {
        let p = params([("on", "1"), ("off", "0"), ("two", "2"), ("m", "+8613812345678"), ("m2", "13812345678"),
                        ("m3", "+12345"), ("pwd", "0123456789abcdef0123456789abcdef"), ("PWD", "0123456789ABCDEF0123456789ABCDEF")])
        XCTAssertEqual(try p.flag("on"), true)
        XCTAssertEqual(try p.flag("off"), false)
        XCTAssertEqual(status { try p.flag("two") }, 400)
        XCTAssertEqual(try p.mobile("m"), "+8613812345678")
        XCTAssertEqual(status { try p.mobile("m2") }, 400)
        XCTAssertEqual(status { try p.mobile("m3") }, 400)
        XCTAssertEqual(try p.md5Hex("pwd").count, 32)
        XCTAssertEqual(status { try p.md5Hex("PWD") }, 400)
    }

    func testIdLists() throws {
        let p = params([("ids", "11, 22,11,333"), ("bad", "1,,2"), ("neg", "1,-2")])
        XCTAssertEqual(try p.idList("ids", maxCount: 10), [11, 22, 333])
        XCTAssertEqual(status { try p.idList("bad", maxCount: 10) }, 400)
        XCTAssertEqual(status { try p.idList("neg", maxCount: 10) }, 400)
        XCTAssertEqual(status { try p.idList("ids", maxCount: 2) }, 400)
    }
}
