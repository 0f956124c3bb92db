import Foundation
import XCTest

/// `/_ping` and `/_status` (loopback only through nginx): every worker of the host, from the
/// scoreboard, as JSON and in Prometheus' text format.
final class StatusPageTests: StackTestCase {
    func testPingAnswersPong() {
        let reply = client.get("/_ping")
        XCTAssertEqual(reply.status, 200)
        XCTAssertEqual(reply.text, "pong\n")
    }

    func testStatusShowsEveryWorkerAndCounts() throws {
        let workers = try StackProcesses.workers(stack)
        for _ in 0..<5 { assertOK(client.get("/getVersion", ["device": "1"])) }
        var total: [String: Any] = [:]
        var processes: [[String: Any]] = []
        // Slots are filled in twice a second: wait until every worker has published.
        let published = StackProcesses.eventually(within: 5) {
            let reply = self.client.get("/_status")
            total = reply.dataObject["total"] as? [String: Any] ?? [:]
            processes = reply.dataObject["processes"] as? [[String: Any]] ?? []
            return Set(processes.compactMap { int64($0["pid"]) }) == Set(workers.map(Int64.init))
                && processes.allSatisfy { (int64($0["updated_at_ms"]) ?? 0) > 0 }
        }
        XCTAssertTrue(published, "status processes \(processes.map { $0["pid"] ?? "?" }), workers \(workers)")
        XCTAssertEqual(int64(total["workers"]), Int64(workers.count))
        let threads = Int64(stack.configValue("threads") ?? "") ?? 0
        XCTAssertEqual(int64(total["threads"]), threads * Int64(workers.count))
        XCTAssertGreaterThanOrEqual(int64(total["requests_served"]) ?? 0, 5)
        XCTAssertGreaterThan(int64(total["database_connections"]) ?? 0, 0)
        for key in ["busy_threads", "parked_long_polls", "uploads_in_flight", "cache_bytes", "cache_hits", "cache_misses",
                    "connections_accepted", "accepts_failed", "long_polls_displaced"] {
            XCTAssertNotNil(int64(total[key]), "total.\(key) in \(total)")
        }

        let prometheus = client.get("/_status", ["format": "prometheus"])
        XCTAssertEqual(prometheus.status, 200)
        XCTAssertTrue(prometheus.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        XCTAssertTrue(prometheus.text.contains("chat_fcgi_workers \(workers.count)\n"), prometheus.text)
        for pid in workers {
            XCTAssertTrue(prometheus.text.contains("chat_fcgi_requests_served_total{pid=\"\(pid)\"} "), prometheus.text)
        }
    }
}
