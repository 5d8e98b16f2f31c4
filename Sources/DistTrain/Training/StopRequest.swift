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

    /// Starts listening for SIGTERM, SIGINT and SIGUSR1.
    public func install() {
        for signalNumber in [SIGTERM, SIGINT, SIGUSR1] {
            Glibc.signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler { [weak self] in self?.request(signal: signalNumber) }
            source.resume()
            sources.append(source)
        }
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
