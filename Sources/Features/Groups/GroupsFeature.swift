import ChatConfig
import ChatHTTP
import ChatPostgres
import ChatRouting
import ChatCache
import Accounts
import Social
import Events

/// Groups (API.md §4): creation, renaming, cards, invitations, join requests, leaving, lookup and
/// name search.
///
/// Every membership change locks the group's row first (`FOR UPDATE`), so concurrent invites,
/// joins and departures of one group run one after another: the 500-member cap and the owner
/// hand-over can never be decided on a stale member count.
public final class GroupsFeature {
    public static let maxMembers = 500
    static let nameLength = 64
    static let cardLength = 32

    /// Rendered member lists and avatar arrays of this worker process.
    let lists: GroupListCache

    /// getGroupMember from this worker's copies (see docs/caching.md): whether someone is the
    /// caller's friend from the social feature's copy of the caller's relations, and the statement
    /// that fills that copy.
    let relations: RelationLookup?

    /// - Parameters:
    ///   - budgets: memory for `lists` (`CacheRegistry`; none: render on every request).
    ///   - relations: the callers' relations (nil: getGroupMember always reads PostgreSQL).
    public init(budgets: CacheBudgets = .none, relations: RelationLookup? = nil) {
        lists = GroupListCache(budgets: budgets)
        self.relations = relations
    }

    public func register(on router: Router) {
        router.add("/chat/createGroup", createGroup)
        router.add("/chat/updateGroup", updateGroup)
        router.add("/chat/updateGroupMemberMark", updateGroupMemberMark)
        router.add("/chat/addGroupMember", addGroupMember)
        router.add("/chat/quitGroup", quitGroup)
        router.add("/chat/getGroupById", getGroupById)
        router.add("/chat/getGroupMember", authInQuery: true, getGroupMember)
        router.add("/chat/queryGroup", authInQuery: true, queryGroup)
    }

    // MARK: name search support

    /// The one- and two-character pieces of a name that short searches look up.
    static func grams(of name: String) -> [String] {
        let characters = Array(name.lowercased())
        var grams = Set<String>()
        for (index, character) in characters.enumerated() where !character.isWhitespace {
            grams.insert(String(character))
            if index + 1 < characters.count, !characters[index + 1].isWhitespace {
                grams.insert(String(characters[index]) + String(characters[index + 1]))
            }
        }
        return grams.sorted()
    }

    /// A LIKE pattern matching names that contain `text`; LIKE's own wildcards in it match literally.
    static func containsPattern(_ text: String) -> String {
        "%" + text.escapingScalars(["\\", "%", "_"]) + "%"
    }

    // MARK: reads shared by several endpoints

    /// Locks a live group's row for a change of its members or its row; nil when there is no such
    /// group. Every such change goes through here, so the workers' copies of the group
    /// (`GroupCopy`) end once it commits.
    ///
    /// A group whose owner is no longer a member (the owner's account or membership row was
    /// removed outside the app) is mended here first, as if the owner had left: the
    /// longest-standing member becomes owner (told by `group_owner_changed`) and the member
    /// count is recounted; with no members left, the group is dissolved and this returns nil.
    static func lockGroup(_ db: PGConnection, _ groupId: Int64) throws -> (ownerId: Int64, count: Int, name: String, needApproval: Bool)? {
        let store = GroupsStore(db: db)
        guard let row = try store.lock(groupId) else { return nil }
        GroupCopy.forget([groupId], db: db)
        if row.ownerIsMember, let ownerId = row.ownerId { return (ownerId, row.memberCount, row.name, row.needApproval) }
        let remaining = try store.memberIdsInJoinOrder(groupId)
        guard let newOwner = remaining.first else {
            try store.dissolve(groupId)
            return nil
        }
        try store.setOwnerAndCount(groupId, ownerId: newOwner, memberCount: remaining.count)
        try EventLog.append(db, to: remaining, type: "group_owner_changed",
                            payload: ["groupId": .int(groupId), "ownerId": .int(newOwner)])
        Log.warn("group.owner_mended", ["group": groupId, "owner": newOwner])
        return (newOwner, remaining.count, row.name, row.needApproval)
    }

