import Foundation
import ChatConfig
import ChatHTTP
import ChatPostgres
import ChatRouting
import ChatCache
import ChatSecurity
import Uploads

/// Accounts and sessions (API.md §2): codes, registration, login, password reset, profile,
/// privacy settings, real-name verification, version check and user lookup.
public final class AccountsFeature {
    let config: Config
    let codes: VerificationCodes
    let limiter: RateLimiter
    /// A part of `ready` that another feature contributes (friends, groups, unread counts…): columns
    /// for the user's own row (expressions over `u`, the users row: short lists, and the versions
    /// of the long ones), then, given that row, a plan: the statements it still needs (none when
    /// its cached copies are current) and how it fills its fields from their results.
    ///
    /// `ready` reads the session and the user's row (with every part's columns) in one statement,
    /// then runs all parts' remaining statements together in one pipelined round trip, if any.
    public struct ReadyPart {
        /// Extra columns of the user's row (`users u`), each with an alias of its own (`AS …`).
        public var userColumns: [SQL]
        public var plan: (ReadyInput) throws -> ReadyPlan
        public init(userColumns: [SQL] = [], plan: @escaping (ReadyInput) throws -> ReadyPlan) {
            self.userColumns = userColumns
            self.plan = plan
        }
    }

    /// What a `ReadyPart` gets: the user's id and row, with its `userColumns` by their aliases.
    public struct ReadyInput {
        public let userId: Int64
        public let user: PGRow
    }

    /// A part's remaining statements, and how it fills `ready`'s fields from their results (in order).
    public struct ReadyPlan {
        public var statements: [SQL]
        public var fill: ([PGResult], inout [(String, JSON)]) throws -> Void
        public init(statements: [SQL] = [],
                    fill: @escaping ([PGResult], inout [(String, JSON)]) throws -> Void) {
            self.statements = statements
            self.fill = fill
        }
    }

    /// The parts of `ready` that other features show.
    let readyParts: [ReadyContributor]
    /// The same relation as SQL that `getUserById` joins to the profile: extra columns
    /// (`relation_remark`, NULL when not friends, and `relation_blocked`) given the acting user's
    /// expression and the other user's id expression, with the tables it needs.
    public typealias RelationColumns = (_ me: SQL, _ other: SQL) -> (columns: SQL, joins: SQL)
    /// The callers' relations to others (nil: getUserById shows none).
    let relations: RelationLookup?
    /// The album getUserById shows (nil: an empty one).
    let albums: AlbumSource?
    /// What else shows a user's profile and must forget it when it changes (the groups' member
    /// lists): each runs inside the change's transaction, with the user.
    let profileDependents: [(_ userId: Int64, _ db: PGConnection) throws -> Void]
    /// Sessions and profiles for getUserById (sessions for getGroupMember too).
    let caches: AccountCaches

    public static let loginFailureLimit = 5
    public static let loginFailureWindowMinutes = 15

    public init(config: Config, sender: SMSSender, budgets: CacheBudgets = .none, relations: RelationLookup? = nil,
                readyParts: [ReadyContributor] = [], albums: AlbumSource? = nil,
                profileDependents: [(_ userId: Int64, _ db: PGConnection) throws -> Void] = []) {
        self.config = config
        self.relations = relations
        self.readyParts = readyParts
        self.albums = albums
        self.profileDependents = profileDependents
        caches = AccountCaches(budgets: budgets)
        sessionChecks = SessionChecks(caches: caches)
        self.codes = VerificationCodes(secret: config.secretKey, sender: sender, allowedPrefixes: config.smsAllowedPrefixes,
                                       intervalSeconds: config.smsPerNumberIntervalSeconds, perDay: config.smsPerNumberPerDay)
        self.limiter = RateLimiter(config: config)
    }

    public func register(on router: Router) {
        router.add("/chat/getValidateNum", auth: false, getValidateNum)
        router.add("/chat/register", auth: false, registerUser)
        router.add("/chat/doLogin", auth: false, doLogin)
        router.add("/chat/findPwd", auth: false, findPwd)
        router.add("/getVersion", auth: false, getVersion)
        router.add("/chat/ready", authInQuery: true, ready)
        router.add("/chat/updateProfile", updateProfile)
        router.add("/chat/updateHead", updateHead)
        router.add("/chat/updatePrivateSetting", updatePrivateSetting)
        router.add("/chat/updateAuth", updateAuth)
        router.add("/chat/queryUser", queryUser)
        router.add("/chat/getUserById", authInQuery: true, getUserById)
    }

