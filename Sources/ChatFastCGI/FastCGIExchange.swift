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

    /// True when the body ended in an error (a read timed out, the peer went away, a broken
    /// record) instead of at its end: what was read is incomplete and the connection is unusable.
    public private(set) var bodyFailed = false
    /// Body bytes read so far.
    public private(set) var bodyBytesRead = 0

    /// Reads up to `buffer.count` body bytes; returns 0 at the end of the body, and also when it
    /// failed (then `bodyFailed` is set).
    public func readBody(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        if bodyExhausted || buffer.count == 0 { return 0 }
        let n = FCGX_GetStr(buffer.baseAddress!.assumingMemoryBound(to: CChar.self),
                            Int32(min(buffer.count, 1 << 30)), raw.pointee.in)
        if n <= 0 {
            bodyExhausted = true
            if FCGX_GetError(raw.pointee.in) != 0 || FCGX_HasSeenEOF(raw.pointee.in) != EOF {
                bodyFailed = true
                closeConnection = true
            }
            return 0
        }
        bodyBytesRead += Int(n)
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
        return !bodyFailed
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

    /// Responses up to this size go through libfcgi's stream as they are.
    static let directWriteThreshold = 32 * 1024
    /// What a large response leaves to libfcgi's stream, so that its usual closing (the last bytes,
    /// the empty STDOUT record and END_REQUEST in one write) stays as it is.
    static let streamTail = 4096
    /// Largest record content: FastCGI's limit (65535) rounded down to 8, so records need no padding.
    static let maxRecordContent = 65528

    /// Writes a whole response: `head` (CGI headers and the blank line), then `body`.
    ///
    /// libfcgi's output stream has an 8 KiB buffer: a 180 KiB answer (a user's friends in `ready`)
    /// would leave in 23 writes. A large response is instead cut into STDOUT records here and sent
    /// with one `writev`, straight from the caller's buffers; only its last `streamTail` bytes go
    /// through the stream. Returns false if the peer is gone.
    @discardableResult
    public func writeResponse(head: [UInt8], body: [UInt8]) -> Bool {
        let total = head.count + body.count
        guard total > FastCGIExchange.directWriteThreshold else { return write(head) && write(body) }
        // Anything already in the stream must leave first, to keep the order.
        guard FCGX_FFlush(raw.pointee.out) == 0 else { return false }
        let direct = body.count - FastCGIExchange.streamTail
        let sent = head.withUnsafeBytes { headBytes in
            body.withUnsafeBytes { bodyBytes in
                writeRecords([headBytes, UnsafeRawBufferPointer(rebasing: bodyBytes[0..<direct])])
            }
        }
        guard sent else { return false }
        return body.withUnsafeBytes { write(UnsafeRawBufferPointer(rebasing: $0[direct...])) }
    }

    /// Sends `segments` as consecutive STDOUT records of this request, in one `writev` when the
    /// socket takes it all.
    private func writeRecords(_ segments: [UnsafeRawBufferPointer]) -> Bool {
        let contentLength = segments.reduce(0) { $0 + $1.count }
        let recordCount = (contentLength + FastCGIExchange.maxRecordContent - 1) / FastCGIExchange.maxRecordContent
        var headers = [UInt8](repeating: 0, count: recordCount * 8)
        var pieces: [(base: UnsafeRawPointer, count: Int)] = []
        pieces.reserveCapacity(recordCount * 3 + segments.count)
        let requestId = UInt16(truncatingIfNeeded: raw.pointee.requestId)
        return headers.withUnsafeMutableBytes { headerBytes -> Bool in
            var segment = 0, offset = 0
            for record in 0..<recordCount {
                let length = min(FastCGIExchange.maxRecordContent, contentLength - record * FastCGIExchange.maxRecordContent)
                let header = headerBytes.baseAddress! + record * 8
                // version 1, type 6 (FCGI_STDOUT), request id, content length, no padding.
                header.storeBytes(of: 1, toByteOffset: 0, as: UInt8.self)
                header.storeBytes(of: 6, toByteOffset: 1, as: UInt8.self)
                header.storeBytes(of: UInt8(requestId >> 8), toByteOffset: 2, as: UInt8.self)
                header.storeBytes(of: UInt8(requestId & 0xFF), toByteOffset: 3, as: UInt8.self)
                header.storeBytes(of: UInt8(length >> 8), toByteOffset: 4, as: UInt8.self)
                header.storeBytes(of: UInt8(length & 0xFF), toByteOffset: 5, as: UInt8.self)
                pieces.append((UnsafeRawPointer(header), 8))
                var left = length
                while left > 0 {
                    let available = segments[segment].count - offset
                    if available == 0 { segment += 1; offset = 0; continue }
                    let take = min(left, available)
                    pieces.append((segments[segment].baseAddress! + offset, take))
                    offset += take
                    left -= take
                }
            }
            return FastCGIExchange.writeAll(fd: raw.pointee.ipcFd, pieces)
        }
    }

    /// `writev` until every piece is written (short writes and EINTR resumed).
    static func writeAll(fd: Int32, _ pieces: [(base: UnsafeRawPointer, count: Int)]) -> Bool {
        var vectors = pieces.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.base), iov_len: $0.count) }
        var first = 0
        while first < vectors.count {
            let batch = min(vectors.count - first, 1024) // IOV_MAX on Linux
            let n = vectors.withUnsafeMutableBufferPointer { writev(fd, $0.baseAddress! + first, Int32(batch)) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            var written = n
            while written > 0 && first < vectors.count {
                if written >= vectors[first].iov_len {
                    written -= vectors[first].iov_len
                    first += 1
                } else {
                    vectors[first].iov_base += written
                    vectors[first].iov_len -= written
                    written = 0
                }
            }
            while first < vectors.count && vectors[first].iov_len == 0 { first += 1 }
        }
        return true
    }
}
