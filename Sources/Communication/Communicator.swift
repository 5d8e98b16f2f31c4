import CMPIShim
import Foundation

/// The processes of one training run and the collective operations between them: MPI's world
/// communicator (`MPI_COMM_WORLD`).
///
/// Under `mpirun -n N` the N processes get ranks `0..<N`. A process started without `mpirun` is
/// an MPI singleton (Open MPI supports this): world size 1, and every collective leaves the data
/// as it is. The code path is the same in both cases.
///
/// Lifetime: MPI exists once per process. The first `Communicator.world()` initialises it
/// (`MPI_Init_thread` with `MPI_THREAD_FUNNELED`: only that thread may call collectives; the
/// trainer's compute threads never do) and registers an `atexit` handler that finalises it, so
/// `mpirun` sees every rank finish cleanly. Later `world()` calls return another handle on the
/// same world. After `finalize()` (or process exit) MPI cannot be started again and every
/// operation throws `CommunicatorError.finalized`. MPI holds the only state; this type keeps
/// none beyond an optional `StallWatch` (`watchForStalls(timeout:)`).
///
/// Errors: the world communicator returns errors (`MPI_ERRORS_RETURN`) instead of aborting, and
/// they are thrown as `CommunicatorError` with MPI's own message. Every rank must call the same
/// collectives in the same order with matching counts; a rank that stops half-way leaves the
/// others waiting, which is what `abort(code:)` is for.
public final class Communicator {
    /// An element-wise reduction across ranks. Averages are `allReduceAverage`.
    public enum Reduction: Sendable {
        case sum, maximum, minimum

        var operation: MPI_Op {
            switch self {
            case .sum: return shim_op_sum()
            case .maximum: return shim_op_max()
            case .minimum: return shim_op_min()
            }
        }
    }

    /// This process's rank, `0..<size`.
    public let rank: Int
    /// The number of processes (world size).
    public let size: Int
    /// Whether this is rank 0, which writes files and prints progress.
    public var isRoot: Bool { rank == 0 }

    let handle: MPI_Comm?
    /// Set by `watchForStalls(timeout:)`: collectives are then polled and a rank that keeps the
    /// others waiting too long is reported as `StalledRanks`.
    public private(set) var stallWatch: StallWatch?

    private init(handle: MPI_Comm?, rank: Int, size: Int) {
        self.handle = handle
        self.rank = rank
        self.size = size
    }

