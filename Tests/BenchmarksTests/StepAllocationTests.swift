import Benchmarks
import Model
import XCTest

/// The steady-state training steps of both phases and the evaluation forward allocate nothing on
/// the heap, on one compute thread and on two, with each operator split across the threads and
/// with the batch split into image shards (counted, not timed).
final class StepAllocationTests: XCTestCase {
    /// Three scales whose widest BatchNorm has more than 64 channels, where a temporary
    /// allocation of its per-channel sums would leave the stack for the heap.
    static let wide = MSDNetConfiguration(stem: .cifar, inputChannels: 1, inputSize: 20, classes: 4, nBlocks: 2,
                                          stepmode: .even, step: 1, base: 1, nChannels: 16, growthRate: 6,
                                          grFactor: [1, 2, 4], bnFactor: [1, 2, 4], prune: .max, reduction: 0.5,
                                          bottleneck: true)
    /// Large enough that the first layers' element-wise loops (16 channels x 20 x 20 per image)
    /// pass `ComputeThreads.minimumParallelCount` and run on both threads, too small for image
    /// shards on two threads.
    static let batchSize = 16
    /// Two image shards on two threads.
    static let shardedBatchSize = 2 * ImageShards.minimumImagesPerShard

    override func setUp() async throws {
        let widest = try MSDNetArchitecture(Self.wide).unitsInRegistrationOrder.map(\.outputChannels).max() ?? 0
        XCTAssertGreaterThan(widest, 64)
        XCTAssertGreaterThanOrEqual(Self.batchSize * 16 * 20 * 20, ComputeThreads.minimumParallelCount)
        XCTAssertEqual(ImageShards.count(threads: 2, maximumBatchSize: Self.batchSize), 1)
        XCTAssertEqual(ImageShards.count(threads: 2, maximumBatchSize: Self.shardedBatchSize), 2)
    }

    /// `body` run with `threads` compute threads, the previous count restored afterwards.
    private func withComputeThreads<Result>(_ threads: Int, _ body: () throws -> Result) rethrows -> Result {
        let previous = ComputeThreads.count
        ComputeThreads.set(threads)
        defer { ComputeThreads.set(previous) }
        return try body()
    }

    private func allocationsPerStep(_ phase: TrainingBenchmark.Phase, threads: Int, batchSize: Int = batchSize) throws -> Double {
        try withComputeThreads(threads) {
            try TrainingBenchmark.run(configuration: Self.wide, batchSize: batchSize, steps: 2, warmupSteps: 1, phase: phase,
                                      breakdown: false).allocationsPerStep
        }
    }

    func testAPhaseOneStepOnOneComputeThreadAllocatesNothing() throws {
        XCTAssertEqual(try allocationsPerStep(.one, threads: 1), 0)
    }

    func testAPhaseOneStepOnTwoComputeThreadsAllocatesNothing() throws {
        XCTAssertEqual(try allocationsPerStep(.one, threads: 2), 0)
        XCTAssertEqual(try allocationsPerStep(.one, threads: 2, batchSize: Self.shardedBatchSize), 0)
    }

    func testAPhaseTwoStepAllocatesNothing() throws {
        XCTAssertEqual(try allocationsPerStep(.two, threads: 1), 0)
        XCTAssertEqual(try allocationsPerStep(.two, threads: 2), 0)
        XCTAssertEqual(try allocationsPerStep(.two, threads: 2, batchSize: Self.shardedBatchSize), 0)
    }

    func testAnEvaluationForwardAllocatesNothing() throws {
        XCTAssertEqual(try allocationsPerStep(.evaluation, threads: 1), 0)
        XCTAssertEqual(try allocationsPerStep(.evaluation, threads: 2), 0)
        XCTAssertEqual(try allocationsPerStep(.evaluation, threads: 2, batchSize: Self.shardedBatchSize), 0)
    }

    /// Handing a closure with captures to the second thread allocates nothing (it used to box it),
    /// and each of the two chunks runs exactly once per call.
    func testAParallelLoopOnTwoThreadsAllocatesNothing() {
        let count = 2 * ComputeThreads.minimumParallelCount
        let values = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { values.deallocate() }
        values.initialize(repeating: 0, count: count)
        withComputeThreads(2) {
            let offset: Float = 1
            func addOffset() {
                ComputeThreads.parallelFor(count) { range in
                    for index in range { values[index] += offset * Float(range.lowerBound == 0 ? 1 : 2) }
                }
            }
            addOffset()
            let allocations = AllocationCounter.allocations { for _ in 0..<10 { addOffset() } }
            XCTAssertEqual(allocations, 0)
        }
        XCTAssertEqual(values[0], 11)
        XCTAssertEqual(values[count - 1], 22)
    }
}
