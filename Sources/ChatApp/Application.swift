import ChatConfig
import ChatHTTP
import ChatPostgres
import ChatRouting
import Events
import Uploads
import Accounts
import Social
import Groups
import Messages

/// Wires the features onto one router. This is the only place that knows every feature.
public enum Application {
    public static func makeRouter(config: Config) -> (Router, AccountsFeature, UploadsFeature) {
        let router = Router()
        let sender: SMSSender = config.smsSender == "command"
            ? CommandSMSSender(command: config.smsCommand ?? "")
            : OutboxSMSSender(path: config.smsOutbox)
        // Every cache's share of list_cache_mib and profile_cache_mib: CacheRegistry.
        let budgets = CacheRegistry.budgets(config)
        let accounts = AccountsFeature(config: config, sender: sender, budgets: budgets)
        accounts.register(on: router)
        let uploads = UploadsFeature(config: config)
        uploads.register(on: router)
        let groups = GroupsFeature(budgets: budgets)
        groups.register(on: router)
        let social = SocialFeature(groups: groups, budgets: budgets)
        social.register(on: router)
        accounts.relationColumns = SocialFeature.relationColumns
        let relations = RelationCache(budgets: budgets)
        accounts.cachedRelation = relations.relation(of:to:)
        accounts.relationFill = relations.fill(for:)
        groups.friendIds = relations.friendIds(of:)
        groups.relationFill = relations.fill(for:)
        accounts.profileDependents.append(GroupsFeature.forgetMemberLists(of:db:))
        accounts.readyContributors.append { context in social.readyPart(context) }
        let messages = MessagesFeature(budgets: budgets)
        messages.cachedRelation = relations.relation(of:to:)
        messages.relationFill = relations.fill(for:)
        messages.sendLimiter = LocalRateLimiter(limit: config.sendMsgLimit)
        messages.register(on: router)
        accounts.readyContributors.append { context in messages.readyPart(context) }
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