    /// For `AccountsFeature.profileDependents`: a member's profile shows in the member list of
    /// each of their groups.
    public static func forgetMemberLists(of userId: Int64, db: PGConnection) throws {
        GroupCopy.forget(try GroupsStore(db: db).groupIds(ofMember: userId), db: db)
    }

    package static func isMember(_ db: PGConnection, _ groupId: Int64, _ userId: Int64) throws -> Bool {
        try GroupsStore(db: db).isMember(groupId, userId)
    }

    /// The caller's groups, for `ready`: each with its member list's version, which says whether
    /// the avatars rendered earlier (`lists.headUrls`) are still right.
    public func groupsOfStatement(_ userId: Int64) -> SQL {
        GroupsStore.groupsOf(userId)
    }

    /// `ready.groups` from `groupsOfStatement`'s result; the avatars missing from the cache are
    /// read in one more statement (after the versions, so a copy is never older than its version).
    public func renderGroupsOf(_ result: PGResult, db: PGConnection) throws -> [UInt8] {
        let writer = try GroupWriter(result, card: true)
        let listVersion = try result.column("list_version", as: Int64.self)
        var heads: [Int64: [UInt8]] = [:]
        var missing: [(id: Int64, version: Int64)] = []
        for row in result.rows {
            let id = try row[writer.id], version = try row[listVersion]
            if let cached = lists.headUrls.value(for: id, version: version) { heads[id] = cached } else { missing.append((id, version)) }
        }
        if !missing.isEmpty {
            let found = try GroupsStore(db: db).headUrls(ofGroups: missing.map(\.id))
            for (id, version) in missing {
                let rendered = found[id].map(GroupWriter.headUrls) ?? GroupWriter.noHeadUrls
                heads[id] = rendered
                lists.headUrls.store(rendered, for: id, version: version)
            }
        }
        return try JSONWriter.array(count: result.rowCount, bytesPerElement: 512) { index, w in
            let row = result[index]
            w.byte(UInt8(ascii: "{"))
            try writer.writeFields(row, headUrls: heads[try row[writer.id]] ?? [], into: &w)
            w.byte(UInt8(ascii: "}"))
        }
    }

    // MARK: endpoints

    func createGroup(_ c: RequestContext) throws -> Response {
        let me = c.userId
        let invited = try c.params.idList("ids", maxCount: GroupsFeature.maxMembers).filter { $0 != me }
        let name = try c.params.required("name", maxLength: GroupsFeature.nameLength)
        guard invited.count + 1 >= 2, invited.count + 1 <= GroupsFeature.maxMembers else {
            return .outcome(-1, "a group has 2 to \(GroupsFeature.maxMembers) members")
        }
        let db = try c.db
        let members = [me] + invited
        return try db.transaction {
            let store = GroupsStore(db: db)
            // FOR SHARE: a friendship cannot end while the group that relies on it is being made.
            let friends = try store.friends(of: me, among: invited)
            if let stranger = invited.first(where: { !friends.contains($0) }) {
                return .outcome(-1, "only friends can be put into a group: \(stranger) is not your friend")
            }
            try Profile.holdSteady(db, members)
            let groupId = try store.insertGroup(name: name, ownerId: me, memberCount: members.count)
            // A new group has no copies to end: only a live group's answer is kept.
            // Inserted in order, so the creator is the longest-standing member.
            try store.insertFounders(groupId, members)
            try store.indexName(groupId: groupId, name: name)
            try EventLog.append(db, to: members, type: "group_joined",
                                payload: ["groupId": .int(groupId), "name": .string(name), "by": .int(me)])
            return .ok(["groupId": .int(groupId)])
        }
    }

