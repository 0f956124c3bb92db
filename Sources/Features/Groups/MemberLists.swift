import ChatHTTP
import ChatPostgres
import ChatCache
import Accounts

/// A group's member list as `getGroupMember` answers it, rendered once per list version and then
/// reused by every member who asks (sql/0004_list_versions.sql keeps the version).
///
/// Two things in an answer depend on the moment and the viewer, not on the list: each member's
/// role (the owner comes from the group row read with the version) and whether a mobile is shown
/// in full (to the member themself and to the viewer's friends) or masked. Each member is stored
/// as the bytes around those two holes plus both forms of the mobile, so that filling them in is
/// a handful of copies.
struct RenderedMemberList {
    struct Member {
        var userId: Int64
        /// `{"userId":…,"card":…,"role":"` is `start..<roleAt`; `","joinTime":…,"user":{"userId":…,"mobile":`
        /// is `roleAt..<mobileAt`; the rest of the profile and the closing braces `mobileAt..<fullAt`;
        /// the quoted full mobile `fullAt..<maskedAt`; the quoted masked one `maskedAt..<end`.
        var start: Int, roleAt: Int, mobileAt: Int, fullAt: Int, maskedAt: Int, end: Int
    }

    var bytes: [UInt8]
    var members: [Member]
    /// Where the two roles are in `bytes` (after the members), so that writing one is a copy too.
    var ownerRole: Range<Int>, memberRole: Range<Int>
    /// The members' ids in ascending order, for `isMember`.
    var memberIds: [Int64]
    /// Up to nine member avatars in join order, as the JSON array `ready.groups[].headUrls` shows.
    var headUrls: [UInt8]

    /// Renders a group's list from `GroupsStore.memberList`'s rows, in join order.
    init(rows result: PGResult) throws {
        let profile = try Profile.Columns(result)
        let card = try result.column("card", as: String.self), joinTime = try result.column("join_time", as: Int64.self)
        var w = JSONWriter(capacity: result.rowCount * 360)
        var members: [Member] = []
        members.reserveCapacity(result.rowCount)
        var heads = JSONWriter(capacity: 512)
        heads.byte(UInt8(ascii: "["))
        var headCount = 0
        for index in 0..<result.rowCount {
            let row = result[index]
            let start = w.bytes.count
            let userId = try row[profile.userId]
            w.raw("{\"userId\":")
            w.int(userId)
            w.raw(",\"card\":")
            try row.withRequiredBytes(card) { w.string(utf8: $0) }
            w.raw(",\"role\":\"")
            let roleAt = w.bytes.count
            w.raw("\",\"joinTime\":")
            w.int(try row[joinTime])
            w.raw(",\"user\":{")
            try Profile.writeUpToMobile(row, profile, into: &w)
            let mobileAt = w.bytes.count
            try Profile.writeAfterMobile(row, profile, into: &w)
            w.raw("}}")
            let fullAt = w.bytes.count
            try Profile.writeMobile(row, profile, reveal: true, into: &w)
            let maskedAt = w.bytes.count
            try Profile.writeMobile(row, profile, reveal: false, into: &w)
            members.append(Member(userId: userId, start: start, roleAt: roleAt, mobileAt: mobileAt,
                                  fullAt: fullAt, maskedAt: maskedAt, end: w.bytes.count))
            // The avatars: the same rule as GroupsStore.headUrlsColumn (non-empty, first nine).
            if headCount < 9 {
                row.withBytes(profile.headUrl) { head in
                    guard !head.isEmpty else { return }
                    if headCount > 0 { heads.byte(UInt8(ascii: ",")) }
                    heads.string(utf8: head)
                    headCount += 1
                }
            }
        }
        heads.byte(UInt8(ascii: "]"))
        let ownerAt = w.bytes.count
        w.raw("owner")
        let memberAt = w.bytes.count
        w.raw("member")
        ownerRole = ownerAt..<memberAt
        memberRole = memberAt..<w.bytes.count
        bytes = w.bytes
        self.members = members
        memberIds = members.map(\.userId).sorted()
        headUrls = heads.bytes
    }

    func isMember(_ userId: Int64) -> Bool { RenderedMemberList.sortedContains(memberIds, userId) }

