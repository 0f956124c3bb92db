import CCrypto

/// Why `PasswordHasher.hash` refused or failed.
public enum PasswordHasherError: Error, Equatable, Sendable {
    /// The secret contains a NUL byte or is longer than libxcrypt accepts
    /// (`CRYPT_MAX_PASSPHRASE_SIZE` − 1 bytes). A NUL would silently truncate the C string,
    /// making "abc\0anything" equal to "abc", so it is rejected instead.
    case invalidSecret
    /// libxcrypt could not produce a setting or a hash (unsupported method, allocation failure).
    case hashingFailed
}

/// Password hashing with libxcrypt: yescrypt (`$y$`), falling back to bcrypt (`$2b$`, cost 10)
/// only when the installed libcrypt was built without yescrypt.
///
/// Thread safety: every call allocates its own `struct crypt_data` (32 KiB) on the heap and
/// uses the re-entrant `crypt_gensalt_rn`/`crypt_rn`, so concurrent request threads never
/// share scratch state (plain `crypt()` uses a static buffer and is not safe here).
///
/// Cost: with the default yescrypt cost (`count` 0 → libxcrypt's default, currently 5,
/// setting string `$y$j9T$`, i.e. N=4096, r=32 → 16 MiB of memory per hash), a hash or a verify
/// costs milliseconds of CPU (libxcrypt's C code, whatever the Swift build);
/// `PasswordHasherTests.testHashTiming` prints the figure. That is intentionally slow for an
/// attacker but cheap enough for login/registration traffic; note that each in-flight hash
/// holds ~16 MiB while it runs, so peak memory is ~16 MiB × threads hashing at once.
public enum PasswordHasher {

    /// The method chosen once per process: yescrypt when the library supports it.
    /// Static lets are initialised lazily and exactly once, so this is thread-safe.
    private static let method: (prefix: String, count: UInt) = {
        if probe(prefix: "$y$", count: 0) { return ("$y$", 0) }
        return ("$2b$", 10)
    }()

    /// Salt entropy: 16 bytes = 128 bits, the size crypt(5) recommends as a minimum for
    /// yescrypt and exactly what bcrypt consumes.
    private static let saltBytes = 16

    /// Hash formats `verify` will accept as a stored hash. Anything else (including legacy
    /// DES/MD5 settings libcrypt would still happily evaluate) is treated as invalid, so a
    /// corrupted or injected column can never downgrade verification to a weak scheme.
    private static let acceptedPrefixes = ["$y$", "$2b$", "$2y$"]

    /// Hashes `secret` with a fresh random salt. The result is a self-describing crypt string
    /// (method, cost, salt, hash) suitable for storing as-is.
    public static func hash(_ secret: String) throws -> String {
        try validate(secret)
        let setting = try makeSetting(prefix: method.prefix, count: method.count)
        guard let hashed = runCrypt(secret, setting: setting), hashed.hasPrefix(method.prefix) else {
            throw PasswordHasherError.hashingFailed
        }
        return hashed
    }

    /// Checks `secret` against a hash produced by `hash`. Any malformed input, library error,
    /// or failure token (`*...`) yields false; the final comparison is constant-time.
    public static func verify(_ secret: String, against storedHash: String) -> Bool {
        guard (try? validate(secret)) != nil,
              acceptedPrefixes.contains(where: { storedHash.hasPrefix($0) }),
              !storedHash.utf8.contains(0),
              storedHash.utf8.count < Int(CRYPT_OUTPUT_SIZE),
              let computed = runCrypt(secret, setting: storedHash),
              !computed.hasPrefix("*")
        else { return false }
        return Crypto.constantTimeEquals(computed, storedHash)
    }

    // MARK: - libxcrypt plumbing

    private static func validate(_ secret: String) throws {
        let bytes = secret.utf8
        guard !bytes.contains(0), bytes.count < Int(CRYPT_MAX_PASSPHRASE_SIZE) else {
            throw PasswordHasherError.invalidSecret
        }
    }

    /// Builds a setting string from OpenSSL randomness rather than letting libxcrypt read
    /// /dev/urandom itself, so all secrets in the process come from one audited CSPRNG.
    private static func makeSetting(prefix: String, count: UInt) throws -> String {
        var entropy = Crypto.randomBytes(saltBytes)
        defer { wipe(&entropy) }
        var output = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        let ok: Bool = entropy.withUnsafeBufferPointer { rnd in
            output.withUnsafeMutableBufferPointer { out in
                rnd.baseAddress!.withMemoryRebound(to: CChar.self, capacity: rnd.count) { r in
                    crypt_gensalt_rn(prefix, count, r, Int32(rnd.count),
                                     out.baseAddress, Int32(out.count)) != nil
                }
            }
        }
        guard ok else { throw PasswordHasherError.hashingFailed }
        return output.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Runs `crypt_rn` with a private, zeroed, heap-allocated `struct crypt_data`.
    /// Returns nil on error (crypt_rn returns NULL rather than a `*` token on failure, but
    /// a `*` result is also rejected by callers for defence in depth).
    private static func runCrypt(_ phrase: String, setting: String) -> String? {
        let size = MemoryLayout<crypt_data>.size
        let data = UnsafeMutableRawPointer.allocate(byteCount: size,
                                                    alignment: MemoryLayout<crypt_data>.alignment)
        // The API requires `initialized` (and recommends `reserved`) to be zero on first use.
        data.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        defer {
            // The output area holds the hash; clear it before returning memory to malloc.
            OPENSSL_cleanse(data, size)
            data.deallocate()
        }
        guard let result = crypt_rn(phrase, setting, data, Int32(size)) else { return nil }
        return String(cString: result)
    }

    /// Returns true if libcrypt can both generate a setting for and evaluate `prefix`.
    private static func probe(prefix: String, count: UInt) -> Bool {
        guard let setting = try? makeSetting(prefix: prefix, count: count),
              let out = runCrypt("probe", setting: setting)
        else { return false }
        return out.hasPrefix(prefix)
    }

    private static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { if let p = $0.baseAddress { OPENSSL_cleanse(p, $0.count) } }
    }
}
