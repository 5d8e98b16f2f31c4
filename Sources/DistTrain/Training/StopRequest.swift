import Dispatch
import Foundation
import Glibc

/// Turns SIGTERM, SIGINT and SIGUSR1 (Slurm preemption, Ctrl-C, the signal `mpirun` forwards to
/// every rank) into a flag the training loop polls between steps, so that the current step
/// finishes and a checkpoint is written before exit.
///
/// The signals are blocked from their default action and delivered through Dispatch sources,
/// so no state is touched from inside a signal handler.
// Unchecked: the flag is read and written under `lock`; the signal sources are set up once, before any other thread sees them.
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var requestedSignal: Int32?
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "disttrain.signals")

    public init() {}

    /// Starts listening for SIGTERM, SIGINT and SIGUSR1; returns once the sources listen.
    ///
    /// A source is registered asynchronously, and until then a signal would meet the ignored
    /// disposition and be lost; so the signals stay blocked meanwhile, and one sent in that
    /// window is delivered, pending, when they are unblocked. (Ignoring comes first: it would
    /// discard a pending signal.)
    public func install() {
        let signals = [SIGTERM, SIGINT, SIGUSR1]
        var blocked = sigset_t()
        sigemptyset(&blocked)
        for signalNumber in signals {
            Glibc.signal(signalNumber, SIG_IGN)
            sigaddset(&blocked, signalNumber)
        }
        pthread_sigmask(SIG_BLOCK, &blocked, nil)
        let registered = DispatchSemaphore(value: 0)
        for signalNumber in signals {
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler { [weak self] in self?.request(signal: signalNumber) }
            source.setRegistrationHandler { registered.signal() }
            source.resume()
            sources.append(source)
        }
        for _ in signals { _ = registered.wait(timeout: .now() + 10) }
        pthread_sigmask(SIG_UNBLOCK, &blocked, nil)
    }

    /// Records a stop request (also used by tests and by other ranks' requests).
    public func request(signal: Int32) {
        lock.lock()
        if requestedSignal == nil { requestedSignal = signal }
        lock.unlock()
    }

    /// The signal that asked to stop, if any.
    public var receivedSignal: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return requestedSignal
    }

    public var isRequested: Bool { receivedSignal != nil }
}
