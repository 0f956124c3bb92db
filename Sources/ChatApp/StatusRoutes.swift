import Foundation
import ChatHTTP
import ChatRouting
import ChatServer

/// The operators' endpoints (php-fpm's `ping.path` and `pm.status_path`). `/_ping` says the
/// application answers (for load balancers); `/_status` shows every worker process of this host
/// from the scoreboard, as the JSON envelope or, with `format=prometheus`, in Prometheus' text
/// format. nginx lets only loopback addresses (or its allow list) reach `/_status`.
public enum StatusRoutes {
    public static func register(on router: Router) {
        router.add("/_ping", auth: false) { _ in
            Response(contentType: "text/plain; charset=utf-8", body: Array("pong\n".utf8))
        }
        router.add("/_status", auth: false) { c in
            let workers = Scoreboard.shared.workers().sorted { ($0[.pid] ?? 0) < ($1[.pid] ?? 0) }
            if c.params["format"] == "prometheus" { return prometheus(workers) }
            return json(workers)
        }
    }

    /// Fields that only grow (Prometheus counters); the others are gauges.
    static let counters: Set<Scoreboard.Field> = [
        .requestsServed, .parkedDisplaced, .parkedTurnedAway, .acceptedConnections, .failedAccepts, .cacheHits, .cacheMisses,
    ]

    static func hitRate(hits: Int64, misses: Int64) -> JSON {
        hits + misses == 0 ? .null : .raw(String(format: "%.4f", Double(hits) / Double(hits + misses)))
    }

    static func json(_ workers: [[Scoreboard.Field: Int64]]) -> Response {
        var totals: [(String, JSON)] = [("workers", .int(Int64(workers.count)))]
        for field in Scoreboard.Field.allCases where ![.pid, .startedAtMillis, .updatedAtMillis].contains(field) {
            totals.append((field.name, .int(workers.reduce(0) { $0 + ($1[field] ?? 0) })))
        }
        let hits = workers.reduce(0) { $0 + ($1[.cacheHits] ?? 0) }, misses = workers.reduce(0) { $0 + ($1[.cacheMisses] ?? 0) }
        totals.append(("cache_hit_rate", hitRate(hits: hits, misses: misses)))
        let list: [JSON] = workers.map { worker in
            var fields = Scoreboard.Field.allCases.map { ($0.name, JSON.int(worker[$0] ?? 0)) }
            fields.append(("cache_hit_rate", hitRate(hits: worker[.cacheHits] ?? 0, misses: worker[.cacheMisses] ?? 0)))
            return .object(fields)
        }
        return .ok(.object([("total", .object(totals)), ("processes", .array(list))]))
    }

    static func prometheus(_ workers: [[Scoreboard.Field: Int64]]) -> Response {
        var text = "# HELP chat_fcgi_workers Worker processes on this host.\n# TYPE chat_fcgi_workers gauge\n"
        text += "chat_fcgi_workers \(workers.count)\n"
        for field in Scoreboard.Field.allCases where field != .pid {
            let isCounter = counters.contains(field)
            let name = "chat_fcgi_" + field.name + (isCounter ? "_total" : "")
            text += "# TYPE \(name) \(isCounter ? "counter" : "gauge")\n"
            for worker in workers {
                text += "\(name){pid=\"\(worker[.pid] ?? 0)\"} \(worker[field] ?? 0)\n"
            }
        }
        return Response(contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array(text.utf8))
    }
}
