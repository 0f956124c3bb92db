/// Reading rows by column name, with the type each column must have.
///
///     let row = try db.query("SELECT id, nick_name, head_url FROM users WHERE id = \(id)").first
///     let id: Int64 = try row.decode("id")            // NULL or a missing column: an error
///     let head: String? = try row.decode("head_url")  // NULL: nil
///
/// A NULL where the type has no room for it is a `PGError` (the request fails with 500 and a log
/// line), never a silent 0, "" or false. Loops over many rows look each column up once with
/// `PGResult.column(_:)` and read cells with `row[column]`.
public protocol PGDecodable {
    /// The value of a cell that is not NULL, from its text.
    static func decode(_ cell: PGCell) throws -> Self
    /// The value of a NULL cell: an error unless the type is optional.
    static func decodeNull(column: String) throws -> Self
}

extension PGDecodable {
    public static func decodeNull(column: String) throws -> Self {
        throw PGError(sqlState: nil, message: "column \(column) is NULL where a value is required", connectionLost: false)
    }
}

/// One cell that is not NULL, valid while its result lives.
public struct PGCell {
    let result: PGResult
    let row: Int
    let column: Int
    let name: String

    public var text: String { result.string(row, column) ?? "" }

    public func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try withExtendedLifetime(result) { try body(result.bytes(row, column)) }
    }

    func malformed(_ type: String) -> PGError {
        PGError(sqlState: nil, message: "column \(name) does not hold \(type)", connectionLost: false)
    }
}

extension String: PGDecodable {
    public static func decode(_ cell: PGCell) throws -> String { cell.text }
}
extension Int64: PGDecodable {
    public static func decode(_ cell: PGCell) throws -> Int64 {
        guard let value = cell.result.int64(cell.row, cell.column) else { throw cell.malformed("an integer") }
        return value
    }
}
extension Int: PGDecodable {
    public static func decode(_ cell: PGCell) throws -> Int { Int(try Int64.decode(cell)) }
}
extension Int32: PGDecodable {
    public static func decode(_ cell: PGCell) throws -> Int32 {
        guard let value = Int32(exactly: try Int64.decode(cell)) else { throw cell.malformed("a 32-bit integer") }
        return value
    }
}
extension Bool: PGDecodable {
    public static func decode(_ cell: PGCell) throws -> Bool {
        guard let value = cell.result.bool(cell.row, cell.column) else { throw cell.malformed("a boolean") }
        return value
    }
}
extension Double: PGDecodable {
    public static func decode(_ cell: PGCell) throws -> Double {
        guard let value = Double(cell.text) else { throw cell.malformed("a number") }
        return value
    }
}
/// A bigint[] (`{1,2,3}`); NULL elements are left out.
extension Array: PGDecodable where Element == Int64 {
    public static func decode(_ cell: PGCell) throws -> [Int64] {
        PGRow(result: cell.result, row: cell.row).int64Array(cell.column)
    }
}
extension Optional: PGDecodable where Wrapped: PGDecodable {
    public static func decode(_ cell: PGCell) throws -> Wrapped? { try Wrapped.decode(cell) }
    public static func decodeNull(column: String) throws -> Wrapped? { nil }
}

/// A column of a result, looked up by name once and read with its type from every row.
public struct PGColumn<Value: PGDecodable> {
    public let index: Int
    public let name: String
}

extension PGResult {
    /// The column named `name`; a missing column is an error (a statement and its reader disagree).
    public func column<Value: PGDecodable>(_ name: String, as type: Value.Type = Value.self) throws -> PGColumn<Value> {
        guard let index = columnIndex(name) else {
            throw PGError(sqlState: nil, message: "no column \(name) in the result", connectionLost: false)
        }
        return PGColumn(index: index, name: name)
    }
}

extension PGRow {
    /// The cell of `column`, decoded.
    public subscript<Value: PGDecodable>(_ column: PGColumn<Value>) -> Value {
        get throws {
            if result.isNull(row, column.index) { return try Value.decodeNull(column: column.name) }
            return try Value.decode(PGCell(result: result, row: row, column: column.index, name: column.name))
        }
    }

    /// The cell of the column named `name`, decoded (one lookup by name per call).
    public func decode<Value: PGDecodable>(_ name: String, as type: Value.Type = Value.self) throws -> Value {
        try self[try result.column(name, as: type)]
    }

    /// The text bytes of `column` without making a String (empty for NULL); only valid while
    /// `body` runs. For writers that copy cells straight into a response.
    public func withBytes<Value, R>(_ column: PGColumn<Value>, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try withBytes(column.index, body)
    }

    /// True when the cell of `column` is NULL.
    public func isNull<Value>(_ column: PGColumn<Value>) -> Bool { result.isNull(row, column.index) }
}

extension PGRow {
    /// The text bytes of `column`, which must not be NULL; only valid while `body` runs.
    public func withRequiredBytes<Value, R>(_ column: PGColumn<Value>, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) throws -> R {
        if result.isNull(row, column.index) { _ = try Value.decodeNull(column: column.name) }
        return try withBytes(column.index, body)
    }
}