    func updateGroup(_ c: RequestContext) throws -> Response {
        let groupId = try c.params.requiredId("groupId")
        let name = try c.params.string("name", maxLength: GroupsFeature.nameLength)
        let needApproval = try c.params.flag("needApproval")
        guard name != nil || needApproval != nil else { throw HTTPError.missing("name") }
        if name?.isEmpty == true { throw HTTPError.invalid("name") }
        let db = try c.db
        return try db.transaction {
            guard let group = try GroupsFeature.lockGroup(db, groupId) else { return .outcome(-1, "no such group") }
            guard group.ownerId == c.userId else { throw HTTPError.forbidden("only the owner can change the group") }
            let store = GroupsStore(db: db)
            try store.update(groupId, name: name, needApproval: needApproval)
            if let name, name != group.name {
                try store.indexName(groupId: groupId, name: name)
                try EventLog.append(db, to: try store.memberIds(groupId), type: "group_renamed",
                                    payload: ["groupId": .int(groupId), "name": .string(name), "by": .int(c.userId)])
            }
            return .ok()
        }
    }

    func updateGroupMemberMark(_ c: RequestContext) throws -> Response {
        let groupId = try c.params.requiredId("groupId")
        guard let card = try c.params.string("name", maxLength: GroupsFeature.cardLength) else { throw HTTPError.missing("name") }
        let db = try c.db
        return try db.transaction {
            let store = GroupsStore(db: db)
            guard try store.setCard(groupId, userId: c.userId, card: card) else {
                throw HTTPError.forbidden("you are not a member of this group")
            }
            GroupCopy.forget([groupId], db: db)
            // Other members see cards in the member list: tell them.
            try EventLog.append(db, to: try store.memberIds(groupId), type: "group_member_card",
                                payload: ["groupId": .int(groupId), "userId": .int(c.userId), "card": .string(card)])
            return .ok()
        }
    }

    func addGroupMember(_ c: RequestContext) throws -> Response {
        let groupId = try c.params.requiredId("groupId")
        let me = c.userId
        let invited = try c.params.idList("inviteIds", maxCount: GroupsFeature.maxMembers).filter { $0 != me }
        let db = try c.db
        return try db.transaction {
            guard let group = try GroupsFeature.lockGroup(db, groupId) else { return .outcome(-1, "no such group") }
            let store = GroupsStore(db: db)
            let members = Set(try store.memberIds(groupId))
            guard members.contains(me) else { throw HTTPError.forbidden("you are not a member of this group") }
            let newcomers = invited.filter { !members.contains($0) }
            let friends = try store.friends(of: me, among: newcomers)
            if let stranger = newcomers.first(where: { !friends.contains($0) }) {
                return .outcome(-1, "only friends can be invited: \(stranger) is not your friend")
            }
            guard group.count + newcomers.count <= GroupsFeature.maxMembers else {
                return .outcome(-1, "the group is full (at most \(GroupsFeature.maxMembers) members)")
            }
            if !newcomers.isEmpty {
                try addMembers(db, groupId: groupId, name: group.name, newcomers: newcomers, existing: Array(members), by: me)
            }
            return .ok(["added": .array(newcomers.map(JSON.int))])
        }
    }

    /// Adds members to a locked group and records the events.
    func addMembers(_ db: PGConnection, groupId: Int64, name: String, newcomers: [Int64], existing: [Int64], by: Int64) throws {
        try Profile.holdSteady(db, newcomers)
        try GroupsStore(db: db).insertMembers(groupId, newcomers)
        try EventLog.append(db, to: newcomers, type: "group_joined",
                            payload: ["groupId": .int(groupId), "name": .string(name), "by": .int(by)])
        try EventLog.append(db, to: existing, type: "group_members_added",
                            payload: ["groupId": .int(groupId), "userIds": .array(newcomers.map(JSON.int)), "by": .int(by)])
    }

