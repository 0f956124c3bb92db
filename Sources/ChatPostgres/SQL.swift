/// A statement and its parameters. Written as a string literal, every interpolated value is bound
/// as a parameter (`$n`), never spliced into the text:
///
///     let rows = try db.query("SELECT nick_name FROM users WHERE id = \(userId)")
///
/// Another `SQL` interpolated into one is embedded with its own parameters renumbered, so that
/// statements are composed from typed pieces (`Profile.columns`, a session check); so is a
/// string literal, or a closure that builds one: text written in code is SQL, values are bound. Text that is
/// not a value and not a `SQL` can only get in through the visibly different
/// `\(unsafeRaw: text)`, for the rare fragment chosen from a fixed set in code.
///
/// The same call site always produces the same text, so the connection's cache of prepared
/// statements (keyed by the text) stays as small as the number of call sites.
public struct SQL: ExpressibleByStringInterpolation, CustomStringConvertible, Sendable {
    public private(set) var text: String
    public private(set) var binds: [PGBindable?]

    public init(stringLiteral value: String) {
        text = value
        binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        text = stringInterpolation.text
        binds = stringInterpolation.binds
    }

    /// The statement's text only: parameters are never shown (they may be secrets).
    public var description: String { text }

    public struct StringInterpolation: StringInterpolationProtocol {
        var text: String
        var binds: [PGBindable?]
        /// The placeholder of each `SQLParameter` already bound in this statement.
        var shared: [ObjectIdentifier: Int] = [:]

        public init(literalCapacity: Int, interpolationCount: Int) {
            text = ""
            text.reserveCapacity(literalCapacity + interpolationCount * 4)
            binds = []
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) { text += literal }

        /// Binds `value` as the next parameter. Disfavoured, so that an expression that could be
        /// either (a string literal, a closure building one) is taken as SQL text, never bound.
        @_disfavoredOverload
        public mutating func appendInterpolation(_ value: some PGBindable) {
            binds.append(value)
            text += "$" + String(binds.count)
        }

        /// Binds `value`, or NULL.
        @_disfavoredOverload
        public mutating func appendInterpolation(_ value: (some PGBindable)?) {
            binds.append(value.map { $0 as PGBindable })
            text += "$" + String(binds.count)
        }

        /// Binds a shared parameter the first time, and names the same `$n` every other time.
        public mutating func appendInterpolation(_ parameter: SQLParameter) {
            let key = ObjectIdentifier(parameter)
            if let number = shared[key] {
                text += "$" + String(number)
                return
            }
            binds.append(parameter.value)
            shared[key] = binds.count
            text += "$" + String(binds.count)
        }

        /// Embeds another statement or fragment, its parameters renumbered after this one's.
        public mutating func appendInterpolation(_ fragment: SQL) {
            text += SQL.renumbered(fragment.text, offset: binds.count)
            binds += fragment.binds
        }

        /// Splices text into the statement as it is. Only for fragments picked from a fixed set
        /// in code (never text that came from a request).
        public mutating func appendInterpolation(unsafeRaw text: String) { self.text += text }
    }

    /// Fragments joined with `separator` (a fragment itself).
    public static func joined(_ fragments: [SQL], separator: SQL) -> SQL {
        var result: SQL = ""
        for (index, fragment) in fragments.enumerated() {
            if index > 0 { result.append(separator) }
            result.append(fragment)
        }
        return result
    }

    /// Appends a fragment, its parameters renumbered.
    public mutating func append(_ fragment: SQL) {
        text += SQL.renumbered(fragment.text, offset: binds.count)
        binds += fragment.binds
    }

    /// `text` with every placeholder `$n` moved up by `offset`. Placeholders come only from
    /// interpolation: the project writes no `$n` by hand, and no dollar-quoted strings.
    static func renumbered(_ text: String, offset: Int) -> String {
        guard offset > 0, text.utf8.contains(UInt8(ascii: "$")) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 8)
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            out.append(byte)
            index += 1
            guard byte == UInt8(ascii: "$") else { continue }
            var number = 0, digits = 0
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                number = number * 10 + Int(bytes[index] - 0x30)
                digits += 1
                index += 1
            }
            if digits > 0 { out += Array(String(number + offset).utf8) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A value bound once and named in several places of one statement, all as the same `$n`, so
/// that PostgreSQL infers one type for all of them (a cast at its first use holds for the rest):
///
///     let user = SQLParameter(userId)
///     "SELECT … WHERE a = \(user)::bigint OR b = \(user)"
public final class SQLParameter {
    let value: PGBindable?
    public init(_ value: PGBindable?) { self.value = value }
}
