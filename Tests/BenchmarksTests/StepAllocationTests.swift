import Benchmarks
import Model
import XCTest

/// The steady-state phase-I training step allocates nothing on the heap (counted, not timed).
final class StepAllocationTests: XCTestCase {
    /// Three scales whose widest BatchNorm has more than 64 channels, where a temporary
    /// allocation of its per-channel sums would leave the stack for the heap.
    static let wide = MSDNetConfiguration(stem: .cifar, inputChannels: 1, inputSize: 20, classes: 4, nBlocks: 2,
                                          stepmode: .even, step: 1, base: 1, nChannels: 16, growthRate: 6,
                                          grFactor: [1, 2, 4], bnFactor: [1, 2, 4], prune: .max, reduction: 0.5,
                                          bottleneck: true)

    func testAPhaseOneStepOnOneComputeThreadAllocatesNothing() throws {
        let widest = try MSDNetArchitecture(Self.wide).unitsInRegistrationOrder.map(\.outputChannels).max() ?? 0
        XCTAssertGreaterThan(widest, 64)
        let threads = ComputeThreads.count
        ComputeThreads.set(1)
        defer { ComputeThreads.set(threads) }
        let result = try TrainingBenchmark.run(configuration: Self.wide, batchSize: 3, steps: 2, warmupSteps: 1, breakdown: false)
        XCTAssertEqual(result.allocationsPerStep, 0)
    }
}
