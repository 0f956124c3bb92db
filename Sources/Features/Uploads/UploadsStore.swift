import ChatPostgres

/// Every statement of the uploads feature: the per-user daily usage behind `UploadQuota`.
struct UploadsStore {
    let db: PGConnection

    /// Housekeeping of the usage rows the quota no longer needs.
    static let cleanupJobs = [
        PeriodicJobs.Job(name: "upload_usage", sql: "DELETE FROM upload_usage WHERE day < current_date - 2"),
    ]

    /// Adds `bytes` to the user's usage of the current UTC day, in one statement that refuses
    /// what would pass `bytesPerDay`; false when it was refused.
    func reserve(userId: Int64, bytes: Int64, bytesPerDay: Int64) throws -> Bool {
        let rows = try db.query("""
            INSERT INTO upload_usage AS u (user_id, day, bytes) VALUES (\(userId), (now() AT TIME ZONE 'UTC')::date, \(bytes))
            ON CONFLICT (user_id, day) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes
            WHERE u.bytes + EXCLUDED.bytes <= \(bytesPerDay)
            RETURNING u.bytes
            """)
        return !rows.isEmpty
    }

    /// Gives back what a failed upload reserved today.
    func giveBack(userId: Int64, bytes: Int64) throws {
        try db.query("""
            UPDATE upload_usage SET bytes = greatest(bytes - \(bytes), 0) WHERE user_id = \(userId) AND day = (now() AT TIME ZONE 'UTC')::date
            """)
    }
}
