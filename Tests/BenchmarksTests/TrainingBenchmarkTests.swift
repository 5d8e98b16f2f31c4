import XCTest
import Benchmarks
import Model

/// What `disttrain bench` reports, checked for what it covers rather than for speed.
final class TrainingBenchmarkTests: XCTestCase {
    static let small = MSDNetConfiguration(stem: .cifar, inputChannels: 2, inputSize: 16, classes: 5, nBlocks: 2,
                                           stepmode: .linearGrowth, step: 1, base: 1, nChannels: 4, growthRate: 2,
                                           grFactor: [1, 2], bnFactor: [1, 2], prune: .max, reduction: 0.5, bottleneck: true)

    func testPhaseOneProfileCoversForwardAndBackwardOperatorsWithinTheMeasuredTime() throws {
        let result = try TrainingBenchmark.run(configuration: Self.small, batchSize: 3, steps: 2, warmupSteps: 1)
        XCTAssertEqual(result.batchSize, 3)
        XCTAssertEqual(result.steps, 2)
        let names = result.operatorSeconds.map(\.name)
        XCTAssertTrue(names.contains("batchnorm+relu forward"), "\(names)")
        XCTAssertTrue(names.contains("batchnorm+relu backward"), "\(names)")
        XCTAssertTrue(names.contains { $0.hasPrefix("convolution") && $0.hasSuffix("forward") }, "\(names)")
        // Operators run inside the profiled steps: their times add up to no more than those steps took.
        let profiled = result.operatorSeconds.map(\.seconds).reduce(0, +)
        XCTAssertGreaterThan(profiled, 0)
        XCTAssertLessThanOrEqual(profiled, result.profiledSeconds)
        XCTAssertEqual(result.operatorSeconds.map(\.seconds), result.operatorSeconds.map(\.seconds).sorted(by: >))
        XCTAssertEqual(result.description.split(separator: "\n").count, 1 + names.count)
    }

    func testPhaseTwoTimesTheHeadsOnTheFrozenBackbone() throws {
        let result = try TrainingBenchmark.run(configuration: Self.small, batchSize: 2, steps: 1, warmupSteps: 0, phase: .two)
        XCTAssertTrue(result.imagesPerSecond.isFinite && result.imagesPerSecond > 0)
        // The frozen backbone still runs forward; nothing of it runs backward.
        let names = result.operatorSeconds.map(\.name)
        XCTAssertTrue(names.contains("batchnorm+relu forward"), "\(names)")
        XCTAssertFalse(names.contains("batchnorm+relu backward"), "\(names)")
    }

    func testKernelBenchmarkMeasuresEveryOperatorOnce() {
        let measurements = KernelBenchmark.run(batch: 2, repetitions: 1)
        let names = measurements.map(\.name)
        XCTAssertEqual(Set(names).count, names.count, "duplicate names: \(names)")
        XCTAssertTrue(names.first?.hasPrefix("SGEMM") ?? false, "\(names)")
        for measurement in measurements {
            XCTAssertTrue(measurement.milliseconds.isFinite && measurement.milliseconds >= 0, measurement.description)
            if let rate = measurement.gigaflopsPerSecond { XCTAssertTrue(rate.isFinite && rate > 0, measurement.description) }
        }
    }
}
