import Foundation
import ChatConfig
import ChatFastCGI
import ChatCache

/// The process manager (php-fpm's model): owns the listening socket, starts worker processes by
/// fork+exec of its own binary, replaces workers that die, reloads gracefully on SIGHUP and stops
/// gracefully on SIGTERM. It runs no request code itself.
public final class Supervisor {
    let config: Config
    let executable: String
    var listenFD: Int32 = -1
    /// The change counters every worker of every generation shares (`ChangeStripes`).
    var changesFD: Int32 = -1
    /// The workers' scoreboard (`Scoreboard`), shared by every generation.
    var scoreboardFD: Int32 = -1

    struct Worker {
        var pid: pid_t
        var generation: Int
        var started: Date
    }

    var workers: [pid_t: Worker] = [:]
    /// Old workers told to drain; they are no longer replaced when they exit.
    var draining: Set<pid_t> = []
    var generation = 0
    /// Slots waiting to be refilled after a crash, with the time they may start.
    var pendingRestarts: [Date] = []
    var consecutiveFailures = 0

    public init(config: Config) {
        self.config = config
        self.executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
    }

    public func run() -> Int32 {
        Log.processTag = "supervisor \(getpid())"
        Signals.blockHandled()
        signal(SIGPIPE, SIG_IGN)
        do {
            try openSocket()
        } catch {
            Log.error("supervisor.listen_failed", ["listen": config.listen, "error": "\(error)"])
            return 1
        }
        if let pidFile = config.pidFile {
            try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        }
        Log.info("supervisor.started", ["listen": config.listen, "workers": config.workers, "threads": config.threads])
        generation = 1
        for _ in 0..<config.workers { _ = spawn(waitForReady: false) }

        while true {
            let signal = Signals.wait(timeout: 0.5)
            switch signal {
            case SIGCHLD?, nil:
                reap()
                startDueRestarts()
            case SIGHUP?:
                reap()
                reload()
            case SIGTERM?, SIGINT?, SIGQUIT?:
                stop()
                return 0
            default:
                break
            }
        }
    }

    // MARK: socket

    struct ListenError: Error, CustomStringConvertible { var description: String }

