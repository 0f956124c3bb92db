import CFastCGI
import Foundation

/// One FastCGI request/response on an accepted connection: the environment nginx sent,
/// the request body as a stream, and the response output.
///
/// The underlying `FCGX_Request` belongs to the `FastCGIConnection` it came from; an exchange is
/// only valid until the handler returns.
public final class FastCGIExchange {
    let raw: UnsafeMutablePointer<FCGX_Request>
    /// Set by the handler when the connection must not be reused (e.g. an unread upload body).
    public var closeConnection = false
    private(set) var bodyExhausted = false
    /// Set by a handler that answers later: the request is parked under `key` instead of finished.
    private(set) var parkRequest: (key: Int64, deadline: UInt64, seenGeneration: UInt64)?
    /// True when the handler is called again for a parked request (woken, timed out or drained).
    public internal(set) var isResuming = false
    /// On a resume: true when the request must be answered now (its deadline passed, or the server
    /// is draining); false when it was woken and may park again if the news was not for it.
    public internal(set) var resumeIsFinal = false
    /// Whatever the handler needs to finish a parked request; the FastCGI layer only carries it.
    public var parkedState: AnyObject?

    init(raw: UnsafeMutablePointer<FCGX_Request>) {
        self.raw = raw
    }

    /// Asks for the request to be parked instead of answered now. The handler writes nothing; it is
    /// called again with `isResuming` when `key` is woken, at `deadline` (monotonic nanoseconds),
    /// or when the server drains.
    public func park(key: Int64, deadline: UInt64, seenGeneration: UInt64) {
        parkRequest = (key, deadline, seenGeneration)
    }

    func clearParkRequest() { parkRequest = nil }

    /// A FastCGI parameter (CGI variable) such as `REQUEST_METHOD`, or nil when nginx did not send it.
    public func param(_ name: String) -> String? {
        guard let value = FCGX_GetParam(name, raw.pointee.envp) else { return nil }
        return String(cString: value)
    }

    /// Reads up to `buffer.count` body bytes; returns 0 at the end of the body.
    public func readBody(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        if bodyExhausted || buffer.count == 0 { return 0 }
        let n = FCGX_GetStr(buffer.baseAddress!.assumingMemoryBound(to: CChar.self),
                            Int32(min(buffer.count, 1 << 30)), raw.pointee.in)
        if n <= 0 { bodyExhausted = true; return 0 }
        return Int(n)
    }

    /// Reads and discards what is left of the body, up to `limit` bytes. Returns false when more
    /// remained, in which case the connection is closed rather than reused mid-body.
    public func discardBody(limit: Int) -> Bool {
        var discarded = 0
        var scratch = [UInt8](repeating: 0, count: 16384)
        while !bodyExhausted {
            let n = scratch.withUnsafeMutableBytes { readBody(into: $0) }
            discarded += n
            if discarded > limit { closeConnection = true; return false }
        }
        return true
    }

    /// Writes raw response bytes (CGI headers, blank line, body). Returns false if the peer is gone.
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        let n = FCGX_PutStr(base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), raw.pointee.out)
        return n == Int32(bytes.count)
    }

    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { write($0) }
    }
}
