import CMPIShim

/// A non-blocking collective in flight: started by `Communicator.startAllReduce`, progressed by
/// `Communicator.progress`, finished by `Communicator.complete`. Its buffer must stay untouched
/// until it has completed.
public struct PendingCollective {
    var request: MPI_Request?
    let operation: String
}

extension Communicator {
    /// Starts writing into `buffer` the reduction over all ranks of each rank's `contributions`
    /// (as many elements; nil: `buffer` itself, in place) and returns at once (`MPI_Iallreduce`).
    /// Every rank starts the same collectives in the same order. Open MPI 4.1 runs an in-place
    /// one as a binomial reduce and broadcast, moving 2 log2(p) times the buffer; separate
    /// contributions let it use reduce-scatter and all-gather from 4 ranks and 64 KB up (2 (p - 1) / p).
    public func startAllReduce<Element: CommunicatorElement>(_ buffer: UnsafeMutableBufferPointer<Element>,
                                                            _ reduction: Reduction,
                                                            contributions: UnsafePointer<Element>? = nil) throws -> PendingCollective {
        let operation = "all-reduce \(buffer.count) elements"
        try ensureActive(operation)
        guard buffer.count <= Int(Int32.max) else { throw CommunicatorError.countTooLarge(operation: operation, count: buffer.count) }
        var pending = PendingCollective(request: nil, operation: operation)
        try Self.check(MPI_Iallreduce(UnsafeRawPointer(contributions) ?? UnsafeRawPointer(shim_in_place()), buffer.baseAddress, Int32(buffer.count),
                                      Element.communicatorElementType.datatype, reduction.operation, handle, &pending.request),
                       operation)
        return pending
    }

    /// Lets MPI advance `pending`. Open MPI has no progress thread: a non-blocking collective
    /// moves only while its rank is inside an MPI call, so long computations call this now and then.
    /// Each request is tested on its own (`MPI_Test`, which frees one that has completed; `complete`
    /// then skips it), so that no array of requests is built on every call.
    public func progress(_ pending: inout [PendingCollective]) throws {
        var done: Int32 = 0
        for index in pending.indices {
            try Self.check(MPI_Test(&pending[index].request, &done, nil), pending[index].operation)
        }
    }

    /// Returns once every collective of `pending` has completed: polled by the stall watch (as
    /// one collective) when one is set, else `MPI_Waitall`.
    public func complete(_ pending: inout [PendingCollective], _ operation: String) throws {
        var requests = pending.map(\.request)
        defer { for index in pending.indices { pending[index].request = requests[index] } }
        if let stallWatch {
            try stallWatch.complete(&requests, operation)
        } else {
            try Self.check(MPI_Waitall(Int32(requests.count), &requests, nil), operation)
        }
    }
}
