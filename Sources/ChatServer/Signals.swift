import Foundation

/// Signal handling without async-signal-safety hazards: the signals are blocked in every thread
/// and consumed synchronously with `sigtimedwait` by one loop.
enum Signals {
    static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD]

    static func set(_ signals: [Int32]) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        return set
    }

    /// Blocks the handled signals in the calling thread (and in every thread it creates later).
    static func blockHandled() {
        var set = set(handled)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits up to `timeout` seconds for one of the handled signals; nil on time-out.
    static func wait(timeout: Double) -> Int32? {
        var set = set(handled)
        var ts = timespec(tv_sec: Int(timeout), tv_nsec: Int((timeout - Double(Int(timeout))) * 1e9))
        let signal = sigtimedwait(&set, nil, &ts)
        return signal > 0 ? signal : nil
    }
}
