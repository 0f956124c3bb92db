import XCTest
@testable import ChatPostgres
@testable import ChatHTTP
@testable import ChatRouting

final class EnvelopeTests: XCTestCase {
    func decode(_ bytes: [UInt8]) -> Any? { try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) }

    func testEnvelopeShape() {
        let response = Response.envelope(code: 2, info: "mobile already registered", data: ["userId": 7])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self),
                       #"{"code":2,"info":"mobile already registered","data":{"userId":7}}"#)
    }

    func testErrorEnvelopeCarriesStatusAndNullData() {
        let response = Response.error(.payloadTooLarge)
        XCTAssertEqual(response.status, 413)
        let object = decode(response.body) as? [String: Any]
        XCTAssertEqual(object?["code"] as? Int, -1)
        XCTAssertTrue(object?["data"] is NSNull)
    }

    func testStringEscapingRoundTrips() {
        let tricky = "quote\" backslash\\ newline\n tab\t bell\u{7} 中文 emoji 😀 del\u{7F}"
        let bytes = JSON.array([.string(tricky)]).serialized()
        XCTAssertEqual((decode(bytes) as? [String])?.first, tricky)
    }

    func testValuesSerialize() {
        let value: JSON = ["a": nil, "b": true, "c": [1, -2, 9_007_199_254_740_993], "d": "x"]
        XCTAssertEqual(value.text, #"{"a":null,"b":true,"c":[1,-2,9007199254740993],"d":"x"}"#)
    }

    func testDataWrittenIntoTheBodyMakesTheSameEnvelope() {
        let written = Response.ok(reserving: 8) { body in body.append(contentsOf: Array("[1,2]".utf8)) }
        XCTAssertEqual(written.status, 200)
        XCTAssertEqual(written.body, Response.ok([1, 2]).body)
    }
}