    /// `requestFriend` with destType 2: join at once when the group needs no approval, otherwise
    /// leave a request for the owner.
    public func requestJoin(_ c: RequestContext, groupId: Int64, message: String) throws -> Response {
        let me = c.userId
        let db = try c.db
        return try db.transaction {
            guard let group = try GroupsFeature.lockGroup(db, groupId) else { return .outcome(-1, "no such group") }
            let store = GroupsStore(db: db)
            let members = try store.memberIds(groupId)
            if members.contains(me) { return .outcome(-1, "already a member") }
            if try SocialFeature.blocks(db, group.ownerId, me) { return .outcome(-1, "this group does not accept your requests") }
            if !group.needApproval {
                guard group.count < GroupsFeature.maxMembers else { return .outcome(-1, "the group is full") }
                try addMembers(db, groupId: groupId, name: group.name, newcomers: [me], existing: members, by: me)
                return .outcome(2, "you joined the group")
            }
            try Profile.holdSteady(db, [me])
            let (requestId, isNew) = try store.upsertJoinRequest(from: me, groupId: groupId, message: message)
            // A repeated request while one is pending updates it without a new event (see requestFriend).
            if isNew {
                try EventLog.append(db, to: [group.ownerId], type: "friend_request",
                                    payload: ["requestId": .int(requestId), "fromId": .int(me), "destType": 2,
                                              "groupId": .int(groupId), "message": .string(message)])
            }
            return .outcome(1, "waiting for the owner's approval", data: ["requestId": .int(requestId)])
        }
    }

    /// `acceptRequest` with destType 2: the owner lets a requester in.
    public func acceptJoin(_ c: RequestContext, requesterId: Int64, groupId: Int64) throws -> Response {
        let db = try c.db
        return try db.transaction {
            guard let group = try GroupsFeature.lockGroup(db, groupId) else { return .outcome(-1, "no such group") }
            guard group.ownerId == c.userId else { throw HTTPError.forbidden("only the owner can accept join requests") }
            let store = GroupsStore(db: db)
            guard let requestId = try store.pendingJoinRequest(groupId: groupId, from: requesterId) else {
                return .outcome(-1, "no such pending request")
            }
            if try SocialFeature.blocks(db, c.userId, requesterId) {
                return .outcome(-1, "you block this user; unblock them first")
            }
            let members = try store.memberIds(groupId)
            guard group.count < GroupsFeature.maxMembers else { return .outcome(-1, "the group is full") }
            try addMembers(db, groupId: groupId, name: group.name, newcomers: [requesterId], existing: members, by: c.userId)
            try EventLog.append(db, to: [requesterId], type: "request_accepted",
                                payload: ["requestId": .int(requestId), "groupId": .int(groupId), "destType": 2])
            return .ok()
        }
    }

    func quitGroup(_ c: RequestContext) throws -> Response {
        let groupId = try c.params.requiredId("groupId")
        let me = c.userId
        let db = try c.db
        return try db.transaction {
            guard let group = try GroupsFeature.lockGroup(db, groupId) else { return .outcome(-1, "no such group") }
            let store = GroupsStore(db: db)
            guard try store.removeMember(groupId, me) else { return .outcome(-1, "you are not a member of this group") }
            try EventLog.append(db, to: [me], type: "group_left", payload: ["groupId": .int(groupId)])
            let remaining = try store.memberIdsInJoinOrder(groupId)
            if remaining.isEmpty {
                // The last one out dissolves the group.
                try store.dissolve(groupId)
                return .ok(["dissolved": true])
            }
            var newOwner = group.ownerId
            if group.ownerId == me {
                newOwner = remaining[0] // the longest-standing member
            }
            try store.setOwnerAndCount(groupId, ownerId: newOwner, memberCount: remaining.count)
            try EventLog.append(db, to: remaining, type: "group_member_left",
                                payload: ["groupId": .int(groupId), "userId": .int(me)])
            if newOwner != group.ownerId {
                try EventLog.append(db, to: remaining, type: "group_owner_changed",
                                    payload: ["groupId": .int(groupId), "ownerId": .int(newOwner)])
            }
            return .ok(["dissolved": false])
        }
    }

    func getGroupById(_ c: RequestContext) throws -> Response {
        let groupId = try c.params.requiredId("groupId")
        let result = try GroupsStore(db: try c.db).group(groupId, seenBy: c.userId)
        guard let row = result.first else { return .outcome(-1, "no such group") }
        let isMember: Bool = try row.decode("is_member")
        // Non-members see the group itself, not who is in it.
        let headUrls = GroupWriter.headUrls(isMember ? try row.decode("head_urls", as: String?.self) : nil)
        var w = JSONWriter(capacity: 256 + headUrls.count)
        w.byte(UInt8(ascii: "{"))
        try GroupWriter(result, card: isMember).writeFields(row, headUrls: headUrls, into: &w)
        w.raw(",\"isMember\":")
        w.bool(isMember)
        w.raw(",\"needApproval\":")
        w.bool(try row.decode("need_approval"))
        w.byte(UInt8(ascii: "}"))
        return .ok(.bytes(w.bytes))
    }