    /// Housekeeping: expired sessions and codes, and rate-limit history older than its window.
    public static let cleanupJobs: [PeriodicJobs.Job] = AccountsStore.cleanupJobs

    /// The session check handed to the request pipeline.
    public let sessionChecks: SessionChecks

    // MARK: codes, registration, login

    func getValidateNum(_ c: RequestContext) throws -> Response {
        let mobile = try c.params.mobile()
        let named = try c.params.string("purpose", maxLength: 16)
        var purpose = try named.map { name -> VerificationCodes.Purpose in
            guard let purpose = VerificationCodes.Purpose(rawValue: name), purpose != .account else {
                throw HTTPError.invalid("purpose")
            }
            return purpose
        }
        let db = try c.db
        // The per-number limits are the SMS limits (VerificationCodes.issue).
        try limiter.hit([("get_validate_num.per_address", c.request.remoteAddress)], db: db)
        if purpose == nil {
            // Not told: a new number registers; a registered one resets or confirms something.
            let registered = try AccountsStore(db: db).isRegistered(mobile: mobile)
            purpose = registered ? .account : .register
        }
        try codes.issue(mobile: mobile, purpose: purpose ?? .account, db: db)
        return .ok()
    }

    func registerUser(_ c: RequestContext) throws -> Response {
        let mobile = try c.params.mobile()
        let pwd = try c.params.md5Hex("pwd")
        let name = try c.params.required("name", maxLength: 32)
        let code = try c.params.required("validateNum", maxLength: 6)
        let headUrl = try c.params.string("headUrl", maxLength: 512) ?? ""
        if !headUrl.isEmpty && !isAcceptableHeadUrl(headUrl) { throw HTTPError.invalid("headUrl") }
        let recommender = try c.params.id("recommandUserId")
        let db = try c.db
        let store = AccountsStore(db: db)
        try limiter.hit([("register.per_mobile", mobile), ("register.per_address", c.request.remoteAddress)], db: db)

        if try store.isRegistered(mobile: mobile) {
            return .outcome(2, "mobile already registered")
        }
        guard try codes.verify(mobile: mobile, code: code, db: db) else {
            return .outcome(3, "wrong or expired verification code")
        }
        let hash = try PasswordHasher.hash(pwd)
        guard let userId = try store.createUser(mobile: mobile, pwdHash: hash, name: name, headUrl: headUrl,
                                                recommender: recommender) else {
            return .outcome(2, "mobile already registered")
        }
        Log.info("account.registered", ["uid": userId])
        // The original returns the new id as a string in `info`.
        return .envelope(code: 1, info: String(userId), data: ["userId": .int(userId)])
    }

    func doLogin(_ c: RequestContext) throws -> Response {
        let mobile = try c.params.mobile()
        let pwd = try c.params.md5Hex("pwd")
        let device = try c.params.int("device", in: 1...3) ?? 1
        let db = try c.db
        let store = AccountsStore(db: db)

        // Atomic throttle: under the number's lock, count the recent wrong passwords and, below the
        // limit, record this attempt as one before the (slow) hash check; a right password takes
        // it back. So N simultaneous wrong passwords count N, and the (limit+1)th waits.
        let attempt: (userId: Int64, hash: String, failureId: Int64)? = try db.transaction {
            try store.lockLogins(mobile: mobile)
            let failures = try store.loginFailures(mobile: mobile, windowMinutes: AccountsFeature.loginFailureWindowMinutes)
            if failures.count >= Int64(AccountsFeature.loginFailureLimit) {
                throw HTTPError.tooManyRequests("too many wrong passwords; try again later",
                                                retryAfterSeconds: Int(failures.retryAfterSeconds))
            }
            guard let user = try store.credentials(mobile: mobile) else { return nil }
            let failureId = try store.recordLoginFailure(mobile: mobile)
            return (user.userId, user.pwdHash, failureId)
        }
        guard let attempt else { return .outcome(2, "no such user") }
        guard PasswordHasher.verify(pwd, against: attempt.hash) else { return .outcome(3, "wrong password") }
        let userId = attempt.userId
        // The session is made only if the password checked is still the user's: the row is held
        // (FOR SHARE) until the session exists, so a password reset (which updates the row and
        // ends all sessions) either comes after and ends this session too, or came before and
        // this login is refused.
        let token: String? = try db.transaction {
            guard try store.heldPasswordHash(userId: userId) == attempt.hash else {
                try store.forgetLoginFailure(id: attempt.failureId)
                return nil
            }
            try store.clearLoginFailures(mobile: mobile)
            return try Sessions.create(userId: userId, device: device, db: db)
        }
        guard let token else { return .outcome(3, "wrong password") }
        let profile = try loadProfile(userId, db: db)
        Log.info("account.login", ["uid": userId, "device": device])
        return .ok(["token": .string(token), "userId": .int(userId), "user": profile])
    }

