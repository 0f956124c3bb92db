import Foundation
import ChatConfig

/// Housekeeping that runs in the background of every worker process, but in only one of them at a
/// time across the whole deployment (a PostgreSQL advisory lock decides), so adding app hosts
/// never multiplies the work.
///
/// Features hand in named SQL statements; this layer knows nothing of what they clean.
public final class PeriodicJobs: @unchecked Sendable {
    public struct Job: Sendable {
        public var name: String
        public var sql: SQL
        public init(name: String, sql: SQL) {
            self.name = name
            self.sql = sql
        }
    }

    static let lockKey: Int64 = 0x63686174_6a6f6273 // "chatjobs"
    let conninfo: String
    let jobs: [Job]
    let intervalSeconds: Double

    public init(conninfo: String, jobs: [Job], intervalSeconds: Double = 300) {
        self.conninfo = conninfo
        self.jobs = jobs
        self.intervalSeconds = intervalSeconds
    }

    public func start() {
        guard !jobs.isEmpty else { return }
        let thread = Thread { [self] in
            let db = PGConnection(conninfo: conninfo)
            // Spread the first run so that workers started together do not all try at once.
            usleep(UInt32.random(in: 1_000_000...10_000_000))
            while true {
                runOnce(db)
                usleep(UInt32(intervalSeconds * 1_000_000))
            }
        }
        thread.name = "jobs"
        thread.start()
    }

    /// Runs every job if this process wins the lock; returns whether it did.
    @discardableResult
    public func runOnce(_ db: PGConnection) -> Bool {
        do {
            try db.ensureAlive()
            guard try db.query("SELECT pg_try_advisory_lock(\(PeriodicJobs.lockKey)) AS locked").first?.decode("locked", as: Bool.self) == true else {
                return false
            }
            defer { _ = try? db.query("SELECT pg_advisory_unlock(\(PeriodicJobs.lockKey))") }
            for job in jobs {
                let started = monotonicNanos()
                let result = try db.query(job.sql)
                Log.info("job.done", ["job": job.name, "rows": result.affectedRows,
                                      "ms": (monotonicNanos() - started) / 1_000_000])
            }
            return true
        } catch {
            Log.warn("job.failed", ["error": String(describing: error)])
            return false
        }
    }
}
