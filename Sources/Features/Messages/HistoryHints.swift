import Foundation
import ChatConfig
import ChatRouting
import ChatCache
import Accounts

/// Which conversation (and visible-from time) a session's last history request resolved to, per
/// worker process: a hint that lets the next request for the same conversation read its page in
/// the same round trip as the access check. A hint never decides anything: the check runs every
/// time and the page is used only when the check returns exactly the hinted conversation (ids of
/// conversations never change; a member who left and came back has a new visible-from time).
///
/// Keys hold the SHA-256 of the session token (as the sessions table does), never the token.
final class HistoryHints: @unchecked Sendable {
    struct Key: Hashable {
        var principal: [UInt8]
        var userId: Int64
        var destId: Int64
        var destType: Int
    }

    /// Past this many, all hints are dropped and collected again (they are cheap to relearn).
    static let capacity = 100_000

    private let lock = NSLock()
    private var hints: [Key: MessagesFeature.Conversation] = [:]

    func hint(for key: Key) -> MessagesFeature.Conversation? {
        lock.lock()
        defer { lock.unlock() }
        return hints[key]
    }

    func remember(_ conversation: MessagesFeature.Conversation, for key: Key) {
        lock.lock()
        defer { lock.unlock() }
        if hints[key] == conversation { return }
        if hints.count >= HistoryHints.capacity { hints.removeAll(keepingCapacity: true) }
        hints[key] = conversation
    }

    func forget(_ key: Key) {
        lock.lock()
        defer { lock.unlock() }
        hints[key] = nil
    }
}
