import CLibPQ
import Foundation
import Synchronization
import ChatConfig
import ChatSecurity

/// A PostgreSQL error. `message` goes to the log only; clients see a generic envelope.
public struct PGError: Error, CustomStringConvertible {
    public var sqlState: String?
    public var message: String
    /// True when the connection itself failed (as opposed to the statement).
    public var connectionLost: Bool

    public var description: String { "PostgreSQL error \(sqlState ?? "-"): \(message)" }
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// Serialization failure or deadlock: the transaction can simply be run again.
    public var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }
}

/// A value that can be bound as a statement parameter (always sent as text, never spliced into SQL).
public protocol PGBindable: Sendable {
    var pgText: String { get }
}
extension String: PGBindable { public var pgText: String { self } }
extension Substring: PGBindable { public var pgText: String { String(self) } }
extension Int: PGBindable { public var pgText: String { String(self) } }
extension Int64: PGBindable { public var pgText: String { String(self) } }
extension Int32: PGBindable { public var pgText: String { String(self) } }
extension Bool: PGBindable { public var pgText: String { self ? "t" : "f" } }
/// Binary data bound as a `bytea` in hex form.
public struct PGBytes: PGBindable {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var pgText: String { "\\x" + Crypto.hex(bytes) }
}

/// One libpq connection, owned by exactly one thread at a time. It frees its `PGconn` on deinit.
///
/// Every statement goes through `PQprepare`/`PQexecPrepared` with a per-connection cache keyed by
/// the SQL text: a call site always builds the same text (`SQL` binds its values), so the cache
/// stays small and each statement is parsed and planned once per connection.
public final class PGConnection {
    public let conninfo: String
    private var conn: OpaquePointer?
    private var prepared: [String: String] = [:]
    private var transactionDepth = 0
    private var lastUsed: UInt64 = 0
    /// Work to run at the end of the current transaction, just before COMMIT, and per-transaction
    /// state for it (e.g. a batch of rows collected along the way and written in one statement).
    private var beforeCommit: [() throws -> Void] = []
    private var afterCommit: [() -> Void] = []
    public private(set) var transactionState: [String: AnyObject] = [:]

    public var inTransaction: Bool { transactionDepth > 0 }

    /// True once a statement since `beginRequest()` completed outside a transaction, or a
    /// transaction committed: its effect may have been kept, so the request must not be run again
    /// after a lost connection. Until then a lost connection lost nothing of the request.
    public private(set) var workDone = false

    /// Marks the start of a request (see `workDone`).
    public func beginRequest() { workDone = false }

    /// Connects again after a lost connection, waiting for the server until `deadline`
    /// (monotonic nanoseconds): a restart takes a fraction of a second. Throws the last error.
    public func reconnect(until deadline: UInt64) throws {
        while true {
            do {
                try connect()
                return
            } catch let error as PGError where error.connectionLost {
                if monotonicNanos() + 100_000_000 >= deadline { throw error }
                usleep(100_000)
            }
        }
    }

    /// Registers `action` to run before this transaction commits (inside it). Outside a
    /// transaction it runs at once.
    public func onCommit(_ action: @escaping () throws -> Void) throws {
        if transactionDepth == 0 { try action() } else { beforeCommit.append(action) }
    }

    public func setTransactionState(_ key: String, _ value: AnyObject) { transactionState[key] = value }

    /// Registers `action` to run after this transaction has committed (at once outside one).
    /// For side effects that must not happen unless the data is there, and that should not
    /// lengthen the transaction, such as NOTIFY (see EventLog).
    public func afterCommit(_ action: @escaping () -> Void) {
        if transactionDepth == 0 { action() } else { afterCommit.append(action) }
    }

    public init(conninfo: String) {
        self.conninfo = PGConnection.withLinkDefaults(conninfo)
    }

