import Communication
import Foundation
import Model
import XCTest

/// Collectives across real ranks. Skipped unless started by `mpirun`, which runs this class on
/// every rank (`mpirun -n 2 …xctest DistTrainTests.MultiRankCommunicatorTests`); each rank checks
/// its own results. Every test calls the same collectives in the same order on all ranks and
/// asserts instead of returning early, so a failure cannot leave another rank waiting.
final class MultiRankCommunicatorTests: XCTestCase {
    private var world: Communicator!

    override func setUpWithError() throws {
        let launchedSize = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"]
        try XCTSkipIf(launchedSize == nil, "run under mpirun to test collectives across ranks")
        world = try Communicator.world()
        XCTAssertEqual(world.size, Int(launchedSize ?? ""))
        XCTAssertEqual(world.rank, Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] ?? ""))
    }

    func testAllReduceSumsAndAveragesRankDependentValues() throws {
        let size = world.size
        let rank = world.rank
        // Rank r holds (r + 1)·(i + 1); the sum over ranks is (i + 1)·n(n + 1)/2.
        let rankTotal = size * (size + 1) / 2
        var floats = (0..<1000).map { Float((rank + 1) * ($0 + 1)) }
        try floats.withUnsafeMutableBufferPointer { try world.allReduce($0, .sum) }
        XCTAssertEqual(floats, (0..<1000).map { Float(rankTotal * ($0 + 1)) })

        var doubles = (0..<10).map { Double(rank) + 0.25 * Double($0) }
        try world.allReduceAverage(&doubles)
        XCTAssertEqual(doubles, (0..<10).map { Double(size - 1) / 2 + 0.25 * Double($0) })

        var averaged = [Float(rank * 3)]
        try averaged.withUnsafeMutableBufferPointer { try world.allReduceAverage($0) }
        XCTAssertEqual(averaged, [Float(3 * (size - 1)) / 2])

        XCTAssertEqual(try world.allReduce(Int64(rank) << 33, .maximum), Int64(size - 1) << 33)
        XCTAssertEqual(try world.allReduce(Int64(rank) - 5, .minimum), -5)
        XCTAssertEqual(try world.allReduce(Int32(rank + 1), .sum), Int32(rankTotal))

        var statistics = [Float(rank), 1]
        statistics.withUnsafeMutableBufferPointer { world.sumInPlace($0) }
        XCTAssertEqual(statistics, [Float(size * (size - 1) / 2), Float(size)])
        XCTAssertEqual(world.replicaCount, size)
    }

    func testBroadcastFromFirstAndLastRank() throws {
        let last = world.size - 1
        for root in [0, last] {
            var parameters = world.rank == root ? (0..<257).map { Float($0) * 0.5 + Float(root) } : [Float](repeating: -1, count: 257)
            try parameters.withUnsafeMutableBufferPointer { try world.broadcast($0, from: root) }
            XCTAssertEqual(parameters, (0..<257).map { Float($0) * 0.5 + Float(root) }, "root \(root)")
            XCTAssertEqual(try world.broadcast(Double(world.rank) + 0.5, from: root), Double(root) + 0.5)
            XCTAssertEqual(try world.broadcast(Int64(world.rank) << 40, from: root), Int64(root) << 40)
            // Only the root's length counts: the others pass arrays of other lengths.
            let bytes = try world.broadcast([UInt8](repeating: UInt8(world.rank), count: world.rank + 2), from: root)
            XCTAssertEqual(bytes, [UInt8](repeating: UInt8(root), count: root + 2))
            XCTAssertEqual(try world.broadcast(world.rank == root ? "config from \(root) ✓" : "", from: root),
                           "config from \(root) ✓")
            XCTAssertEqual(try world.broadcast(Data(repeating: UInt8(world.rank), count: 3), from: root),
                           Data(repeating: UInt8(root), count: 3))
        }
    }

    func testGatherConcatenatesRankDependentCountsInRankOrder() throws {
        let rank = world.rank
        // Rank r contributes r elements (rank 0 none): 100·r + i.
        let contribution = (0..<rank).map { Float(100 * rank + $0) }
        let expected = (0..<world.size).flatMap { r in (0..<r).map { Float(100 * r + $0) } }
        let atFirst = try world.gather(contribution)
        XCTAssertEqual(atFirst, rank == 0 ? expected : nil)

        let last = world.size - 1
        let sixtyFour = (0...rank).map { Int64(rank) << 32 | Int64($0) }
        let atLast = try sixtyFour.withUnsafeBufferPointer { try world.gather($0, to: last) }
        let expectedSixtyFour = (0..<world.size).flatMap { r in (0...r).map { Int64(r) << 32 | Int64($0) } }
        XCTAssertEqual(atLast, rank == last ? expectedSixtyFour : nil)

        XCTAssertEqual(try world.allGather(rank * 10), (0..<world.size).map { $0 * 10 })
        try world.barrier()
    }

    /// The same collectives issued non-blocking and polled by a stall watch (as the trainer does)
    /// give the blocking results; long work announced by one rank is waited for.
    func testCollectivesPolledByTheStallWatchGiveTheBlockingResults() throws {
        let watched = try Communicator.world()
        try watched.watchForStalls(timeout: 60)
        XCTAssertNotNil(watched.stallWatch)
        let rank = watched.rank, size = watched.size
        let values = (0..<70_000).map { Float(rank + 1) * 0.1 + Float($0 % 97) }
        var blocking = values, polled = values
        try blocking.withUnsafeMutableBufferPointer { try world.allReduceAverage($0) }
        try polled.withUnsafeMutableBufferPointer { try watched.allReduceAverage($0) }
        // Another algorithm may sum in another order, but every rank must get the same bits.
        XCTAssertEqual(zip(polled, blocking).map { abs($0 - $1) }.max() ?? 1, 0, accuracy: 1e-4)
        let checksum = polled.reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1.bitPattern) }
        XCTAssertEqual(Set(try watched.allGather(Int64(bitPattern: checksum))).count, 1)

        let last = size - 1
        XCTAssertEqual(try watched.broadcast(rank == last ? "from the last rank" : "", from: last), "from the last rank")
        let gathered = try watched.gather((0..<rank).map { Float(100 * rank + $0) })
        XCTAssertEqual(gathered, rank == 0 ? (0..<size).flatMap { r in (0..<r).map { Float(100 * r + $0) } } : nil)
        XCTAssertEqual(try watched.allGather(rank * 10), (0..<size).map { $0 * 10 })
        try watched.barrier()
    }

    /// With a 0.25 s stall timeout, the other ranks wait 2 s for rank 0's announced work of its
    /// own (as for a checkpoint write) instead of naming it stalled.
    func testStallWatchWaitsForAnnouncedWork() throws {
        let impatient = try Communicator.world()
        try impatient.watchForStalls(timeout: 0.25)
        let started = Date()
        if impatient.isRoot { impatient.whileBusy { usleep(2_000_000) } }
        XCTAssertNoThrow(try impatient.barrier())
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 1.9, "the barrier waited for rank 0")
    }

    /// Announced work is not waited for forever: with a 0.1 s stall timeout, rank 0 busy for 6 s
    /// (frozen inside a checkpoint write, say) is named once its announcement is 20 timeouts
    /// old, by the lowest waiting rank; every rank then goes on to the next collective.
    func testStallWatchNamesARankBusyBeyondTheBoundOfAnnouncedWork() throws {
        guard world.size > 1 else { return }
        let impatient = try Communicator.world()
        try impatient.watchForStalls(timeout: 0.1)
        if impatient.isRoot {
            impatient.whileBusy { usleep(6_000_000) }
            XCTAssertNoThrow(try impatient.barrier())
        } else if impatient.rank == 1 {
            let started = Date()
            XCTAssertThrowsError(try impatient.barrier()) { error in
                XCTAssertEqual((error as? StalledRanks)?.ranks, [0], "\(error)")
            }
            let seconds = Date().timeIntervalSince(started)
            XCTAssertGreaterThanOrEqual(seconds, StallWatch.busyTimeoutFactor * 0.1, "named before the bound of announced work")
            XCTAssertLessThan(seconds, 6, "rank 0 was not named while still busy")
        } else {
            // Once rank 1 has left, it answers no more queries, so a later rank may name it too.
            _ = try? impatient.barrier()
        }
        try world.barrier()
    }


    // MARK: - Gradient buckets overlapped with the backward pass

    static let network = MSDNetConfiguration(stem: .cifar, inputChannels: 2, inputSize: 16, classes: 5, nBlocks: 2,
                                             stepmode: .linearGrowth, step: 1, base: 1, nChannels: 4, growthRate: 2,
                                             grFactor: [1, 2], bnFactor: [1, 2], prune: .max, reduction: 0.5, bottleneck: true)

    /// Runs one training step of `network` on this rank's own batch.
    func trainingStep(_ network: TrainableNetwork, seed: UInt64) {
        let configuration = Self.network, count = 3
        var generator = SeededGenerator(seed: seed &+ UInt64(world.rank) &* 1000)
        let images = (0..<(configuration.inputChannels * count * configuration.inputSize * configuration.inputSize))
            .map { _ in Float(generator.normal()) }
        let labels = (0..<count).map { _ in Int32(generator.next() % UInt64(configuration.classes)) }
        _ = images.withUnsafeBufferPointer { images in
            labels.withUnsafeBufferPointer { labels in
                network.trainingStep(images: images.baseAddress!, labels: labels.baseAddress!, count: count)
            }
        }
    }

    /// The same step's gradients averaged in small buckets started during the backward pass
    /// (with synchronised BatchNorm issuing its own collectives in between) and averaged with one
    /// all-reduce after it: the same bits, on every rank, in phase I and phase II, polled by the
    /// stall watch or waited for plainly.
    func testGradientBucketsDuringBackwardAverageBitForBitLikeOneAllReduceAfterIt() throws {
        let watched = try Communicator.world()
        try watched.watchForStalls(timeout: 60)
        let backbone = try MSDNet(configuration: Self.network, gradientEquilibrium: true, maximumBatchSize: 3, seed: 3)
        let heads = IMTANetwork(backbone: backbone, distillation: OneForAllDistillation(temperature: 2, gamma: 0.3),
                                detachCollaboration: false, seed: 4)
        for communicator in [watched, world!] {
            for network in [backbone, heads] as [TrainableNetwork] {
                network.batchNormReducer = communicator
                let arena = network.trainableParameters
                let gradients = UnsafeMutableBufferPointer(start: arena.gradients, count: arena.count)
                network.gradientReadyObserver = nil
                trainingStep(network, seed: 11)
                try communicator.allReduceAverage(gradients)
                let afterBackward = Array(gradients)

                let buckets = GradientBuckets(communicator: communicator, arena: arena, bucketBytes: 64)
                network.gradientReadyObserver = buckets
                trainingStep(network, seed: 11)
                try buckets.finishAveraging()
                network.gradientReadyObserver = nil
                let name = network is IMTANetwork ? "phase II" : "phase I"
                XCTAssertEqual(Array(gradients).map(\.bitPattern), afterBackward.map(\.bitPattern), name)
                let checksum = gradients.reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1.bitPattern) }
                XCTAssertEqual(Set(try communicator.allGather(Int64(bitPattern: checksum))).count, 1, name)

                XCTAssertGreaterThan(buckets.ranges.count, 3, name)
                XCTAssertEqual(buckets.ranges.map(\.count).reduce(0, +), arena.count, name)
                XCTAssertEqual(buckets.bucketsStarted, buckets.ranges.count, name)
                // Phase I: all but the buckets of the first block start while the backward pass runs;
                // phase II: those of the last exit's heads.
                XCTAssertGreaterThan(buckets.bucketsStartedDuringBackward, network is IMTANetwork ? 0 : buckets.ranges.count / 2, name)
            }
            backbone.batchNormReducer = nil
        }
    }
}