    func findPwd(_ c: RequestContext) throws -> Response {
        let mobile = try c.params.mobile()
        let pwd = try c.params.md5Hex("pwd")
        let code = try c.params.required("validateNum", maxLength: 6)
        let db = try c.db
        let store = AccountsStore(db: db)
        try limiter.hit([("find_pwd.per_mobile", mobile), ("find_pwd.per_address", c.request.remoteAddress)], db: db)
        guard let userId = try store.userId(mobile: mobile) else {
            return .outcome(2, "no such user")
        }
        guard try codes.verify(mobile: mobile, code: code, db: db) else {
            return .outcome(3, "wrong or expired verification code")
        }
        let hash = try PasswordHasher.hash(pwd)
        try db.transaction {
            try store.setPassword(userId: userId, pwdHash: hash)
            try Sessions.endAll(userId: userId, db: db)
            try store.clearLoginFailures(mobile: mobile)
        }
        Log.info("account.password_reset", ["uid": userId])
        return .ok()
    }

    func getVersion(_ c: RequestContext) throws -> Response {
        let device = try c.params.int("device", in: 1...2) ?? 1
        let version = config.versions[device] ?? Config.AppVersion()
        return .ok(["version": .string(version.version), "url": .string(version.url),
                    "force": .bool(version.force), "note": .string(version.note)])
    }

    // MARK: the signed-in user

    func ready(_ c: RequestContext) throws -> Response {
        let parts = readyParts.map { $0.readyPart(c) }
        // The session check and the user's row with the parts' columns: one statement.
        let user = try c.db.query(AccountsStore.readyUser(who: c.who, extraColumns: parts.flatMap(\.userColumns)))
        try c.adoptSession(from: user.first)
        guard let row = user.first else { throw HTTPError.unauthorized }
        let profile = try Profile.Columns(user)
        var data: [(String, JSON)] = [
            ("user", try Profile.json(row, profile, revealMobile: true)),
            ("friends", []), ("groups", []), ("tops", []), ("ignores", []), ("blocks", []),
            ("requests", []), ("unread", []),
            ("hasPayPwd", .bool(try row.decode("has_pay_pwd"))),
            ("isAuth", .int(try row[profile.authStatus])),
        ]
        let plans = try parts.map { try $0.plan(ReadyInput(userId: c.userId, user: row)) }
        // Whatever the parts could not take from their caches: one more round trip, if anything.
        let statements = plans.flatMap(\.statements)
        let results = statements.isEmpty ? [] : try c.db.pipeline(statements)
        var nextResult = 0
        for plan in plans {
            try plan.fill(Array(results[nextResult..<(nextResult + plan.statements.count)]), &data)
            nextResult += plan.statements.count
        }
        return .ok(.object(data))
    }

    func updateProfile(_ c: RequestContext) throws -> Response {
        // Validate everything first, so a bad field changes nothing.
        let city = try c.params.string("city", maxLength: 32)
        let name = try c.params.string("name", maxLength: 32)
        if let name, name.isEmpty { throw HTTPError.invalid("name") }
        let nickName = try c.params.string("nickName", maxLength: 32)
        let province = try c.params.string("province", maxLength: 32)
        let sex = try c.params.string("sex", maxLength: 1)
        if let sex, !["", "男", "女"].contains(sex) { throw HTTPError.invalid("sex") }
        let sign = try c.params.string("sign", maxLength: 128)
        let db = try c.db
        try AccountsStore(db: db).updateProfile(userId: c.userId, city: city, name: name, nickName: nickName,
                                                province: province, sex: sex, sign: sign)
        try profileChanged(c.userId, db: db)
        return .ok(try loadProfile(c.userId, db: db))
    }