    func getGroupMember(_ c: RequestContext) throws -> Response {
        let groupId = try c.params.requiredId("groupId")
        _ = try c.params.string("version", maxLength: 64) // accepted and ignored, as the contract says
        // From this worker's copies when the session, the group and the caller's friends are all
        // held and current: no round trip at all.
        var relationToFill: PGConnection.Rider?
        if !c.isSessionPending, lists.copies.isEnabled {
            let me = c.userId
            let friends = relations?.friendIds(of: me)
            if let friends, let group = lists.copies.value(groupId) {
                guard group.list.isMember(me) else { throw HTTPError.forbidden("only members can list the members") }
                return .ok(reserving: group.list.bytes.count) { body in
                    group.list.write(ownerId: group.ownerId, viewer: me, friends: friends, into: &body)
                }
            }
            // The relations ride along with the statement, so the next request needs none.
            if friends == nil { relationToFill = relations?.fill(for: me) }
        }
        // Read before the statement, like every version a copy is stored at.
        let copyVersion = lists.copies.version(of: groupId)
        // One statement, the session check included (see `GroupsStore.memberListState`).
        // The version is read before the list (below), never after: see VersionedCache.
        let store = GroupsStore(db: try c.db)
        let row = try store.memberListState(who: c.who, groupId: groupId, riders: relationToFill.map { [$0] } ?? [])
        try c.adoptSession(from: row)
        guard let row, let group = try GroupsStore.MemberListState(row) else { return .outcome(-1, "no such group") }
        guard group.isMember else { throw HTTPError.forbidden("only members can list the members") }
        let version = group.listVersion, ownerId = group.ownerId
        let list: RenderedMemberList
        if let cached = lists.members.value(for: groupId, version: version) {
            list = cached
        } else {
            list = try RenderedMemberList(rows: try store.memberList(groupId))
            lists.members.store(list, for: groupId, version: version)
            lists.headUrls.store(list.headUrls, for: groupId, version: version)
        }
        if let copyVersion { lists.copies.store(GroupCopy(ownerId: ownerId, list: list), for: groupId, version: copyVersion) }
        let friends = group.friendIds // ascending, for binary search
        return .ok(reserving: list.bytes.count) { body in
            list.write(ownerId: ownerId, viewer: c.userId, friends: friends, into: &body)
        }
    }

    func queryGroup(_ c: RequestContext) throws -> Response {
        let text = try c.params.required("groupName", maxLength: GroupsFeature.nameLength).lowercased().trimmedSpaces
        guard !text.isEmpty else { throw HTTPError.invalid("groupName") }
        // The search needs no user: the session is checked in the same round trip.
        let found: (result: PGResult, rows: [PGRow])
        if text.count <= 2 && !text.contains(where: \.isWhitespace) {
            // The gram's postings backwards (newest group first), stopping at the 20th live group.
            let result = try c.query(GroupsStore.searchByGram(text))
            found = (result, result.rows)
        } else {
            found = try GroupsFeature.searchLongerText(c, text)
        }
        return .ok(.bytes(try GroupWriter(found.result, card: false).writeArray(found.rows)))
    }

    // MARK: name search, three characters and more (or with whitespace)

    /// How many postings of one gram `searchLongerText` checks before it asks the trigram index.
    static let gramWalkLimit = 100