    /// A remote database link that dies silently would otherwise go unnoticed for many minutes
    /// (TCP retransmission): keepalives and a user timeout bound that, unless the operator set
    /// them. libpq ignores them on unix sockets. Only for key=value conninfo strings.
    static func withLinkDefaults(_ conninfo: String) -> String {
        if conninfo.hasPrefix("postgres://") || conninfo.hasPrefix("postgresql://") { return conninfo }
        var result = conninfo
        for (key, value) in [("keepalives_idle", "30"), ("keepalives_interval", "10"), ("keepalives_count", "3"),
                             ("tcp_user_timeout", "30000")] where !conninfo.contains(key + "=") {
            result += " \(key)=\(value)"
        }
        return result
    }

    /// Open connections of this process, for the status page.
    static let openCount = Atomic<Int64>(0)
    public static var openConnections: Int64 { openCount.load(ordering: .relaxed) }

    deinit {
        if let conn {
            PQfinish(conn)
            PGConnection.openCount.subtract(1, ordering: .relaxed)
        }
    }

    public var isConnected: Bool {
        guard let conn else { return false }
        return PQstatus(conn) == CONNECTION_OK
    }

    public func connect() throws {
        if let old = conn {
            PQfinish(old)
            conn = nil
            PGConnection.openCount.subtract(1, ordering: .relaxed)
        }
        prepared.removeAll()
        transactionDepth = 0
        let c = PQconnectdb(conninfo)
        guard let c, PQstatus(c) == CONNECTION_OK else {
            let message = c.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            if let c { PQfinish(c) }
            throw PGError(sqlState: nil, message: message.trimmingCharacters(in: .whitespacesAndNewlines),
                          connectionLost: true)
        }
        // Server notices (e.g. "relation already exists, skipping") go to the debug log, not to
        // libpq's default of raw stderr lines.
        PQsetNoticeProcessor(c, { _, message in
            guard let message else { return }
            Log.debug("db.notice", ["message": String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)])
        }, nil)
        conn = c
        PGConnection.openCount.add(1, ordering: .relaxed)
        // Prepared statements are planned once: with the default (auto), PostgreSQL re-plans a
        // statement for every execution while it judges a custom plan better, and a statement
        // over the 16 message partitions then spends far longer planning than running. The
        // statements here are simple and parameter-independent enough for generic plans with
        // run-time partition pruning.
        try execute("SET plan_cache_mode = force_generic_plan")
    }

    /// Makes sure the connection is usable before a request starts using it.
    ///
    /// After a PostgreSQL restart an idle connection is dead, but libpq only finds out on the next
    /// use. `PQconsumeInput` reads whatever the server sent (the termination notice, or EOF) without
    /// blocking, so a dead connection is replaced *before* any statement runs on it, and no
    /// statement ever has to be retried blindly.
    ///
    /// One `PQconsumeInput` is not enough: after a restart the socket holds the server's
    /// termination notice *and then* end-of-file, and the first read only takes the notice. So
    /// this reads for as long as the socket has something to read (never waiting), which is at
    /// most a couple of rounds.
    ///
    /// A connection used in the last 100 ms is not checked: PostgreSQL cannot have restarted in
    /// between (a stop and start takes far longer), and under load this saves a system call on
    /// every request. If it died in those 100 ms, the statement fails with a lost connection, and
    /// the responder runs the request again on a new one when nothing of it can have been kept
    /// (`workDone`).
    public func ensureAlive() throws {
        guard let conn else { try connect(); return }
        let now = monotonicNanos()
        defer { lastUsed = now }
        if now - lastUsed < 100_000_000 && PQstatus(conn) == CONNECTION_OK { return }
        var rounds = 0
        while PQstatus(conn) == CONNECTION_OK && rounds < 8 {
            var entry = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 0) > 0 else { break }
            rounds += 1
            if PQconsumeInput(conn) == 0 { break }
        }
        if PQstatus(conn) != CONNECTION_OK {
            Log.warn("db.reconnect", ["reason": "connection lost"])
            try connect()
        }
    }

    /// The name of the prepared statement for `sql`, preparing it on first use.
    private func statementName(_ sql: String, parameterCount: Int) throws -> String {
        if let existing = prepared[sql] { return existing }
        let name = "s\(prepared.count)"
        let result = PQprepare(conn, name, sql, Int32(parameterCount), nil)
        try check(result, sql: sql).clear()
        prepared[sql] = name
        return name
    }

    /// Runs one statement; its interpolated values are bound parameters (see `SQL`).
    @discardableResult
    public func query(_ statement: SQL) throws -> PGResult {
        try run(statement.text, statement.binds)
    }

    private func run(_ sql: String, _ params: [PGBindable?]) throws -> PGResult {
        if conn == nil { try connect() }
        let name = try statementName(sql, parameterCount: params.count)
        let texts = params.map { $0?.pgText }
        let result: OpaquePointer? = withCStrings(texts) { pointers in
            PQexecPrepared(conn, name, Int32(texts.count), pointers, nil, nil, 0)
        }
        let checked = try check(result, sql: sql)
        if transactionDepth == 0 { workDone = true }
        return checked
    }

    /// A statement that rides along in another statement's round trip, and what to do with its
    /// result (e.g. filling a cache for the next request).
    public struct Rider {
        public let statement: SQL
        public let keep: (PGResult) -> Void

        public init(_ statement: SQL, keep: @escaping (PGResult) -> Void) {
            self.statement = statement
            self.keep = keep
        }
    }

    /// Runs `statement` with `riders` in the same round trip, hands each rider its result and
    /// returns the statement's.
    public func query(_ statement: SQL, riders: [Rider]) throws -> PGResult {
        let results = try pipeline([statement] + riders.map(\.statement))
        for (rider, result) in zip(riders, results.dropFirst()) { rider.keep(result) }
        return results[0]
    }

    /// Runs independent statements in one round trip (libpq pipeline mode) and returns their
    /// results in order. For reads that do not depend on each other, such as the parts of `ready`:
    /// the server runs them back to back while the client waits once instead of once per statement.
    public func pipeline(_ statements: [SQL]) throws -> [PGResult] {
        try runPipeline(statements.map { ($0.text, $0.binds) })
    }

    private func runPipeline(_ statements: [(sql: String, params: [PGBindable?])]) throws -> [PGResult] {
        if statements.count == 1 { return [try run(statements[0].sql, statements[0].params)] }
        if conn == nil { try connect() }
        let names = try statements.map { try statementName($0.sql, parameterCount: $0.params.count) }
        guard PQenterPipelineMode(conn) == 1 else {
            throw PGError(sqlState: nil, message: "cannot enter pipeline mode", connectionLost: !isConnected)
        }
        var sendFailed = false
        for (statement, name) in zip(statements, names) where !sendFailed {
            let texts = statement.params.map { $0?.pgText }
            let sent = withCStrings(texts) { pointers in
                PQsendQueryPrepared(conn, name, Int32(texts.count), pointers, nil, nil, 0)
            }
            if sent != 1 { sendFailed = true }
        }
        if !sendFailed && PQpipelineSync(conn) != 1 { sendFailed = true }
        if sendFailed {
            let message = String(cString: PQerrorMessage(conn))
            // A broken pipeline leaves the connection in an unknown state: start afresh next time.
            try? connect()
            throw PGError(sqlState: nil, message: message, connectionLost: true)
        }
        var results: [PGResult] = []
        var firstError: Error? = nil
        for statement in statements {
            // Each statement yields its result, then a NULL marking its end.
            let raw = PQgetResult(conn)
            while let extra = PQgetResult(conn) { PQclear(extra) }
            do {
                results.append(try check(raw, sql: statement.sql))
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        // Then the sync point, after which the connection can leave pipeline mode.
        while let tail = PQgetResult(conn) {
            let done = PQresultStatus(tail) == PGRES_PIPELINE_SYNC
            PQclear(tail)
            if done { break }
        }
        PQexitPipelineMode(conn)
        if let firstError { throw firstError }
        if transactionDepth == 0 { workDone = true }
        return results
    }

    /// Runs SQL text with no parameters (transaction control, migrations). Several statements allowed.
    public func execute(_ sql: String) throws {
        if conn == nil { try connect() }
        try check(PQexec(conn, sql), sql: sql).clear()
    }

    /// Runs `body` in a transaction, retrying it on serialization failures and deadlocks.
    public func transaction<T>(isolation: String = "READ COMMITTED", attempts: Int = 5,
                               _ body: () throws -> T) throws -> T {
        precondition(transactionDepth == 0, "nested transactions are not supported")
        var attempt = 0
        while true {
            attempt += 1
            try execute("BEGIN ISOLATION LEVEL " + isolation)
            transactionDepth = 1
            beforeCommit.removeAll()
            afterCommit.removeAll()
            transactionState.removeAll()
            do {
                let value = try body()
                // Actions may register more actions; run until none are left.
                while !beforeCommit.isEmpty {
                    let action = beforeCommit.removeFirst()
                    try action()
                }
                // A COMMIT whose answer is lost may have committed: count it as done before.
                workDone = true
                try execute("COMMIT")
                transactionDepth = 0
                transactionState.removeAll()
                let committed = afterCommit
                afterCommit.removeAll()
                for action in committed { action() }
                return value
            } catch {
                transactionDepth = 0
                beforeCommit.removeAll()
                afterCommit.removeAll()
                transactionState.removeAll()
                if isConnected { try? execute("ROLLBACK") }
                if let pg = error as? PGError, pg.isRetryable, attempt < attempts {
                    // Back off a little, with jitter, so that the competing transactions interleave.
                    usleep(UInt32.random(in: 1_000...(5_000 * UInt32(attempt))))
                    continue
                }
                throw error
            }
        }
    }

    private func check(_ result: OpaquePointer?, sql: String) throws -> PGResult {
        guard let result else {
            throw PGError(sqlState: nil, message: String(cString: PQerrorMessage(conn)), connectionLost: !isConnected)
        }
        let status = PQresultStatus(result)
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY {
            return PGResult(result)
        }
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        let message = String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
        PQclear(result)
        let lost = !isConnected
        if lost { prepared.removeAll() }
        throw PGError(sqlState: state, message: message, connectionLost: lost)
    }

    // MARK: LISTEN/NOTIFY support

    public var socket: Int32 { conn.map { PQsocket($0) } ?? -1 }

    /// Reads pending input and returns the notifications that arrived (channel, payload).
    public func drainNotifications() throws -> [(channel: String, payload: String)] {
        guard let conn else { return [] }
        if PQconsumeInput(conn) == 0 {
            throw PGError(sqlState: nil, message: String(cString: PQerrorMessage(conn)), connectionLost: true)
        }
        var out: [(String, String)] = []
        while let n = PQnotifies(conn) {
            out.append((String(cString: n.pointee.relname), String(cString: n.pointee.extra)))
            PQfreemem(n)
        }
        return out
    }
}

/// Calls `body` with a C array of C strings (nil stays a NULL pointer = SQL NULL).
private func withCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    var cStrings: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
    defer { for p in cStrings { free(p) } }
    return cStrings.withUnsafeMutableBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(buffer.count, 1)) {
            body(buffer.count == 0 ? nil : $0)
        }
    }
}

