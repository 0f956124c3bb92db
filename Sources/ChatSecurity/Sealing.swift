import CCrypto

/// Authenticated encryption (AES-256-GCM, libcrypto) for the few stored secrets the server must be
/// able to read back, such as id numbers for an operator's review.
///
/// The key is derived from the server secret per purpose, so one leaked sealed value says nothing
/// about another kind. Output: 12-byte random nonce ‖ ciphertext ‖ 16-byte tag.
public enum Sealing {
    public struct SealingError: Error {}

    static func key(_ secret: [UInt8], purpose: String) -> [UInt8] {
        Crypto.hmacSHA256(key: secret, message: Array("seal:\(purpose)".utf8))
    }

    public static func seal(_ plaintext: [UInt8], key secret: [UInt8], purpose: String) throws -> [UInt8] {
        let key = key(secret, purpose: purpose)
        let nonce = Crypto.randomBytes(12)
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SealingError() }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var length: Int32 = 0
        var total = 0
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1 else { throw SealingError() }
        if !plaintext.isEmpty {
            guard EVP_EncryptUpdate(ctx, &out, &length, plaintext, Int32(plaintext.count)) == 1 else { throw SealingError() }
            total = Int(length)
        }
        let finalOK = out.withUnsafeMutableBufferPointer { buffer in
            EVP_EncryptFinal_ex(ctx, buffer.baseAddress! + total, &length)
        }
        guard finalOK == 1 else { throw SealingError() }
        total += Int(length)
        var tag = [UInt8](repeating: 0, count: 16)
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1 else { throw SealingError() }
        return nonce + out.prefix(total) + tag
    }

    public static func open(_ sealed: [UInt8], key secret: [UInt8], purpose: String) throws -> [UInt8] {
        guard sealed.count >= 28 else { throw SealingError() }
        let key = key(secret, purpose: purpose)
        let nonce = Array(sealed.prefix(12))
        let ciphertext = Array(sealed.dropFirst(12).dropLast(16))
        var tag = Array(sealed.suffix(16))
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SealingError() }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var length: Int32 = 0
        var total = 0
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1 else { throw SealingError() }
        if !ciphertext.isEmpty {
            guard EVP_DecryptUpdate(ctx, &out, &length, ciphertext, Int32(ciphertext.count)) == 1 else { throw SealingError() }
            total = Int(length)
        }
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { throw SealingError() }
        let finalOK = out.withUnsafeMutableBufferPointer { buffer in
            EVP_DecryptFinal_ex(ctx, buffer.baseAddress! + total, &length)
        }
        guard finalOK == 1 else { throw SealingError() }
        total += Int(length)
        return Array(out.prefix(total))
    }
}
