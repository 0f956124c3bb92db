import Foundation
#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// Clients that send their bodies a byte at a time never hold an app thread: nginx takes every
/// body whole before it calls the app (uploads included), so the API keeps answering.
final class SlowClientTests: StackTestCase {
    func testSixtyFourTricklingBodiesLeaveTheAPIAnswering() throws {
        let account = client.newAccount(name: "Trickle")
        let other = client.newAccount(name: "TrickleOther")
        let (host, port) = stack.hostAndPort
        let (multipartHead, multipartType) = multipartBody([
            MultipartPart(name: "fileUpload", filename: "a.png", contentType: "image/png", data: Data(count: 16)),
        ])
        // Valid and refused routes, with and without a token; each declares a large body.
        let heads: [String] = [
            "POST /chat/doUploads?fileExt=%zz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
            "PUT /chat/doUploads?fileExt=jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
            "POST /chat/doUploads?fileExt=jpg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(account.token)\r\nContent-Length: 1000000\r\n\r\n",
            "POST /chat/doUploads?fileExt=jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
            "POST /chat/uploadImage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(account.token)\r\nContent-Type: \(multipartType)\r\nContent-Length: 1000000\r\n\r\n",
            "POST /chat/uploadImage HTTP/1.1\r\nHost: x\r\nContent-Type: \(multipartType)\r\nContent-Length: 1000000\r\n\r\n",
            "POST /chat/doLogin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n",
            "POST /chat/updateProfile HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(account.token)\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n",
        ]
        var connections: [RawHTTPConnection] = []
        for index in 0..<64 {
            let connection = try RawHTTPConnection(host: host, port: port)
            connection.send(heads[index % heads.count])
            connection.send(Array(multipartHead.prefix(40)))
            connections.append(connection)
        }
        // One byte per connection every 200 ms for as long as the checks run.
        let stop = DispatchSemaphore(value: 0)
        let trickling = connections
        let trickler = Thread {
            while stop.wait(timeout: .now() + 0.2) == .timedOut {
                for connection in trickling { connection.send("x") }
            }
        }
        trickler.start()
        defer {
            stop.signal()
            usleep(300_000)
        }
        usleep(500_000)

        var slowest = 0.0
        for round in 0..<15 {
            let started = Date()
            let version = client.get("/getVersion", ["device": "1"])
            let versionTime = Date().timeIntervalSince(started)
            XCTAssertEqual(version.code, 1, "getVersion in round \(round): \(version.text)")
            let userStarted = Date()
            let user = client.authed("/chat/getUserById", account.token, ["destId": String(other.userId)])
            let userTime = Date().timeIntervalSince(userStarted)
            XCTAssertEqual(user.code, 1, "getUserById in round \(round): \(user.text)")
            XCTAssertLessThan(versionTime, 1, "getVersion took \(versionTime) s in round \(round)")
            XCTAssertLessThan(userTime, 1, "getUserById took \(userTime) s in round \(round)")
            slowest = max(slowest, versionTime, userTime)
            usleep(200_000)
        }
        print("[slow-clients] 64 trickling bodies: slowest answer \(String(format: "%.3f", slowest)) s")
    }
}