/// The rows of one statement; frees its `PGresult` on deinit.
public final class PGResult {
    private var result: OpaquePointer?
    public let rowCount: Int
    public let columnCount: Int

    init(_ result: OpaquePointer) {
        self.result = result
        rowCount = Int(PQntuples(result))
        columnCount = Int(PQnfields(result))
    }

    deinit { if let result { PQclear(result) } }

    func clear() { if let result { PQclear(result) }; result = nil }

    /// Number of rows a command touched (UPDATE/DELETE/INSERT).
    public var affectedRows: Int {
        guard let result, let s = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: s)) ?? 0
    }

    public var isEmpty: Bool { rowCount == 0 }

    public subscript(row: Int) -> PGRow { PGRow(result: self, row: row) }
    public var first: PGRow? { rowCount > 0 ? self[0] : nil }
    public var rows: [PGRow] { (0..<rowCount).map { self[$0] } }

    func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(result, Int32(row), Int32(column)) == 1 }

    /// The index of the column named `name` (exactly as the result names it), or nil. Compared
    /// here rather than with PQfnumber, which copies and case-folds the name on every call: rows
    /// on hot paths look several columns up per request.
    func columnIndex(_ name: String) -> Int? {
        var name = name
        return name.withUTF8 { wanted -> Int? in
            guard let start = wanted.baseAddress else { return nil }
            for column in 0..<columnCount {
                guard let field = PQfname(result, Int32(column)) else { continue }
                if strlen(field) == wanted.count, memcmp(field, start, wanted.count) == 0 { return column }
            }
            return nil
        }
    }

    func string(_ row: Int, _ column: Int) -> String? {
        if isNull(row, column) { return nil }
        return String(cString: PQgetvalue(result, Int32(row), Int32(column)))
    }

    func int64(_ row: Int, _ column: Int) -> Int64? {
        if isNull(row, column) { return nil }
        // Parse the digits in place: avoids a String allocation per cell on hot paths.
        guard var p = PQgetvalue(result, Int32(row), Int32(column)) else { return nil }
        var negative = false
        if p.pointee == CChar(UInt8(ascii: "-")) { negative = true; p += 1 }
        var value: Int64 = 0
        while p.pointee != 0 {
            let digit = Int64(p.pointee) - 48
            guard digit >= 0 && digit <= 9 else { return nil }
            value = value &* 10 &+ digit
            p += 1
        }
        return negative ? -value : value
    }

    /// The cell's text bytes, valid while this result lives (empty for NULL).
    func bytes(_ row: Int, _ column: Int) -> UnsafeBufferPointer<UInt8> {
        let length = Int(PQgetlength(result, Int32(row), Int32(column)))
        guard length > 0, let value = PQgetvalue(result, Int32(row), Int32(column)) else {
            return UnsafeBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawPointer(value).withMemoryRebound(to: UInt8.self, capacity: length) {
            UnsafeBufferPointer(start: $0, count: length)
        }
    }

    func bool(_ row: Int, _ column: Int) -> Bool? {
        if isNull(row, column) { return nil }
        return PQgetvalue(result, Int32(row), Int32(column))?.pointee == CChar(UInt8(ascii: "t"))
    }
}

