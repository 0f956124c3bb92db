/// Array parameters in PostgreSQL's array literal form: still bound values, never spliced into
/// SQL text.

/// A bigint[] parameter (`{1,2,3}`).
public struct PGArray: PGBindable {
    public var values: [Int64]
    public init(_ values: [Int64]) { self.values = values }
    public var pgText: String { "{" + values.map(String.init).joined(separator: ",") + "}" }
}

/// A text[] parameter, every element quoted and escaped.
public struct PGTextArray: PGBindable {
    public var values: [String]
    public init(_ values: [String]) { self.values = values }
    public var pgText: String {
        "{" + values.map { value in
            "\"" + value.escapingScalars(["\\", "\""]) + "\""
        }.joined(separator: ",") + "}"
    }
}

extension String {
    /// The text with a backslash before every one of `special`, looked at scalar by scalar (as
    /// PostgreSQL reads it): by Character, a combining mark after `"` or `%` would hide it.
    package func escapingScalars(_ special: Set<Unicode.Scalar>) -> String {
        var out = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            if special.contains(scalar) { out.append("\\") }
            out.append(scalar)
        }
        return String(out)
    }
}
