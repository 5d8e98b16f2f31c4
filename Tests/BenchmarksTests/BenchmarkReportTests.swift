import Benchmarks
import Foundation
import Model
import XCTest

/// The allocation counter and the figures of `disttrain bench --json`, checked for what they
/// count and contain rather than for speed.
final class BenchmarkReportTests: XCTestCase {
    /// Keeps what it is given alive beyond the optimiser's view.
    final class Sink {
        var kept: [[Int]] = []
    }

    func testTheAllocationCounterSeesAnAllocatingClosureAndNothingInAnEmptyOne() {
        let sink = Sink()
        let allocating = AllocationCounter.allocations {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: 1000)
            pointer.deallocate()
            sink.kept.append(Array(0..<Int(sink.kept.count + 100)))
        }
        XCTAssertGreaterThanOrEqual(allocating, 2)
        XCTAssertEqual(AllocationCounter.allocations {}, 0)
    }

    func testTheJSONReportHasEveryFigureWithPlausibleValues() throws {
        let small = TrainingBenchmarkTests.small
        func run(_ phase: TrainingBenchmark.Phase) throws -> TrainingBenchmarkResult {
            try TrainingBenchmark.run(configuration: small, batchSize: 2, steps: 2, warmupSteps: 1, phase: phase, breakdown: false)
        }
        let phase1 = try run(.one), phase2 = try run(.two), evaluation = try run(.evaluation)
        XCTAssertTrue(phase1.operatorSeconds.isEmpty, "no breakdown was asked for")
        let multiplyAdds = CostCounter.exitCosts(try MSDNetArchitecture(small)).last!.multiplyAdds
        let sgemm = KernelBenchmark.sgemm(side: 64, repetitions: 1)
        let report = BenchmarkReport(configuration: "small", batchSize: 2, threads: ComputeThreads.count, imageShards: 1,
                                     kernelPath: KernelPath.selected.rawValue, phase1: phase1, phase2: phase2,
                                     evaluation: evaluation, forwardMultiplyAddsPerImage: multiplyAdds,
                                     sgemmGFLOPs: sgemm.gigaflopsPerSecond!, peakResidentBytes: ProcessMemory.peakResidentBytes()!)
        XCTAssertFalse(report.json.contains("\n"))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as? [String: Any])
        for key in ["trainImagesPerSecond", "phase2ImagesPerSecond", "evalImagesPerSecond", "achievedGFLOPs", "sgemmGFLOPs"] {
            let value = try XCTUnwrap(object[key] as? Double, key)
            XCTAssertTrue(value.isFinite && value > 0, "\(key) = \(value)")
        }
        let peak = try XCTUnwrap(object["peakResidentBytes"] as? Int)
        XCTAssertGreaterThan(peak, 1 << 20, "a Swift process with a network holds more than 1 MiB")
        XCTAssertLessThan(UInt64(peak), ProcessInfo.processInfo.physicalMemory)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(object["allocationsPerStep"] as? Double), 0)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(object["phase2AllocationsPerStep"] as? Double), 0)
        XCTAssertNotNil(KernelPath(rawValue: try XCTUnwrap(object["kernelPath"] as? String)))
        XCTAssertEqual(object["imageShards"] as? Int, 1)
        XCTAssertEqual(object["forwardMultiplyAddsPerImage"] as? Int, multiplyAdds)
        // 2 FLOP per multiply-add, forward and backward three forwards.
        XCTAssertEqual(report.achievedGFLOPs, phase1.imagesPerSecond * Double(multiplyAdds) * 6 / 1e9, accuracy: 1e-9)
    }
}