    /// The answer's `data` for `viewer`: roles against `ownerId`, full mobiles for the viewer's
    /// `friends` (ascending ids) and the viewer, masked ones for everyone else.
    ///
    /// Assembled with plain copies into one buffer of the right size and appended at once, not as
    /// thousands of `append(contentsOf:)` calls (five pieces a member), which profiles showed
    /// costly on this hot path.
    func write(ownerId: Int64?, viewer: Int64, friends: [Int64], into out: inout [UInt8]) {
        // At most: every member's bytes (both mobiles), the longer role and a comma each, brackets.
        let bound = bytes.count + members.count * 7 + 2
        let data = [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
            var at = 0
            func put(_ piece: UnsafeBufferPointer<UInt8>) {
                (buffer.baseAddress! + at).initialize(from: piece.baseAddress!, count: piece.count)
                at += piece.count
            }
            // Both buffers are opened once, outside the loop: no reference counting per member.
            bytes.withUnsafeBufferPointer { all in
                friends.withUnsafeBufferPointer { friends in
                    buffer[at] = UInt8(ascii: "[")
                    at += 1
                    for (index, m) in members.enumerated() {
                        if index > 0 {
                            buffer[at] = UInt8(ascii: ",")
                            at += 1
                        }
                        put(UnsafeBufferPointer(rebasing: all[m.start..<m.roleAt]))
                        put(UnsafeBufferPointer(rebasing: all[m.userId == ownerId ? ownerRole : memberRole]))
                        put(UnsafeBufferPointer(rebasing: all[m.roleAt..<m.mobileAt]))
                        let reveal = m.userId == viewer || RenderedMemberList.sortedContains(friends, m.userId)
                        put(UnsafeBufferPointer(rebasing: reveal ? all[m.fullAt..<m.maskedAt] : all[m.maskedAt..<m.end]))
                        put(UnsafeBufferPointer(rebasing: all[m.mobileAt..<m.fullAt]))
                    }
                    buffer[at] = UInt8(ascii: "]")
                    at += 1
                }
            }
            count = at
        }
        out.append(contentsOf: data)
    }

    static func sortedContains(_ sorted: [Int64], _ value: Int64) -> Bool {
        sorted.withUnsafeBufferPointer { sortedContains($0, value) }
    }

    static func sortedContains(_ sorted: UnsafeBufferPointer<Int64>, _ value: Int64) -> Bool {
        var low = 0, high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low < sorted.count && sorted[low] == value
    }

    /// Bytes held, for the cache's budget.
    var cost: Int { bytes.count + headUrls.count + members.count * (MemoryLayout<Member>.stride + 8) + 64 }
}

/// What `getGroupMember` needs of a group besides the caller's session and friends: its owner and
/// its member list, as one worker's copy checked against the shared change counters (kind `g`,
/// see docs/caching.md), so that a current copy answers without PostgreSQL.
struct GroupCopy {
    var ownerId: Int64?
    var list: RenderedMemberList

    static let kind: Character = "g"

    /// Ends every worker's copies of these groups once the current change commits.
    static func forget(_ groups: [Int64], db: PGConnection) {
        ChangeStripes.bumpAfterCommit(groups.map { ChangeStripes.Key(kind, $0) }, db: db)
    }
}

/// The rendered lists of groups one worker process keeps (see `VersionedCache`).
final class GroupListCache: Sendable {
    let members: VersionedCache<RenderedMemberList>
    /// Avatar arrays alone, for `ready`, which shows them for all of a user's groups but does not
    /// need their whole member lists.
    let headUrls: VersionedCache<[UInt8]>

    /// Owners and member lists checked against the change counters. A copy shares its list's
    /// bytes with `members` while both hold it, but is budgeted as if it did not.
    let copies: CheckedCache<GroupCopy>

    /// - Parameter budgets: the shares of the three kinds. The copies draw on the same pool as
    ///   the sessions and relations they need (`profile_cache_mib`), so none are kept without those.
    init(budgets: CacheBudgets, stripes: @escaping () -> ChangeStripes = { ChangeStripes.shared }) {
        members = VersionedCache(GroupsFeature.memberListsKind, budgets: budgets) { $0.cost }
        headUrls = VersionedCache(GroupsFeature.memberHeadUrlsKind, budgets: budgets) { $0.count + 64 }
        copies = CheckedCache(GroupsFeature.groupCopiesKind, counterKind: GroupCopy.kind, budgets: budgets, stripes: stripes) {
            $0.list.cost + 16
        }
    }
}