    func updateHead(_ c: RequestContext) throws -> Response {
        let url = try c.params.required("headUrl", maxLength: 512)
        guard isAcceptableHeadUrl(url) else { throw HTTPError.invalid("headUrl") }
        let db = try c.db
        try AccountsStore(db: db).setHead(userId: c.userId, url: url)
        try profileChanged(c.userId, db: db)
        return .ok(try loadProfile(c.userId, db: db))
    }

    /// An avatar is either a file this server stored (its `/uploads/YYYY/MM/name.ext` path or URL)
    /// or an https URL.
    func isAcceptableHeadUrl(_ url: String) -> Bool {
        if url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) { return false }
        for prefix in Set([config.uploadsURL + "/", "/uploads/"]) where url.hasPrefix(prefix) {
            let relative = String(url.dropFirst(prefix.count))
            return UploadsFeature.isStoredName(relative)
                && FileManager.default.fileExists(atPath: config.uploadsDir + "/" + relative)
        }
        return url.hasPrefix("https://") && url.count > "https://".count
    }

    func updatePrivateSetting(_ c: RequestContext) throws -> Response {
        let needAuth = try c.params.flag("needAuth")
        let newNotification = try c.params.flag("newNotification")
        let searchMobile = try c.params.flag("searchMobile")
        guard let settings = try AccountsStore(db: c.db).updatePrivacy(userId: c.userId, needAuth: needAuth,
                                                                       newNotification: newNotification,
                                                                       searchMobile: searchMobile) else {
            throw HTTPError.unauthorized
        }
        return .ok(["needAuth": .int(settings.needAuth ? 1 : 0), "newNotification": .int(settings.newNotification ? 1 : 0),
                    "searchMobile": .int(settings.searchMobile ? 1 : 0)])
    }

    func updateAuth(_ c: RequestContext) throws -> Response {
        let idNo = IdNumber.normalized(try c.params.required("idNo", maxLength: 18))
        let mobile = try c.params.mobile()
        let name = try c.params.required("name", maxLength: 32)
        let code = try c.params.required("validateNum", maxLength: 6)
        guard IdNumber.isValid(idNo) else { throw HTTPError.invalid("idNo") }
        let db = try c.db
        let store = AccountsStore(db: db)
        guard let user = try store.mobileAndAuthStatus(userId: c.userId) else {
            throw HTTPError.unauthorized
        }
        guard user.mobile == mobile else { return .outcome(-1, "mobile is not your own") }
        if user.authStatus == 2 { return .outcome(-1, "already verified") }
        guard try codes.verify(mobile: mobile, code: code, db: db) else {
            return .outcome(3, "wrong or expired verification code")
        }
        let sealed = try Sealing.seal(Array(idNo.utf8), key: config.secretKey, purpose: "id-number")
        try db.transaction {
            try store.submitVerification(userId: c.userId, realName: name, idNoMasked: IdNumber.mask(idNo), idNoSealed: sealed)
            try profileChanged(c.userId, db: db)
        }
        return .ok(["isAuth": 1, "idNo": .string(IdNumber.mask(idNo)), "name": .string(name)])
    }

    func queryUser(_ c: RequestContext) throws -> Response {
        let mobile = try c.params.mobile()
        try limiter.hit([("query_user.per_user", String(c.userId)), ("query_user.per_mobile", mobile),
                         ("query_user.per_address", c.request.remoteAddress)], db: try c.db)
        // The profile and whether it is a friend's (to show the mobile in full) in one statement.
        guard let found = try AccountsStore(db: c.db).searchableProfile(mobile: mobile, seenBy: c.userId,
                                                                        relation: relations.map { $0.relationColumns }) else {
            return .ok(.null)
        }
        return .ok(try found.profile.json(revealMobile: try found.profile.userId == c.userId || found.isFriend))
    }

    /// Answers from this worker's copies when it holds the session, the profile and the caller's
    /// relations at their current change counters (docs/caching.md); otherwise one statement
    /// (the session check, the profile and the relation), plus, once the session is known, the
    /// caller's relations to keep, in the same round trip.
    func getUserById(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let hasRelation = relations != nil
        var relationToFill: PGConnection.Rider?
        if !c.isSessionPending {
            let me = c.userId
            let relation = hasRelation ? relations?.relation(of: me, to: destId) : (false, [], false)
            if let relation, let profile = caches.profiles.value(destId) {
                return .ok(.bytes(try userByIdAnswer(c, destId: destId, isFriend: relation.isFriend,
                                                     profile: { $0.raw(relation.isFriend || destId == me ? profile.revealed : profile.masked) },
                                                     remark: { w in relation.remark.withUnsafeBufferPointer { w.string(utf8: $0) } },
                                                     blocked: relation.blocked)))
            }
            if hasRelation, relation == nil { relationToFill = relations?.fill(for: me) }
        }
        let profileVersion = caches.profiles.version(of: destId)
        // The session check (while pending), the profile and the relation in ONE statement. No
        // row: no live session (401); a row with a NULL user id: no such user.
        let statement = AccountsStore.userById(who: c.who, destId: destId, relation: relations.map { $0.relationColumns })
        let result = try c.db.query(statement, riders: relationToFill.map { [$0] } ?? [])
        try c.adoptSession(from: result.first)
        let profile = try Profile.Columns(result)
        guard let row = result.first, !row.isNull(profile.userId) else { return .outcome(-1, "no such user") }
        if let profileVersion { try caches.storeProfile(row, profile, version: profileVersion) }
        let remark = hasRelation ? try result.column("relation_remark", as: String?.self) : nil
        let isFriend = try remark.map { try row[$0] != nil } ?? false
        let blocked: Bool = hasRelation ? try row.decode("relation_blocked") : false
        return .ok(.bytes(try userByIdAnswer(c, destId: destId, isFriend: isFriend,
                                             profile: { try Profile.writeFields(row, profile, revealMobile: destId == c.userId || isFriend, into: &$0) },
                                             remark: { w in if let remark { row.withBytes(remark) { w.string(utf8: $0) } } else { w.raw("\"\"") } },
                                             blocked: blocked)))
    }

    /// After a change of `userId`'s Profile columns (inside its transaction, if any): ends every
    /// copy that shows the profile once the change commits.
    func profileChanged(_ userId: Int64, db: PGConnection) throws {
        AccountCaches.forgetProfile(userId, db: db)
        for dependent in profileDependents { try dependent(userId, db) }
    }

    /// getUserById's `data`, written straight out (the hottest authenticated read: no JSON tree,
    /// no Strings).
    private func userByIdAnswer(_ c: RequestContext, destId: Int64, isFriend: Bool, profile: (inout JSONWriter) throws -> Void,
                                remark: (inout JSONWriter) -> Void, blocked: Bool) throws -> [UInt8] {
        let album = try albums?.album(c, of: destId) ?? []
        var w = JSONWriter(capacity: 512)
        w.raw("{\"user\":{")
        try profile(&w)
        w.raw("},\"isFriend\":")
        w.bool(isFriend)
        w.raw(",\"remark\":")
        remark(&w)
        w.raw(",\"blocked\":")
        w.bool(blocked)
        w.raw(",\"album\":")
        w.json(.array(album.map(JSON.string)))
        w.byte(UInt8(ascii: "}"))
        return w.bytes
    }

    /// The user's own profile (mobile in full), or null.
    func loadProfile(_ userId: Int64, db: PGConnection) throws -> JSON {
        try AccountsStore(db: db).profile(userId: userId)?.json(revealMobile: true) ?? .null
    }

    // MARK: operator actions

    /// `chat-fcgi admin auth approve|reject USERID`: decides a verification under review.
    public static func decideVerification(userId: Int64, approve: Bool, db: PGConnection) throws -> Bool {
        try db.transaction {
            let store = AccountsStore(db: db)
            let decided = try store.decideVerification(userId: userId, approve: approve)
            // A command, not a worker: the workers hear of this through the trigger's NOTIFY.
            AccountCaches.forgetProfile(userId, db: db)
            guard decided else { return false }
            try store.markVerificationDecided(userId: userId)
            return true
        }
    }
}
