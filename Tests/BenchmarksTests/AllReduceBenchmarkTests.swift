import Benchmarks
import Communication
import Foundation
import XCTest

/// The all-reduce benchmark across real ranks. Skipped unless started by `mpirun`
/// (`mpirun -n 2 …xctest BenchmarksTests.AllReduceBenchmarkTests`), as the multi-rank
/// communicator tests are.
final class AllReduceBenchmarkTests: XCTestCase {
    private var world: Communicator!

    override func setUpWithError() throws {
        try XCTSkipIf(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] == nil,
                      "run under mpirun to time the all-reduce across ranks")
        world = try Communicator.world()
    }

    /// The all-reduce benchmark measures every size and reports the same figures on every rank.
    func testAllReduceBenchmarkMeasuresEverySizeAlikeOnEveryRank() throws {
        XCTAssertEqual(AllReduceBenchmark.sizes(upTo: 5000), [256, 1024, 4096, 5000])
        let measurements = try AllReduceBenchmark.run(communicator: world, sizes: [256, 5000], repetitions: 3)
        XCTAssertEqual(measurements.map(\.elements), [256, 5000])
        XCTAssertEqual(measurements.map(\.ranks), [world.size, world.size])
        for measurement in measurements {
            XCTAssertGreaterThan(measurement.seconds, 0)
            let everywhere = try world.allGather(measurement.seconds)
            XCTAssertEqual(Set(everywhere.map(\.bitPattern)).count, 1, "ranks report different times")
        }
    }
}
