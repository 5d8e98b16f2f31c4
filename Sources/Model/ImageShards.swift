import Foundation
import Synchronization

/// How one process splits a batch across its compute threads: each thread runs the whole network
/// on its own contiguous share of the images (an image shard), as data-parallel ranks do, and the
/// shards meet only where the batch is one: BatchNorm's per-channel sums (`ShardRendezvous`) and
/// the sum of the parameter gradients at the end of the backward pass.
///
/// Why not split every operator across the threads instead: a step of MSDNet is thousands of small
/// operators, and joining the threads after each one, with the serial pieces between them (weight
/// packing, zeroing), left a second thread adding only 30-40% to phase I on two cores.
public enum ImageShards {
    /// With fewer images than this per thread each operator is split across the threads instead:
    /// every shard packs the weights for its own matrix products and holds its own gradients, which
    /// pays only when a shard has images to amortise them over. (Below about 8, OpenBLAS 0.3.21
    /// also takes its small-matrix path for MSDNet's coarse scales, which allocates per call.)
    public static let minimumImagesPerShard = 16

    /// The number of shards for `threads` compute threads and batches of up to `maximumBatchSize`.
    public static func count(threads: Int, maximumBatchSize: Int) -> Int {
        threads > 1 && maximumBatchSize >= threads * minimumImagesPerShard ? threads : 1
    }

    /// The images of shard `shard` when `n` images are split into `shards`: contiguous, as even as
    /// can be, the first `n % shards` shards one image longer.
    static func range(of shard: Int, count n: Int, shards: Int) -> Range<Int> {
        let base = n / shards, longer = n % shards
        let start = shard * base + min(shard, longer)
        return start..<(start + base + (shard < longer ? 1 : 0))
    }

    /// The images a shard of a batch of up to `maximumBatchSize` holds at most.
    static func capacity(maximumBatchSize: Int, shards: Int) -> Int {
        (maximumBatchSize + shards - 1) / shards
    }
}

/// Where the image shards of one pass meet: a barrier, and sums of Double vectors over the shards
/// taken in shard order, so that the result does not depend on which thread arrives first.
///
/// The coordinating thread calls `begin` before the shards start; then every shard makes the same
/// sequence of calls. A shard waits by polling (the other shard is a few microseconds away at
/// most when both have cores) and yields its core after a while, for when there are more threads
/// than cores.
final class ShardRendezvous: @unchecked Sendable {
    /// Doubles one shard may contribute to a sum.
    let capacity: Int
    private let maximumShards: Int
    /// `[maximumShards][capacity]`: each shard's contribution to the current sum.
    private let contributions: UnsafeMutablePointer<Double>
    /// Two result vectors, used in turn: a shard may still be reading sum k's while shard 0 writes
    /// sum k + 1's, never k + 2's (that needs every shard at sum k + 2's first barrier).
    private let results: UnsafeMutablePointer<Double>
    /// Barrier arrivals since `begin`, over all shards.
    private let arrivals = Atomic<Int>(0)
    private var participants = 1
    /// Per shard, written only by that shard: barriers passed and sums taken since `begin`.
    private let barriersPassed: UnsafeMutablePointer<Int>
    private let sumsTaken: UnsafeMutablePointer<Int>
    /// Polls before each yield of the core.
    static let spinIterations = 4_000

    init(maximumShards: Int, capacity: Int) {
        self.maximumShards = maximumShards
        self.capacity = max(capacity, 1)
        contributions = .allocate(capacity: maximumShards * self.capacity)
        results = .allocate(capacity: 2 * self.capacity)
        barriersPassed = .allocate(capacity: maximumShards)
        sumsTaken = .allocate(capacity: maximumShards)
        barriersPassed.initialize(repeating: 0, count: maximumShards)
        sumsTaken.initialize(repeating: 0, count: maximumShards)
    }

    deinit {
        contributions.deallocate()
        results.deallocate()
        barriersPassed.deallocate()
        sumsTaken.deallocate()
    }

    /// Starts a pass of `participants` shards (before their threads start, which orders it before
    /// everything they do).
    func begin(participants: Int) {
        precondition((1...maximumShards).contains(participants), "\(participants) shards, planned for \(maximumShards)")
        self.participants = participants
        arrivals.store(0, ordering: .relaxed)
        barriersPassed.update(repeating: 0, count: maximumShards)
        sumsTaken.update(repeating: 0, count: maximumShards)
    }

    /// Returns once every shard has called it as often as `shard` has.
    func wait(shard: Int) {
        barriersPassed[shard] += 1
        let target = barriersPassed[shard] * participants
        arrivals.add(1, ordering: .acquiringAndReleasing)
        var spins = 0
        while arrivals.load(ordering: .acquiring) < target {
            spins += 1
            if spins >= Self.spinIterations {
                sched_yield()
                spins = 0
            }
        }
    }

    /// Replaces `values[0..<count]` on every shard by its sum over the shards (shard 0's plus
    /// shard 1's plus ...), then by `acrossRanks` of that sum, which shard 0 runs alone.
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int, shard: Int,
             acrossRanks: (UnsafeMutablePointer<Double>, Int) -> Void) {
        combine(values, count: count, shard: shard, merge: { total, next in
            for index in 0..<count { total[index] += next[index] }
        }, then: acrossRanks)
    }

    /// Replaces `values[0..<count]` on every shard by the shards' vectors merged in shard order:
    /// shard 0's, then `merge(into: result, next)` with shard 1's, and so on; then `then` of the
    /// result, which shard 0 runs alone.
    func combine(_ values: UnsafeMutablePointer<Double>, count: Int, shard: Int,
                 merge: (_ result: UnsafeMutablePointer<Double>, _ next: UnsafePointer<Double>) -> Void,
                 then: (UnsafeMutablePointer<Double>, Int) -> Void = { _, _ in }) {
        precondition(count <= capacity, "\(count) Doubles to combine, planned for \(capacity)")
        let result = results + (sumsTaken[shard] % 2) * capacity
        sumsTaken[shard] += 1
        (contributions + shard * capacity).update(from: values, count: count)
        wait(shard: shard)
        if shard == 0 {
            result.update(from: contributions, count: count)
            for other in 1..<participants { merge(result, contributions + other * capacity) }
            then(result, count)
        }
        wait(shard: shard)
        values.update(from: result, count: count)
    }
}

/// Where BatchNorm's per-channel sums over the images of one call are summed further: over the
/// image shards of this process (`rendezvous`), then over the ranks (`reducer`, synchronised
/// BatchNorm). Neither: the call's images are the whole batch.
struct BatchNormSummation {
    var reducer: CrossReplicaReducer?
    var rendezvous: ShardRendezvous?
    var shard = 0

    var isLocal: Bool { reducer == nil && rendezvous == nil }

    /// Replaces `values[0..<count]` by its sum over the shards, then over the ranks. The ranks sum
    /// in single precision, as the all-reduce carries them.
    func sumInPlace(_ values: UnsafeMutablePointer<Double>, count: Int) {
        if let rendezvous {
            rendezvous.sum(values, count: count, shard: shard) { total, count in sumAcrossRanks(total, count: count) }
        } else {
            sumAcrossRanks(values, count: count)
        }
    }

    private func sumAcrossRanks(_ values: UnsafeMutablePointer<Double>, count: Int) {
        guard let reducer else { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { buffer in
            for index in 0..<count { buffer[index] = Float(values[index]) }
            reducer.sumInPlace(buffer)
            for index in 0..<count { values[index] = Double(buffer[index]) }
        }
    }
}
