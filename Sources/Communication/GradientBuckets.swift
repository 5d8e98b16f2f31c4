import Foundation
import Model

/// Averages a gradient arena over the ranks while the backward pass is still running: the arena
/// is cut into buckets of about `bucketBytes` (at tensor boundaries), and as the backward pass
/// reports its tail final (`GradientReadyObserver`) each finished bucket's all-reduce starts
/// (`MPI_Iallreduce`), tail first, i.e. in reverse layer order. Every later report lets MPI
/// progress the buckets in flight; `finishAveraging()` waits for the rest and divides by the
/// world size.
///
/// Each bucket's contributions are copied to a second buffer first, so that from 4 ranks Open MPI
/// can use its bandwidth-optimal algorithms instead of the binomial tree it uses in place.
///
/// Results: on 2 and 3 ranks every element is summed over the same binomial tree whatever
/// bucket it is in, so the bits are those of one in-place all-reduce of the whole arena. From 4
/// ranks reduce-scatter may associate the sum otherwise, but each block of a bucket is reduced
/// on one rank and copied to the others (then all-gather), so every rank holds the same bits,
/// and the same buckets give a rerun the same bits.
public final class GradientBuckets: GradientReadyObserver {
    /// The buckets' arena ranges, from the end of the arena backwards: the order they start in.
    public let ranges: [Range<Int>]
    /// Buckets started before the backward pass ended (over every pass so far): the overlap.
    public private(set) var bucketsStartedDuringBackward = 0
    /// Buckets started over every pass so far.
    public private(set) var bucketsStarted = 0

    private let communicator: Communicator
    private let gradients: UnsafeMutablePointer<Float>
    private let count: Int
    /// This rank's gradients, copied bucket by bucket as each starts (the all-reduce's send buffer).
    private let contributions: UnsafeMutablePointer<Float>
    private var started = 0
    private var pending: [PendingCollective] = []
    /// The first MPI failure of this pass: the observer cannot throw, `finishAveraging` does.
    private var failure: Error?

    /// Buckets of `arena`'s gradients of at least `bucketBytes` each (one tensor may be larger),
    /// except the arena's first bucket, which holds what is left.
    public init(communicator: Communicator, arena: ParameterArena, bucketBytes: Int) {
        self.communicator = communicator
        gradients = arena.gradients
        count = arena.count
        contributions = .allocate(capacity: max(arena.count, 1))
        let bucketFloats = max(1, min(bucketBytes / MemoryLayout<Float>.size, Int(Int32.max)))
        var ranges: [Range<Int>] = []
        var end = arena.count
        for view in arena.views.reversed() where end - view.offset >= bucketFloats || view.offset == 0 {
            guard end > view.offset else { continue }
            ranges.append(view.offset..<end)
            end = view.offset
        }
        self.ranges = ranges
    }

    deinit { contributions.deallocate() }

    public func gradientsAreFinal(from offset: Int) {
        guard failure == nil else { return }
        do {
            while started < ranges.count && ranges[started].lowerBound >= offset {
                try start(ranges[started])
                if offset > 0 { bucketsStartedDuringBackward += 1 }
            }
            try communicator.progress(&pending)
        } catch {
            failure = error
        }
    }

    /// Starts what the backward pass has not (a pass that reported nothing), waits for every
    /// bucket, divides by the world size and gets ready for the next pass.
    public func finishAveraging() throws {
        defer {
            started = 0
            pending.removeAll(keepingCapacity: true)
            failure = nil
        }
        if let failure { throw failure }
        while started < ranges.count { try start(ranges[started]) }
        try communicator.complete(&pending, "all-reduce \(count) gradient elements in \(ranges.count) bucket(s)")
        let divisor = Float(communicator.size)
        for index in 0..<count { gradients[index] /= divisor }
    }

    private func start(_ range: Range<Int>) throws {
        (contributions + range.lowerBound).update(from: gradients + range.lowerBound, count: range.count)
        pending.append(try communicator.startAllReduce(
            UnsafeMutableBufferPointer(start: gradients + range.lowerBound, count: range.count), .sum,
            contributions: contributions + range.lowerBound))
        started += 1
        bucketsStarted += 1
    }
}
