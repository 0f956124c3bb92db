import ChatHTTP
import ChatPostgres
import ChatRouting
import ChatCache
import Accounts
import Events

/// What the social routes ask of the groups feature, which sits above this one: a request to join
/// a group and its acceptance (`destType` 2), and the rendered `ready.groups` list.
public protocol GroupRequests: AnyObject {
    func requestJoin(_ c: RequestContext, groupId: Int64, message: String) throws -> Response
    func acceptJoin(_ c: RequestContext, requesterId: Int64, groupId: Int64) throws -> Response
    /// The statement listing a user's groups, rendered by `renderGroupsOf`.
    func groupsOfStatement(_ userId: Int64) -> SQL
    func renderGroupsOf(_ result: PGResult, db: PGConnection) throws -> [UInt8]
}

/// Friends, friend requests, blocks and per-conversation settings (API.md §3), plus the social
/// parts of `ready` and `getUserById`.
///
/// Friendship is mutual and stored as one row per side. Everything that changes a pair of users
/// runs in one transaction holding an advisory lock on the pair, so that two people asking each
/// other at the same instant end as one friendship, never as two crossed pending requests.
public final class SocialFeature: ReadyContributor {
    let groups: GroupRequests

    /// `ready.friends`, `ready.requests` and `ready.groups` as rendered for each user, per worker
    /// process (see sql/0004_list_versions.sql and sql/0005_ready_versions.sql).
    let friendLists: VersionedCache<[UInt8]>
    let requestLists: VersionedCache<[UInt8]>
    let groupLists: VersionedCache<[UInt8]>
    let settingLists: VersionedCache<RenderedSettingLists>

    /// `ready.blocks`, `ready.tops` and `ready.ignores`, rendered.
    struct RenderedSettingLists {
        var blocks: [UInt8]
        var tops: [UInt8]
        var ignores: [UInt8]
    }

    /// - Parameter budgets: memory for the rendered lists (`CacheRegistry`; none: render on every
    ///   request).
    public init(groups: GroupRequests, budgets: CacheBudgets = .none) {
        self.groups = groups
        friendLists = VersionedCache(SocialFeature.friendListsKind, budgets: budgets) { $0.count + 64 }
        requestLists = VersionedCache(SocialFeature.requestListsKind, budgets: budgets) { $0.count + 64 }
        groupLists = VersionedCache(SocialFeature.groupListsKind, budgets: budgets) { $0.count + 64 }
        settingLists = VersionedCache(SocialFeature.settingListsKind, budgets: budgets) {
            $0.blocks.count + $0.tops.count + $0.ignores.count + 96
        }
    }

    public func register(on router: Router) {
        router.add("/chat/requestFriend", requestFriend)
        router.add("/chat/acceptRequest", acceptRequest)
        router.add("/chat/delFriend", delFriend)
        router.add("/chat/updateRemark", updateRemark)
        router.add("/chat/setBlock", setBlock)
        router.add("/chat/removeBlack", removeBlack)
        router.add("/chat/setIgonre", setIgnore)
        router.add("/chat/setTop", setTop)
        router.add("/chat/cancelTop", cancelTop)
    }

    // MARK: shared checks

    public static func areFriends(_ db: PGConnection, _ a: Int64, _ b: Int64) throws -> Bool {
        try SocialStore(db: db).areFriends(a, b)
    }

    /// True when `blocker` blocks `blocked`.
    public static func blocks(_ db: PGConnection, _ blocker: Int64, _ blocked: Int64) throws -> Bool {
        try SocialStore(db: db).blocks(blocker, blocked)
    }

    static func makeFriends(_ store: SocialStore, _ a: Int64, _ b: Int64) throws {
        let db = store.db
        try Profile.holdSteady(db, [a, b])
        try store.addFriendship(a, b)
        RelationCache.forget([a, b], db: db)
        // Whatever either had pending towards the other is settled now.
        try store.settleRequests(between: a, and: b)
        try EventLog.append(db, to: [a], type: "friend_added", payload: ["userId": .int(b)])
        try EventLog.append(db, to: [b], type: "friend_added", payload: ["userId": .int(a)])
    }

    // MARK: requests