/// One row of a result. Other modules read it by column name (`PGDecoding.swift`); the index
/// accessors below are this module's own.
public struct PGRow {
    let result: PGResult
    let row: Int

    func string(_ column: Int) -> String? { result.string(row, column) }
    func int64(_ column: Int) -> Int64? { result.int64(row, column) }
    func int(_ column: Int) -> Int? { result.int64(row, column).map { Int($0) } }
    func bool(_ column: Int) -> Bool? { result.bool(row, column) }
    func isNull(_ column: Int) -> Bool { result.isNull(row, column) }
    /// The integers of a cell in order: a bigint[] (`{1,2,3}`), or any text of integers separated by
    /// other characters (`1,2;3`). NULL, and NULL elements, give nothing.
    func int64Array(_ column: Int) -> [Int64] {
        withBytes(column) { text in
            var values: [Int64] = []
            var value: Int64 = 0, negative = false, inNumber = false
            for byte in text {
                if byte >= 0x30 && byte <= 0x39 {
                    value = value &* 10 &+ Int64(byte - 0x30)
                    inNumber = true
                } else if byte == UInt8(ascii: "-") {
                    negative = true
                } else {
                    if inNumber { values.append(negative ? -value : value) }
                    value = 0; negative = false; inNumber = false
                }
            }
            if inNumber { values.append(negative ? -value : value) }
            return values
        }
    }

    /// The cell's text bytes without making a String; only valid while `body` runs.
    func withBytes<R>(_ column: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try withExtendedLifetime(result) { try body(result.bytes(row, column)) }
    }
}
