import ChatConfig
import ChatPostgres
import ChatRouting
import Events
import Uploads
import Accounts
import Social
import Groups
import Messages
import Moments

/// Wires the features onto one router. This is the only place that knows every feature.
public enum Application {
    public static func makeRouter(config: Config) -> (Router, AccountsFeature, UploadsFeature) {
        let router = Router()
        let sender: SMSSender = config.smsSender == "command"
            ? CommandSMSSender(command: config.smsCommand ?? "")
            : OutboxSMSSender(path: config.smsOutbox)
        // Every cache's share of list_cache_mib and profile_cache_mib: CacheRegistry.
        let budgets = CacheRegistry.budgets(config)
        // A feature gets what it asks of the features above it in its initializer, so those are
        // made first (docs/architecture.md, "Layers and folders").
        let relations = RelationCache(budgets: budgets)
        let groups = GroupsFeature(budgets: budgets, relations: relations)
        let social = SocialFeature(groups: groups, budgets: budgets)
        let messages = MessagesFeature(budgets: budgets, relations: relations,
                                       sendLimiter: LocalRateLimiter(limit: config.sendMsgLimit))
        let uploads = UploadsFeature(config: config)
        let moments = MomentsFeature(config: config, uploads: uploads)
        let accounts = AccountsFeature(config: config, sender: sender, budgets: budgets, relations: relations,
                                       readyParts: [social, messages], albums: moments,
                                       profileDependents: [GroupsFeature.forgetMemberLists(of:db:)])
        accounts.register(on: router)
        uploads.register(on: router)
        groups.register(on: router)
        social.register(on: router)
        messages.register(on: router)
        moments.register(on: router)
        StatusRoutes.register(on: router)
        // The FastCGI ceiling for `make bench`: no parsing beyond the query, no database.
        router.add("/_bench/fcgi", auth: false) { _ in .ok() }
        return (router, accounts, uploads)
    }

    /// Every feature's housekeeping, run by `PeriodicJobs` in the workers.
    public static func jobs() -> [PeriodicJobs.Job] {
        AccountsFeature.cleanupJobs + EventLog.cleanupJobs + UploadsFeature.cleanupJobs
    }

    /// The responder, and the uploads feature, whose temporary files the worker sweeps.
    public static func makeResponder(config: Config) -> (Responder, UploadsFeature) {
        let (router, accounts, uploads) = makeRouter(config: config)
        let responder = Responder(router: router, maxFormBytes: config.maxFormBytes, sessions: accounts.sessionChecks)
        responder.databaseWaitNanos = UInt64(config.dbWaitMs) * 1_000_000
        return (responder, uploads)
    }
}
