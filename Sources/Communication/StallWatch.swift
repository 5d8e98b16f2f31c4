import CMPIShim
import Foundation

/// Notices a rank that keeps the others waiting in a collective without making progress
/// (stopped, frozen, hung in its own work) and names it, so the job can end instead of hanging.
///
/// Design: a stalled rank answers nothing, so detection must not need its help; MPI runs
/// `MPI_THREAD_FUNNELED`, so a heartbeat thread may not call MPI; a progress file would need a
/// run directory that every node sees. So the training thread itself does it: every collective
/// is issued non-blocking and polled. After `timeout` seconds in one collective a rank asks every
/// other rank, over a duplicate of the world communicator, whether it is waiting too. Ranks that
/// wait answer at once (they poll the same way); a rank doing a long job of its own (rank 0
/// writing a checkpoint or evaluating) has announced it with `whileBusy` and is waited for, but
/// not forever: a rank frozen inside its announced work sends nothing more, so once its
/// announcement is `busyTimeoutFactor` x `timeout` old it counts as stalled too. Any other rank
/// has made no progress for `timeout` seconds: it is stalled. The lowest-numbered
/// waiting rank reports; the others keep waiting for the job to be aborted.
public final class StallWatch {
    /// Seconds without progress before a rank counts as stalled.
    public let timeout: Double
    /// How many stall timeouts a rank's own announced work may last (a checkpoint write or an
    /// evaluation on rank 0 can take far longer than one collective should).
    public static let busyTimeoutFactor = 20.0
    /// Where the ranks are, for the report (e.g. "phase 1, epoch 2, step 7").
    public var position = "setting up"

    private let control: MPI_Comm?
    private let rank: Int
    private let size: Int
    /// Collectives entered so far; the same on every rank that keeps up.
    private var sequence: Int64 = 0
    /// Ranks doing announced work of their own, with when this rank learnt of it.
    private var busyRanks: [Int: Date] = [:]
    /// Control messages in flight, with the buffers they send from.
    private var outgoing: [(request: MPI_Request?, message: UnsafeMutablePointer<Int64>)] = []

    private enum Kind: Int64 {
        case busy = 1, idle, query, waiting
    }

    private static let tag: Int32 = 7

    init(timeout: Double, world: MPI_Comm?, rank: Int, size: Int) throws {
        self.timeout = timeout
        self.rank = rank
        self.size = size
        var duplicate: MPI_Comm?
        let code = MPI_Comm_dup(world, &duplicate)
        guard code == shim_success() else {
            throw CommunicatorError.mpiCallFailed(operation: "duplicate the world communicator", code: code, message: "")
        }
        MPI_Comm_set_errhandler(duplicate, shim_errors_return())
        control = duplicate
    }

    deinit {
        for message in outgoing { message.message.deallocate() }
    }

    /// Runs `body` (work of this rank alone that may take longer than `timeout`), telling the
    /// other ranks not to count the time against it.
    @discardableResult
    public func whileBusy<Result>(_ body: () throws -> Result) rethrows -> Result {
        broadcast(.busy, 0)
        defer { broadcast(.idle, 0) }
        return try body()
    }

    /// Polls `requests` (non-blocking collectives, counted as one) to completion, or throws `StalledRanks`.
    func complete(_ requests: inout [MPI_Request?], _ operation: String) throws {
        sequence += 1
        let entered = Date()
        var deadline = entered.addingTimeInterval(timeout)
        var asked: Date?
        var answered = Set<Int>()
        let grace = max(0.5, min(2, timeout / 4))
        while true {
            var done: Int32 = 0
            let code = MPI_Testall(Int32(requests.count), &requests, &done, nil)
            guard code == shim_success() else {
                throw CommunicatorError.mpiCallFailed(operation: operation, code: code, message: "")
            }
            if done != 0 { return }
            receiveControlMessages(answered: &answered)
            let now = Date()
            if asked == nil && now >= deadline {
                answered = []
                broadcast(.query, sequence)
                asked = now
            }
            if let askedAt = asked, now.timeIntervalSince(askedAt) >= grace {
                let busyLimit = Self.busyTimeoutFactor * timeout
                let stalled = (0..<size).filter { other in
                    other != rank && !answered.contains(other) && !(busyRanks[other].map { now.timeIntervalSince($0) < busyLimit } ?? false)
                }
                let waiting = answered.union([rank]).sorted()
                if !stalled.isEmpty && waiting.first == rank {
                    throw StalledRanks(ranks: stalled, waiting: waiting, seconds: now.timeIntervalSince(entered),
                                       operation: operation, position: position)
                }
                asked = nil
                deadline = now.addingTimeInterval(timeout)
            }
            sched_yield()
        }
    }

    /// Answers queries and records who is waiting or busy.
    private func receiveControlMessages(answered: inout Set<Int>) {
        while true {
            var flag: Int32 = 0
            var status = MPI_Status()
            guard MPI_Iprobe(MPI_ANY_SOURCE, Self.tag, control, &flag, &status) == shim_success(), flag != 0 else { break }
            var message: [Int64] = [0, 0]
            let source = Int(status.MPI_SOURCE)
            guard MPI_Recv(&message, 2, shim_int64(), status.MPI_SOURCE, Self.tag, control, nil) == shim_success() else { break }
            switch Kind(rawValue: message[0]) {
            case .busy: busyRanks[source] = Date()
            case .idle: busyRanks[source] = nil
            // A rank still finishing the previous collective is on its way, not stalled.
            case .query:
                send(.waiting, sequence, to: source)
                if message[1] >= sequence - 1 { answered.insert(source) }
            case .waiting:
                if message[1] >= sequence - 1 { answered.insert(source) }
            case nil: break
            }
        }
        outgoing.removeAll { entry in
            var entry = entry
            var done: Int32 = 0
            MPI_Test(&entry.request, &done, nil)
            if done != 0 { entry.message.deallocate() }
            return done != 0
        }
    }

    private func broadcast(_ kind: Kind, _ value: Int64) {
        for other in 0..<size where other != rank { send(kind, value, to: other) }
    }

    private func send(_ kind: Kind, _ value: Int64, to destination: Int) {
        let message = UnsafeMutablePointer<Int64>.allocate(capacity: 2)
        message[0] = kind.rawValue
        message[1] = value
        var request: MPI_Request?
        guard MPI_Isend(message, 2, shim_int64(), Int32(destination), Self.tag, control, &request) == shim_success() else {
            message.deallocate()
            return
        }
        outgoing.append((request, message))
    }
}

/// Ranks that kept the others waiting in a collective for `seconds` without progress.
public struct StalledRanks: Error, CustomStringConvertible {
    public var ranks: [Int]
    public var waiting: [Int]
    public var seconds: Double
    public var operation: String
    public var position: String

    public var description: String {
        func list(_ ranks: [Int]) -> String { "rank\(ranks.count == 1 ? "" : "s") " + ranks.map(String.init).joined(separator: ", ") }
        return "\(list(ranks)) stalled at \(position): no progress for \(Int(seconds.rounded())) s "
            + "(distributed.stallTimeout) while \(list(waiting)) waited (\(operation)); aborting the job"
    }
}