    func requestFriend(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        let message = try c.params.string("message", maxLength: 128) ?? ""
        if destType == 2 { return try groups.requestJoin(c, groupId: destId, message: message) }
        let me = c.userId
        guard destId != me else { return .outcome(-1, "you cannot add yourself") }
        let db = try c.db
        let store = SocialStore(db: db)
        return try db.transaction {
            try store.lockPair(me, destId)
            guard let needsAuth = try store.needsAuth(destId) else {
                return .outcome(-1, "no such user")
            }
            if try store.areFriends(me, destId) { return .outcome(-1, "already friends") }
            if try store.blocks(destId, me) { return .outcome(-1, "this user does not accept your requests") }
            if try store.blocks(me, destId) { return .outcome(-1, "you block this user; unblock them first") }
            let theyAsked = try store.hasPendingRequest(from: destId, to: me)
            if theyAsked || !needsAuth {
                try SocialFeature.makeFriends(store, me, destId)
                return .outcome(2, "you are now friends")
            }
            try Profile.holdSteady(db, [me])
            let request = try store.fileRequest(from: me, to: destId, message: message)
            let requestId = request.id
            // Asking again while the request is pending updates it (message, time) without a new
            // event: the other side hears of a request once, however often it is sent.
            if request.isNew {
                try EventLog.append(db, to: [destId], type: "friend_request",
                                    payload: ["requestId": .int(requestId), "fromId": .int(me), "destType": 1,
                                              "message": .string(message)])
            }
            return .outcome(1, "waiting for approval", data: ["requestId": .int(requestId)])
        }
    }

    func acceptRequest(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        if destType == 2 {
            let groupId = try c.params.requiredId("groupId")
            return try groups.acceptJoin(c, requesterId: destId, groupId: groupId)
        }
        let friendGroupId = try c.params.int64("friendGroupId", in: 0...Int64.max) ?? 0
        let me = c.userId
        let db = try c.db
        let store = SocialStore(db: db)
        return try db.transaction {
            try store.lockPair(me, destId)
            guard let requestId = try store.pendingRequestId(from: destId, to: me) else { return .outcome(-1, "no such pending request") }
            if try store.blocks(me, destId) { return .outcome(-1, "you block this user; unblock them first") }
            try SocialFeature.makeFriends(store, me, destId)
            try store.setFriendGroup(friendGroupId, of: me, for: destId)
            try EventLog.append(db, to: [destId], type: "request_accepted",
                                payload: ["requestId": .int(requestId), "userId": .int(me), "destType": 1])
            return .ok()
        }
    }

    func delFriend(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let me = c.userId
        let db = try c.db
        let store = SocialStore(db: db)
        return try db.transaction {
            try store.lockPair(me, destId)
            guard try store.removeFriendship(me, destId) else { return .outcome(-1, "not your friend") }
            RelationCache.forget([me, destId], db: db)
            try EventLog.append(db, to: [destId], type: "friend_removed", payload: ["userId": .int(me)])
            try EventLog.append(db, to: [me], type: "friend_removed", payload: ["userId": .int(destId)])
            return .ok()
        }
    }

    func updateRemark(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        guard let remark = try c.params.string("remark", maxLength: 32) else { throw HTTPError.missing("remark") }
        let db = try c.db
        let updated = try SocialStore(db: db).setRemark(remark, of: c.userId, for: destId)
        RelationCache.forget([c.userId], db: db)
        return updated ? .ok() : .outcome(-1, "not your friend")
    }

    // MARK: blocks

    func setBlock(_ c: RequestContext) throws -> Response {
        let blockId = try c.params.requiredId("blockId")
        let me = c.userId
        guard blockId != me else { return .outcome(-1, "you cannot block yourself") }
        let db = try c.db
        let store = SocialStore(db: db)
        return try db.transaction {
            try store.lockPair(me, blockId)
            guard try store.userExists(blockId) else {
                return .outcome(-1, "no such user")
            }
            try store.addBlock(by: me, of: blockId)
            RelationCache.forget([me], db: db)
            // Pending requests between the two are withdrawn, both ways: a blocked user cannot ask
            // you, and cannot accept an old request of yours either.
            try store.withdrawFriendRequests(between: me, and: blockId)
            // So are their requests to join groups you own.
            try store.withdrawJoinRequests(from: blockId, toGroupsOf: me)
            return .ok()
        }
    }

    func removeBlack(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let db = try c.db
        try SocialStore(db: db).removeBlock(by: c.userId, of: destId)
        RelationCache.forget([c.userId], db: db)
        return .ok()
    }

    // MARK: conversation settings