    func openSocket() throws {
        let isTCP = !config.listen.hasPrefix("/") && config.listen.contains(":")
        if !isTCP {
            // Only ever remove a stale *socket*: never a file someone put there.
            var st = stat()
            if lstat(config.listen, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                    throw ListenError(description: "\(config.listen) exists and is not a socket")
                }
                unlink(config.listen)
            }
        }
        let fd = FastCGIServer.openSocket(config.listen, backlog: 1024)
        guard fd >= 0 else { throw ListenError(description: "cannot listen on \(config.listen)") }
        if !isTCP {
            if let group = config.socketGroup {
                guard let entry = getgrnam(group) else {
                    close(fd)
                    throw ListenError(description: "socket_group: no group named \(group)")
                }
                guard chown(config.listen, uid_t.max, entry.pointee.gr_gid) == 0 else {
                    close(fd)
                    throw ListenError(description: "socket_group: cannot give \(config.listen) to \(group) (errno \(errno))")
                }
            }
            chmod(config.listen, mode_t(config.socketMode))
        }
        // Non-blocking: every worker thread waits for this socket (epoll) and only one wins each accept.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        listenFD = Supervisor.keepAboveChildDescriptors(fd)
        // Made once, so that a reload's new workers share them with the old ones.
        scoreboardFD = Supervisor.keepAboveChildDescriptors(Scoreboard.makeSegment(), orWarn: "supervisor.no_scoreboard")
        changesFD = Supervisor.keepAboveChildDescriptors(ChangeStripes.makeSegment(), orWarn: "supervisor.no_shared_counters")
    }

    /// `fd` moved above the descriptors a child gets (3 to 6), close-on-exec in the supervisor;
    /// -1 (logged as `event`) when there is none.
    static func keepAboveChildDescriptors(_ fd: Int32, orWarn event: String = "supervisor.no_descriptor") -> Int32 {
        guard fd >= 0 else {
            Log.warn(event, ["errno": errno])
            return -1
        }
        let moved = fcntl(fd, F_DUPFD_CLOEXEC, 10)
        close(fd)
        return moved
    }

    // MARK: workers

    /// Starts one worker; with `waitForReady`, returns the read end of its readiness pipe.
    func spawn(waitForReady: Bool) -> (pid: pid_t, ready: Int32)? {
        let pipeFDs = makeCloseOnExecPipe()
        guard pipeFDs[0] >= 0 else { return nil }
        let readEnd = fcntl(pipeFDs[0], F_DUPFD_CLOEXEC, 10)
        let writeEnd = fcntl(pipeFDs[1], F_DUPFD_CLOEXEC, 10)
        close(pipeFDs[0]); close(pipeFDs[1])
        defer { close(writeEnd) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, listenFD, WorkerProcess.listenFD)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, WorkerProcess.readyFD)
        if changesFD >= 0 { posix_spawn_file_actions_adddup2(&actions, changesFD, WorkerProcess.changesFD) }
        if scoreboardFD >= 0 { posix_spawn_file_actions_adddup2(&actions, scoreboardFD, WorkerProcess.scoreboardFD) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = Signals.set([])
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = Signals.set(Signals.handled + [SIGPIPE, SIGUSR1])
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var arguments = [executable, "worker"]
        if let path = config.path { arguments += ["--config", path] }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }

        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, &argv, environ)
        guard rc == 0 else {
            Log.error("supervisor.spawn_failed", ["errno": rc])
            close(readEnd)
            return nil
        }
        workers[pid] = Worker(pid: pid, generation: generation, started: Date())
        Log.info("supervisor.worker_started", ["pid": pid, "generation": generation])
        if !waitForReady { close(readEnd); return (pid, -1) }
        return (pid, readEnd)
    }

    /// Collects exited workers; a worker of the current generation that died is replaced with backoff.
    func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            guard let worker = workers.removeValue(forKey: pid) else { continue }
            let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
            let killedBy = (status & 0x7f) != 0 ? status & 0x7f : 0
            if draining.remove(pid) != nil {
                Log.info("supervisor.worker_retired", ["pid": pid, "exit": exitCode])
                continue
            }
            guard worker.generation == generation else { continue }
            let lived = Date().timeIntervalSince(worker.started)
            consecutiveFailures = lived < 5 ? consecutiveFailures + 1 : 0
            // 0.1 s, 0.2 s, 0.4 s … up to 30 s while workers keep dying young.
            let delay = consecutiveFailures == 0 ? 0 : min(30, 0.1 * pow(2, Double(consecutiveFailures - 1)))
            Log.warn("supervisor.worker_died", ["pid": pid, "exit": exitCode, "signal": killedBy,
                                                "restart_in_s": String(format: "%.1f", delay)])
            pendingRestarts.append(Date().addingTimeInterval(delay))
        }
    }

    func startDueRestarts() {
        let now = Date()
        let due = pendingRestarts.filter { $0 <= now }
        pendingRestarts.removeAll { $0 <= now }
        for _ in due { _ = spawn(waitForReady: false) }
    }

    /// Graceful reload: a new generation starts and reports ready before the old one drains, so the
    /// listening socket always has threads accepting and no request fails.
    func reload() {
        Log.info("supervisor.reload")
        let old = workers.values.filter { $0.generation == generation }.map(\.pid)
        generation += 1
        pendingRestarts.removeAll()
        var readyPipes: [Int32] = []
        for _ in 0..<config.workers {
            if let started = spawn(waitForReady: true) { readyPipes.append(started.ready) }
        }
        let readyCount = waitForReady(readyPipes, timeoutSeconds: 30)
        if readyCount == 0 {
            Log.error("supervisor.reload_failed", ["reason": "no new worker became ready"])
            // Keep serving with the old generation.
            for (pid, worker) in workers where worker.generation == generation { kill(pid, SIGKILL); draining.insert(pid) }
            generation -= 1
            return
        }
        for pid in old {
            draining.insert(pid)
            kill(pid, SIGTERM)
        }
        // Fill any slot whose new worker did not come up.
        for _ in readyCount..<config.workers { pendingRestarts.append(Date().addingTimeInterval(1)) }
        Log.info("supervisor.reloaded", ["generation": generation, "ready": readyCount])
    }

    func waitForReady(_ pipes: [Int32], timeoutSeconds: Double) -> Int {
        var pending = pipes
        var ready = 0
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while !pending.isEmpty && Date() < deadline {
            var fds = pending.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), 200)
            if n <= 0 { continue }
            var still: [Int32] = []
            for entry in fds {
                if entry.revents == 0 { still.append(entry.fd); continue }
                var byte: UInt8 = 0
                if read(entry.fd, &byte, 1) == 1 && byte == UInt8(ascii: "R") { ready += 1 }
                close(entry.fd)
            }
            pending = still
        }
        for fd in pending { close(fd) }
        return ready
    }

    /// Graceful stop: workers drain (bounded by the configured timeout), then the socket goes away.
    func stop() {
        Log.info("supervisor.stopping", ["workers": workers.count])
        close(listenFD)
        for pid in workers.keys { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(Double(config.shutdownTimeoutSeconds) + 5)
        while !workers.isEmpty && Date() < deadline {
            _ = Signals.wait(timeout: 0.2)
            draining.formUnion(workers.keys)
            reap()
        }
        for pid in workers.keys {
            Log.warn("supervisor.worker_killed", ["pid": pid, "reason": "shutdown timeout"])
            kill(pid, SIGKILL)
        }
        let isTCP = !config.listen.hasPrefix("/") && config.listen.contains(":")
        if !isTCP { unlink(config.listen) }
        if let pidFile = config.pidFile { unlink(pidFile) }
        Log.info("supervisor.stopped")
    }
}