    /// queryGroup for a lowercased `text` of three characters or more, or with whitespace: the
    /// newest 20 live groups whose lower(name) contains it, as rows (id, name, owner_id, member_count)
    /// of one result.
    ///
    /// Every such group has each of `sureGrams(of: text)` among its group_name_grams. So the first
    /// statement counts each sure gram's postings (up to one more than the limit), takes the rarest,
    /// walks its postings backwards (newest group first, at most `gramWalkLimit`) and checks each
    /// group's name with the full LIKE, stopping at the 20th match. That is the answer when it has 20
    /// groups or when the walk saw all of the gram's postings. Otherwise (a rare text whose grams
    /// are all common, or a text without sure grams) the trigram index finds every match and they
    /// are sorted: cheap precisely because such a text matches few groups. The trigram index alone
    /// rechecks and sorts thousands of rows for a common text; the walk reads a few dozen.
    static func searchLongerText(_ c: RequestContext, _ text: String) throws -> (result: PGResult, rows: [PGRow]) {
        let pattern = containsPattern(text)
        let grams = sureGrams(of: text)
        if !grams.isEmpty {
            let walked = try c.query(GroupsStore.searchByRarestGram(grams, pattern: pattern))
            // No match leaves one row of NULL group columns (the LEFT JOIN).
            let id = try walked.column("id", as: Int64?.self)
            let found = try walked.rows.filter { try $0[id] != nil }
            let postings: Int = try walked.first?.decode("postings") ?? Int.max
            if found.count == 20 || postings <= gramWalkLimit { return (walked, found) }
        }
        let result = try c.query(GroupsStore.searchByTrigrams(pattern: pattern))
        return (result, result.rows)
    }

    /// The grams of `text` (lowercased) that `grams(of:)` surely gives every name whose lower() in
    /// PostgreSQL contains `text`, so that walking one of them misses no match: at most six, the
    /// two-character ones first (never rarer than their characters), then the characters that are in
    /// none of them.
    ///
    /// Swift splits names into grapheme clusters and lowercases them itself, so a gram is sure only
    /// where both agree with PostgreSQL's code points and lower():
    /// - Only grams away from the ends of the text. At the ends the name's neighbours are unknown:
    ///   a combining mark after the text's last character, or a prepended mark (such as U+0600)
    ///   before its first, joins that character into a larger cluster. Inside the text the
    ///   neighbours are the text's own, which Swift split off already.
    /// - Only characters that pass `isSureCharacter`: one scalar, lowercased alike by both, and
    ///   joined to a neighbour only by rules that look at that neighbour alone, so a character
    ///   that stands alone inside the text stands alone in the name too.
    /// Whitespace is never sure, so no gram spans it (as in `grams(of:)`).
    static func sureGrams(of text: String) -> [String] {
        let characters = Array(text)
        guard characters.count >= 3 else { return [] }
        let inner = 1..<(characters.count - 1)
        var pairs: [String] = [], singles: [String] = [], paired = Set<Int>()
        for index in inner where index + 1 < inner.upperBound
            && isSureCharacter(characters[index]) && isSureCharacter(characters[index + 1]) {
            let pair = String(characters[index]) + String(characters[index + 1])
            if !pairs.contains(pair) { pairs.append(pair) }
            paired.formUnion([index, index + 1])
        }
        for index in inner where !paired.contains(index) && isSureCharacter(characters[index]) {
            let single = String(characters[index])
            if !singles.contains(single) { singles.append(single) }
        }
        return Array((pairs + singles).prefix(6))
    }

    /// A character of one scalar that joins a neighbour into one grapheme cluster only through the
    /// neighbour itself (a prepended mark before it, a combining mark or joiner after it, Hangul jamo
    /// next to a syllable), and that Swift's lowercased() gives for every character PostgreSQL's
    /// lower() turns into it: ASCII except whitespace, capitals and "i" (PostgreSQL's libc locales
    /// lower "İ" to "i", Swift to "i̇"), kana, CJK ideographs and Hangul syllables.
    static func isSureCharacter(_ character: Character) -> Bool {
        let scalars = character.unicodeScalars
        guard scalars.count == 1, let value = scalars.first?.value else { return false }
        switch value {
        case 0x21...0x7E: return value != 0x69 && !(0x41...0x5A).contains(value)
        case 0x3041...0x3096, 0x30A1...0x30FA, 0x30FC, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xAC00...0xD7A3: return true
        default: return false
        }
    }
}

extension GroupsFeature: GroupRequests {}
