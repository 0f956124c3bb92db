import Foundation
import ChatConfig
import ChatPostgres
import ChatServer
import Events
import Accounts

/// `chat-fcgi` subcommands. The executable's main.swift only calls `run`.
public enum CommandLineTool {
    static let usage = """
        usage: chat-fcgi <command> [--config FILE]
          serve                          start the supervisor and its worker processes
          migrate                        apply the numbered migrations in sql_dir
          admin auth approve|reject ID   decide a real-name verification under review
          check-config                   load the configuration and report problems
          routes                         list the routes (for docs and tests)
        The config file defaults to $CHAT_CONFIG; every key can be overridden as CHAT_<KEY>.
        """

    public static func run(_ arguments: [String]) -> Int32 {
        var args = Array(arguments.dropFirst())
        var configPath = ProcessInfo.processInfo.environment["CHAT_CONFIG"]
        if let index = args.firstIndex(of: "--config") {
            guard index + 1 < args.count else { return fail("--config needs a file") }
            configPath = args[index + 1]
            args.removeSubrange(index...(index + 1))
        }
        guard let command = args.first else { return fail(usage) }

        if command == "routes" {
            let (router, _, _) = Application.makeRouter(config: Config())
            for path in router.paths { print(path) }
            return 0
        }
        let config: Config
        do {
            config = try Config.load(path: configPath)
        } catch {
            return fail("configuration: \(error)")
        }
        Log.minimum = ["debug": .debug, "warn": .warn, "error": .error][config.logLevel] ?? .info

        switch command {
        case "serve":
            return Supervisor(config: config).run()
        case "worker":
            PeriodicJobs(conninfo: config.database, jobs: Application.jobs()).start()
            let notifier = Notifier.make(conninfo: config.database, channel: EventLog.channel)
            EventLog.notifier = notifier
            let touches = Sessions.makeTouches(conninfo: config.database)
            Sessions.touches = touches
            touches.start()
            defer { touches.stop() }
            let (responder, uploads) = Application.makeResponder(config: config)
            uploads.startSweeping()
            return WorkerProcess.run(config: config, responder: responder,
                                     wakeChannel: EventLog.channel, notifier: notifier,
                                     statistics: { [.uploadsInFlight: Int64(uploads.uploadsInFlight)] })
        case "migrate":
            do {
                let db = PGConnection(conninfo: config.database)
                let applied = try Migrator.migrate(db, directory: config.sqlDir)
                print(applied.isEmpty ? "migrations: up to date" : "migrations applied: \(applied.joined(separator: ", "))")
                return 0
            } catch {
                return fail("migrate: \(error)")
            }
        case "admin":
            guard args.count == 4, args[1] == "auth", args[2] == "approve" || args[2] == "reject",
                  let userId = Int64(args[3]) else { return fail(usage) }
            do {
                let db = PGConnection(conninfo: config.database)
                let changed = try AccountsFeature.decideVerification(userId: userId, approve: args[2] == "approve", db: db)
                if !changed { return fail("user \(userId) has no verification under review") }
                print("user \(userId): verification \(args[2] == "approve" ? "approved" : "rejected")")
                return 0
            } catch {
                return fail("admin: \(error)")
            }
        case "check-config":
            print("configuration ok: listen=\(config.listen) workers=\(config.workers) threads=\(config.threads)")
            return 0
        default:
            return fail(usage)
        }
    }

    static func fail(_ message: String) -> Int32 {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        return 2
    }
}
