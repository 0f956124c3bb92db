import CCrypto

/// Small, thread-safe wrappers over OpenSSL's libcrypto.
///
/// Everything here uses one-shot APIs (`RAND_bytes`, `EVP_Digest`, `HMAC`) that keep no
/// state between calls, so any thread may call any function at any time without locking.
/// The digest/MAC functions cannot fail for valid inputs short of memory exhaustion, and
/// the random functions must never silently return weak bytes, so a libcrypto failure is
/// treated as a fatal programming/environment error rather than a thrown error.
public enum Crypto {

    // MARK: - Randomness

    /// `count` bytes from OpenSSL's CSPRNG.
    ///
    /// A failing RNG means tokens and salts would be predictable; continuing would be worse
    /// than crashing, hence a fatal `require` (see below).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        require(count >= 0, "randomBytes: negative count")
        guard count > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { buf in
            // RAND_bytes takes an `int` length; fill in chunks so huge requests stay correct.
            var offset = 0
            while offset < count {
                let chunk = min(count - offset, Int(Int32.max))
                let rc = RAND_bytes(buf.baseAddress! + offset, Int32(chunk))
                require(rc == 1, "RAND_bytes failed: the system CSPRNG is unavailable")
                offset += chunk
            }
        }
        return out
    }

    /// A 256-bit random token as 64 lower-case hex characters (session tokens, nonces).
    public static func randomToken() -> String {
        hex(randomBytes(32))
    }

    /// `n` uniformly distributed decimal digits (e.g. 6-digit SMS codes).
    ///
    /// Bytes ≥ 250 are rejected: 256 is not a multiple of 10, so plain `byte % 10` would make
    /// 0–5 slightly more likely than 6–9.
    public static func randomDigits(_ n: Int) -> String {
        uniformString(length: n, alphabet: Array("0123456789".utf8))
    }

    /// `n` uniformly distributed characters from `[a-z0-9]` (unguessable file names).
    ///
    /// Bytes ≥ 252 (= 7 × 36) are rejected for the same modulo-bias reason as `randomDigits`.
    public static func randomAlphanumeric(_ n: Int) -> String {
        uniformString(length: n, alphabet: Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8))
    }

    /// Rejection sampling: each random byte below the largest multiple of the alphabet size
    /// maps to exactly the same number of symbols; bytes above it are discarded.
    private static func uniformString(length n: Int, alphabet: [UInt8]) -> String {
        require(n >= 0, "random string length must not be negative")
        require(!alphabet.isEmpty && alphabet.count <= 256)
        guard n > 0 else { return "" }
        let limit = 256 - (256 % alphabet.count)  // first rejected byte value
        var out = [UInt8]()
        out.reserveCapacity(n)
        while out.count < n {
            // Ask for a little more than needed so one batch almost always suffices.
            let needed = n - out.count
            for b in randomBytes(needed + needed / 4 + 4) where Int(b) < limit {
                out.append(alphabet[Int(b) % alphabet.count])
                if out.count == n { break }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Hashing

    /// SHA-256 digest (32 bytes).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var md = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        var mdLen: UInt32 = 0
        let rc = withNonNullPointer(bytes) { ptr, len in
            md.withUnsafeMutableBufferPointer { out in
                EVP_Digest(ptr, len, out.baseAddress, &mdLen, EVP_sha256(), nil)
            }
        }
        require(rc == 1 && mdLen == UInt32(SHA256_DIGEST_LENGTH), "EVP_Digest(SHA-256) failed")
        return md
    }

    /// SHA-256 of the UTF-8 bytes of `s`, as lower-case hex.
    public static func sha256Hex(_ s: String) -> String {
        hex(sha256(Array(s.utf8)))
    }

    /// HMAC-SHA256 (32 bytes).
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        require(key.count <= Int(Int32.max), "HMAC key too long")
        var md = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        var mdLen: UInt32 = 0
        let result: UnsafeMutablePointer<UInt8>? = withNonNullPointer(key) { keyPtr, keyLen in
            withNonNullPointer(message) { msgPtr, msgLen in
                md.withUnsafeMutableBufferPointer { out in
                    HMAC(EVP_sha256(), keyPtr, Int32(keyLen),
                         msgPtr.assumingMemoryBound(to: UInt8.self), msgLen,
                         out.baseAddress, &mdLen)
                }
            }
        }
        require(result != nil && mdLen == UInt32(SHA256_DIGEST_LENGTH), "HMAC(SHA-256) failed")
        return md
    }

    /// HMAC-SHA256 of the UTF-8 bytes of `message`, as lower-case hex.
    public static func hmacSHA256Hex(key: [UInt8], message: String) -> String {
        hex(hmacSHA256(key: key, message: Array(message.utf8)))
    }

    /// Calls `body` with a pointer that is never NULL, even for an empty array.
    ///
    /// An empty Swift array may hand out a nil base address; some OpenSSL versions treat a
    /// NULL key in `HMAC()` as "reuse the previous key" or reject it, so an empty input is
    /// passed as a pointer to a dummy byte with length 0 instead.
    private static func withNonNullPointer<R>(_ bytes: [UInt8],
                                              _ body: (UnsafeRawPointer, Int) -> R) -> R {
        if bytes.isEmpty {
            var dummy: UInt8 = 0
            return withUnsafePointer(to: &dummy) { body(UnsafeRawPointer($0), 0) }
        }
        return bytes.withUnsafeBytes { body($0.baseAddress!, $0.count) }
    }

    /// Like `precondition`, but also enforced if the module is ever built with `-Ounchecked`
    /// (where `precondition` is not checked at all, and a skipped RNG failure check would
    /// hand out predictable tokens). `fatalError` is enforced in every optimisation mode.
    @inline(__always)
    private static func require(_ condition: Bool, _ message: @autoclosure () -> String = "") {
        if !condition { fatalError("Crypto: " + message()) }
    }

    // MARK: - Encoding and comparison

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lower-case hex encoding.
    public static func hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hex (either case). Returns nil for an odd length or any non-hex character,
    /// so a malformed client value is rejected rather than partially decoded.
    public static func fromHex(_ s: String) -> [UInt8]? {
        let chars = Array(s.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = hexValue(chars[i]), let lo = hexValue(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Compares secrets (token hashes, MACs, codes) in time independent of where they differ,
    /// so an attacker cannot learn a matching prefix from response timing.
    ///
    /// Different lengths return false immediately: the length of these values is public
    /// (fixed-size digests/tokens), only their content is secret.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in
                CRYPTO_memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) == 0
            }
        }
    }

    /// `constantTimeEquals` over the UTF-8 bytes of two strings.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        constantTimeEquals(Array(a.utf8), Array(b.utf8))
    }
}
