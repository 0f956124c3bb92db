import Foundation
import ChatConfig

/// Applies the numbered migrations in `sql/` (`0001_accounts.sql`, …) in order, each in its own
/// transaction, under an advisory lock so that two deploys can never migrate at once.
public enum Migrator {
    /// An arbitrary but fixed key for `pg_advisory_lock`.
    static let lockKey: Int64 = 0x63686174_6d696772 // "chatmigr"

    public struct Migration: Equatable {
        public var version: Int
        public var name: String
        public var path: String
    }

    public static func discover(in directory: String) throws -> [Migration] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        var migrations: [Migration] = []
        for file in files where file.hasSuffix(".sql") {
            let prefix = file.prefix { $0.isNumber }
            guard prefix.count == 4, let version = Int(prefix), file.dropFirst(4).first == "_" else { continue }
            migrations.append(Migration(version: version, name: file, path: directory + "/" + file))
        }
        migrations.sort { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            throw Config.ConfigError(description: "two migrations share version \(a.version): \(a.name), \(b.name)")
        }
        return migrations
    }

    /// Returns the names of the migrations it applied.
    @discardableResult
    public static func migrate(_ db: PGConnection, directory: String) throws -> [String] {
        let migrations = try discover(in: directory)
        try db.query("SELECT pg_advisory_lock(\(lockKey))")
        defer { _ = try? db.query("SELECT pg_advisory_unlock(\(lockKey))") }
        try db.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let done = Set(try db.query("SELECT version FROM schema_migrations").rows.map { try $0.decode("version", as: Int.self) })
        var applied: [String] = []
        for migration in migrations where !done.contains(migration.version) {
            let sql = try String(contentsOfFile: migration.path, encoding: .utf8)
            try db.transaction {
                try db.execute(sql)
                try db.query("INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))")
            }
            Log.info("migrate.applied", ["migration": migration.name])
            applied.append(migration.name)
        }
        return applied
    }
}