    /// The conversation must exist: a user, or a live group.
    func conversationTarget(_ c: RequestContext) throws -> (destId: Int64, destType: Int)? {
        let destId = try c.params.requiredId("destId")
        let destType = try c.params.requiredInt("destType", in: 1...2)
        return try SocialStore(db: c.db).conversationExists(destId: destId, destType: destType) ? (destId, destType) : nil
    }

    func setIgnore(_ c: RequestContext) throws -> Response {
        let receiveTip = try c.params.requiredInt("receiveTip", in: 0...1)
        guard let target = try conversationTarget(c) else { return .outcome(-1, "no such conversation") }
        try SocialStore(db: c.db).setMuted(receiveTip == 0, of: c.userId, destType: target.destType, destId: target.destId)
        return .ok()
    }

    func setTop(_ c: RequestContext) throws -> Response { try setPinned(c, true) }
    func cancelTop(_ c: RequestContext) throws -> Response { try setPinned(c, false) }

    func setPinned(_ c: RequestContext, _ pinned: Bool) throws -> Response {
        guard let target = try conversationTarget(c) else { return .outcome(-1, "no such conversation") }
        try SocialStore(db: c.db).setPinned(pinned, of: c.userId, destType: target.destType, destId: target.destId)
        return .ok()
    }

    // MARK: contributions to accounts

    /// The relation as columns to join into another statement (getUserById, queryUser): remark
    /// (NULL when not friends) and blocked.
    public static func relationColumns(me: SQL, other: SQL) -> (columns: SQL, joins: SQL) {
        SocialStore.relationColumns(me: me, other: other)
    }

    /// friends, groups, tops, ignores, blocks and pending requests for `ready`. Their versions are
    /// columns of the user's row; each list (friends, requests, groups, and blocks with tops and
    /// ignores) comes from its cache when its version is the same, and is otherwise read in
    /// `ready`'s second round trip, rendered and kept.
    ///
    /// The group list's version moves with anything ready.groups shows, also when it changes in
    /// one of the groups rather than in the user's own memberships (sql/0005_ready_versions.sql).
    public func readyPart(_ c: RequestContext) -> AccountsFeature.ReadyPart {
        AccountsFeature.ReadyPart(userColumns: SocialStore.readyVersionColumns) { input in
            let user = input.user, userId = input.userId
            let friendVersion: Int64 = try user.decode("friend_list_version")
            let requestVersion: Int64 = try user.decode("request_list_version")
            let groupVersion: Int64 = try user.decode("group_list_version")
            let settingVersion: Int64 = try user.decode("setting_list_version")
            let friends = self.friendLists.value(for: userId, version: friendVersion)
            let requests = self.requestLists.value(for: userId, version: requestVersion)
            let groups = self.groupLists.value(for: userId, version: groupVersion)
            let settings = self.settingLists.value(for: userId, version: settingVersion)
            var statements: [SQL] = []
            if friends == nil { statements.append(SocialStore.friendList(of: userId)) }
            if requests == nil { statements.append(SocialStore.requestList(of: userId)) }
            if groups == nil { statements.append(self.groups.groupsOfStatement(userId)) }
            if settings == nil { statements.append(SocialStore.settingLists(of: userId)) }
            return AccountsFeature.ReadyPlan(statements: statements) { results, data in
                // The cached copy, or the next result rendered and kept at the version read above.
                var next = 0
                func take<Value>(_ cached: Value?, _ cache: VersionedCache<Value>, _ version: Int64,
                                 _ render: (PGResult) throws -> Value) rethrows -> Value {
                    if let cached { return cached }
                    let value = try render(results[next])
                    next += 1
                    cache.store(value, for: userId, version: version)
                    return value
                }
                let friendBytes = try take(friends, self.friendLists, friendVersion, FriendWriter.list)
                let requestBytes = try take(requests, self.requestLists, requestVersion, RequestWriter.list)
                let groupBytes = try take(groups, self.groupLists, groupVersion) { try self.groups.renderGroupsOf($0, db: try c.db) }
                let settingLists = try take(settings, self.settingLists, settingVersion, SettingListsWriter.lists)
                for index in data.indices {
                    switch data[index].0 {
                    case "friends": data[index].1 = .bytes(friendBytes)
                    case "groups": data[index].1 = .bytes(groupBytes)
                    case "tops": data[index].1 = .bytes(settingLists.tops)
                    case "ignores": data[index].1 = .bytes(settingLists.ignores)
                    case "blocks": data[index].1 = .bytes(settingLists.blocks)
                    case "requests": data[index].1 = .bytes(requestBytes)
                    default: break
                    }
                }
            }
        }
    }
}
