import CFastCGI
import Foundation
import XCTest
@testable import ChatConfig
@testable import ChatFastCGI

/// The parking lot's bounds: a key (a user) holds at most `maxPerKey` parked requests, the oldest
/// answered first; the lot holds at most `maxTotal`, beyond which a request is answered at once.
final class ParkingLotTests: XCTestCase {
    var peers: [Int32] = []

    override func tearDown() {
        for fd in peers { close(fd) }
        peers.removeAll()
        super.tearDown()
    }

    /// A request on one end of a socket pair (the parking lot watches its descriptor).
    func park(_ lot: ParkingLot, key: Int64) -> FastCGIExchange {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        peers += fds
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        request.initialize(to: FCGX_Request())
        request.pointee.ipcFd = fds[0]
        let exchange = FastCGIExchange(raw: request)
        lot.park(request: request, exchange: exchange, key: key, deadline: monotonicNanos() + 60_000_000_000,
                 seenGeneration: lot.generation(for: key))
        return exchange
    }

    func testAKeysOldestRequestIsAnsweredWhenItHasTooMany() {
        let lot = ParkingLot()
        lot.maxPerKey = 2
        let first = park(lot, key: 7)
        _ = park(lot, key: 7)
        _ = park(lot, key: 8)
        XCTAssertEqual(lot.readyCount, 0)
        _ = park(lot, key: 7)
        XCTAssertEqual(lot.parkedCount, 3, "key 7 keeps two, key 8 its one")
        XCTAssertEqual(lot.readyCount, 1)
        let answered = lot.takeReady()
        XCTAssertTrue(answered?.exchange === first, "the oldest request of the key is the one answered")
        XCTAssertEqual(answered?.exchange.resumeIsFinal, true, "it must answer now, not park again")
        XCTAssertEqual(lot.displacedCount, 1)
    }

    func testAFullLotAnswersANewRequestAtOnce() {
        let lot = ParkingLot()
        lot.maxTotal = 2
        _ = park(lot, key: 1)
        _ = park(lot, key: 2)
        let third = park(lot, key: 3)
        XCTAssertEqual(lot.parkedCount, 2)
        let answered = lot.takeReady()
        XCTAssertTrue(answered?.exchange === third)
        XCTAssertEqual(answered?.exchange.resumeIsFinal, true)
        XCTAssertEqual(lot.turnedAwayCount, 1)
    }
}
