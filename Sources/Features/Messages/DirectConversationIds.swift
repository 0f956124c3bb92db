import Foundation
import ChatConfig
import ChatHTTP
import ChatCache

/// The ids of the direct conversations one worker process has seen, by pair, so that a direct
/// message from the workers' copies needs no lookup. Conversation ids come from an identity column
/// and are never reused, so a remembered id is never another pair's; at worst its row is gone
/// (deleted with one of the users, or by hand), and then `MessagesFeature.store` finds no row and
/// the caller forgets the id and looks the pair up again.
final class DirectConversationIds: @unchecked Sendable {
    struct Pair: Hashable {
        var low: Int64
        var high: Int64

        init(_ a: Int64, _ b: Int64) { (low, high) = a < b ? (a, b) : (b, a) }
    }

    /// Past this many, all are dropped and learnt again (one lookup each, in a statement that
    /// runs anyway): 200,000 pairs are about 10 MiB.
    static let capacity = 200_000

    private let lock = NSLock()
    private var ids: [Pair: Int64] = [:]

    func id(_ a: Int64, _ b: Int64) -> Int64? {
        lock.lock()
        defer { lock.unlock() }
        return ids[Pair(a, b)]
    }

    func remember(_ id: Int64, _ a: Int64, _ b: Int64) {
        let pair = Pair(a, b)
        lock.lock()
        defer { lock.unlock() }
        if ids[pair] == id { return }
        if ids.count >= DirectConversationIds.capacity { ids.removeAll(keepingCapacity: true) }
        ids[pair] = id
    }

    func forget(_ a: Int64, _ b: Int64) {
        lock.lock()
        defer { lock.unlock() }
        ids[Pair(a, b)] = nil
    }
}