    /// The world communicator, initialising MPI in this process on the first call (see the type's
    /// documentation for the lifetime rules).
    public static func world() throws -> Communicator {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized != 0 { throw CommunicatorError.finalized(operation: "initialise") }
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var provided: Int32 = 0
            try check(MPI_Init_thread(nil, nil, shim_thread_funneled(), &provided), "initialise")
            atexit {
                var finalized: Int32 = 0
                MPI_Finalized(&finalized)
                if finalized == 0 { MPI_Finalize() }
            }
            guard provided >= shim_thread_funneled() else {
                throw CommunicatorError.insufficientThreadSupport(required: "MPI_THREAD_FUNNELED", provided: provided)
            }
        }
        let world = shim_comm_world()
        try check(MPI_Comm_set_errhandler(world, shim_errors_return()), "set the error handler")
        var rank: Int32 = 0
        var size: Int32 = 0
        try check(MPI_Comm_rank(world, &rank), "read the rank")
        try check(MPI_Comm_size(world, &size), "read the size")
        return Communicator(handle: world, rank: Int(rank), size: Int(size))
    }

    /// From now on, every collective of this handle throws `StalledRanks` when another rank
    /// keeps this one waiting for `timeout` seconds without progress (see `StallWatch`). Every
    /// rank calls it (it duplicates the communicator).
    public func watchForStalls(timeout: Double) throws {
        try ensureActive("watch for stalls")
        guard size > 1 && timeout > 0 else { return }
        stallWatch = try StallWatch(timeout: timeout, world: handle, rank: rank, size: size)
    }

    /// Runs `body`, work of this rank alone that may outlast the stall timeout (rank 0 writing a
    /// checkpoint, say), telling the other ranks' stall watch not to count it as a stall.
    @discardableResult
    public func whileBusy<Result>(_ body: () throws -> Result) rethrows -> Result {
        guard let stallWatch else { return try body() }
        return try stallWatch.whileBusy(body)
    }

    // MARK: - Synchronisation

    /// Returns once every rank has called it.
    public func barrier() throws {
        try ensureActive("barrier")
        try collective("barrier", blocking: { MPI_Barrier(handle) }, nonBlocking: { MPI_Ibarrier(handle, &$0) })
    }

    /// Runs one collective: blocking, or non-blocking and polled by the stall watch.
    private func collective(_ operation: String, blocking: () -> Int32,
                            nonBlocking: (inout MPI_Request?) -> Int32) throws {
        guard let stallWatch else { return try Self.check(blocking(), operation) }
        var request: MPI_Request?
        try Self.check(nonBlocking(&request), operation)
        var requests = [request]
        try stallWatch.complete(&requests, operation)
    }

    // MARK: - All-reduce

    /// Replaces every element by its reduction over all ranks, in place.
    public func allReduce<Element: CommunicatorElement>(_ buffer: UnsafeMutableBufferPointer<Element>,
                                                       _ reduction: Reduction) throws {
        let operation = "all-reduce \(buffer.count) elements"
        try ensureActive(operation)
        guard let base = buffer.baseAddress else { return }
        let datatype = Element.communicatorElementType.datatype
        // MPI counts are 32-bit; larger buffers go in pieces.
        var offset = 0
        while offset < buffer.count {
            let count = min(buffer.count - offset, Int(Int32.max))
            try collective(operation, blocking: {
                MPI_Allreduce(shim_in_place(), base + offset, Int32(count), datatype, reduction.operation, handle)
            }, nonBlocking: {
                MPI_Iallreduce(shim_in_place(), base + offset, Int32(count), datatype, reduction.operation, handle, &$0)
            })
            offset += count
        }
    }

    /// Replaces every element of `values` by its reduction over all ranks.
    public func allReduce<Element: CommunicatorElement>(_ values: inout [Element], _ reduction: Reduction) throws {
        try values.withUnsafeMutableBufferPointer { try allReduce($0, reduction) }
    }

    /// The reduction of `value` over all ranks.
    public func allReduce<Element: CommunicatorElement>(_ value: Element, _ reduction: Reduction) throws -> Element {
        var values = [value]
        try allReduce(&values, reduction)
        return values[0]
    }

    /// Replaces every element by its mean over all ranks, in place: `x ← (Σ_r x_r) / size`.
    public func allReduceAverage<Element: CommunicatorElement & BinaryFloatingPoint>(
        _ buffer: UnsafeMutableBufferPointer<Element>
    ) throws {
        try allReduce(buffer, .sum)
        let divisor = Element(size)
        for index in buffer.indices { buffer[index] /= divisor }
    }

    /// Replaces every element of `values` by its mean over all ranks.
    public func allReduceAverage<Element: CommunicatorElement & BinaryFloatingPoint>(_ values: inout [Element]) throws {
        try values.withUnsafeMutableBufferPointer { try allReduceAverage($0) }
    }

    /// The mean of `value` over all ranks.
    public func allReduceAverage<Element: CommunicatorElement & BinaryFloatingPoint>(_ value: Element) throws -> Element {
        var values = [value]
        try allReduceAverage(&values)
        return values[0]
    }

    // MARK: - Broadcast

    /// Copies `root`'s buffer into every rank's buffer; all ranks pass the same count.
    public func broadcast<Element: CommunicatorElement>(_ buffer: UnsafeMutableBufferPointer<Element>,
                                                       from root: Int) throws {
        let operation = "broadcast \(buffer.count) elements from rank \(root)"
        try ensureActive(operation)
        try validate(root: root, operation)
        guard let base = buffer.baseAddress else { return }
        let datatype = Element.communicatorElementType.datatype
        var offset = 0
        while offset < buffer.count {
            let count = min(buffer.count - offset, Int(Int32.max))
            try collective(operation, blocking: { MPI_Bcast(base + offset, Int32(count), datatype, Int32(root), handle) },
                           nonBlocking: { MPI_Ibcast(base + offset, Int32(count), datatype, Int32(root), handle, &$0) })
            offset += count
        }
    }

    /// `root`'s `value` on every rank (the argument is ignored on the other ranks).
    public func broadcast<Element: CommunicatorElement>(_ value: Element, from root: Int) throws -> Element {
        var values = [value]
        try values.withUnsafeMutableBufferPointer { try broadcast($0, from: root) }
        return values[0]
    }

    /// `root`'s array on every rank, whatever its length (the argument is ignored on the other
    /// ranks). Two collectives: the length, then the elements.
    public func broadcast<Element: CommunicatorElement>(_ values: [Element], from root: Int) throws -> [Element] {
        let count = try broadcast(Int64(values.count), from: root)
        var result = rank == root ? values : [Element](unsafeUninitializedCapacity: Int(count)) { _, initialized in
            initialized = Int(count)
        }
        try result.withUnsafeMutableBufferPointer { try broadcast($0, from: root) }
        return result
    }

    /// `root`'s string on every rank (the argument is ignored on the other ranks).
    public func broadcast(_ string: String, from root: Int) throws -> String {
        String(decoding: try broadcast(Array(string.utf8), from: root), as: UTF8.self)
    }

    /// `root`'s bytes on every rank (the argument is ignored on the other ranks).
    public func broadcast(_ data: Data, from root: Int) throws -> Data {
        Data(try broadcast([UInt8](data), from: root))
    }

    // MARK: - Gather

    /// Every rank's `values`, concatenated in rank order, on `root`; nil on the other ranks.
    /// Ranks may contribute different counts (`MPI_Gatherv`); the total must fit MPI's 32-bit
    /// displacements.
    public func gather<Element: CommunicatorElement>(_ values: UnsafeBufferPointer<Element>,
                                                    to root: Int = 0) throws -> [Element]? {
        let operation = "gather \(values.count) elements to rank \(root)"
        try ensureActive(operation)
        try validate(root: root, operation)
        // Every rank learns every count, so all of them agree on whether the total is too large
        // (a rank throwing alone would leave the others waiting in MPI_Gatherv).
        let counts = try allGather(values.count)
        let total = counts.reduce(0, +)
        guard total <= Int(Int32.max) else { throw CommunicatorError.countTooLarge(operation: operation, count: total) }
        let counts32 = counts.map { Int32($0) }
        var displacements = [Int32](repeating: 0, count: size)
        for index in counts32.indices.dropFirst() {
            displacements[index] = displacements[index - 1] + counts32[index - 1]
        }
        let datatype = Element.communicatorElementType.datatype
        // MPI wants a valid send address even for zero elements.
        var placeholder: Int32 = 0
        return try withUnsafePointer(to: &placeholder) { placeholderAddress in
            let sendAddress = UnsafeRawPointer(values.baseAddress) ?? UnsafeRawPointer(placeholderAddress)
            func gather(into receive: UnsafeMutableRawPointer?) throws {
                try collective(operation, blocking: {
                    MPI_Gatherv(sendAddress, Int32(values.count), datatype, receive, counts32, displacements,
                                datatype, Int32(root), handle)
                }, nonBlocking: {
                    MPI_Igatherv(sendAddress, Int32(values.count), datatype, receive, counts32, displacements,
                                 datatype, Int32(root), handle, &$0)
                })
            }
            guard rank == root else {
                try gather(into: nil)
                return nil
            }
            return try [Element](unsafeUninitializedCapacity: max(total, 1)) { buffer, initialized in
                try gather(into: UnsafeMutableRawPointer(buffer.baseAddress))
                initialized = total
            }
        }
    }

    /// Every rank's `values`, concatenated in rank order, on `root`; nil on the other ranks.
    public func gather<Element: CommunicatorElement>(_ values: [Element], to root: Int = 0) throws -> [Element]? {
        try values.withUnsafeBufferPointer { try gather($0, to: root) }
    }

    /// Every rank's `value`, in rank order, on every rank.
    public func allGather<Element: CommunicatorElement>(_ value: Element) throws -> [Element] {
        let operation = "all-gather one element"
        try ensureActive(operation)
        let datatype = Element.communicatorElementType.datatype
        let contribution = [value]
        return try contribution.withUnsafeBytes { contributionBytes in
            try [Element](unsafeUninitializedCapacity: size) { buffer, initialized in
                try collective(operation, blocking: {
                    MPI_Allgather(contributionBytes.baseAddress, 1, datatype, buffer.baseAddress, 1, datatype, handle)
                }, nonBlocking: {
                    MPI_Iallgather(contributionBytes.baseAddress, 1, datatype, buffer.baseAddress, 1, datatype, handle, &$0)
                })
                initialized = size
            }
        }
    }

    // MARK: - Ending

    /// Ends every rank of the job with exit status `code` (`MPI_Abort`): the way out when one
    /// rank fails and the others would wait for it forever.
    public func abort(code: Int32) -> Never {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Abort(handle, code) }
        exit(code)
    }

    /// Finalises MPI now instead of at process exit. Every rank calls it; it cannot be undone.
    /// Calling it again does nothing.
    public func finalize() throws {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        guard finalized == 0 else { return }
        try Self.check(MPI_Finalize(), "finalize")
    }

    // MARK: - Helpers

    static func check(_ code: Int32, _ operation: String) throws {
        guard code != shim_success() else { return }
        var message = [CChar](repeating: 0, count: Int(shim_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &message, &length)
        throw CommunicatorError.mpiCallFailed(operation: operation, code: code, message: message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
    }

    func ensureActive(_ operation: String) throws {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized != 0 { throw CommunicatorError.finalized(operation: operation) }
    }

    private func validate(root: Int, _ operation: String) throws {
        guard (0..<size).contains(root) else {
            throw CommunicatorError.invalidRoot(operation: operation, root: root, size: size)
        }
    }
}
