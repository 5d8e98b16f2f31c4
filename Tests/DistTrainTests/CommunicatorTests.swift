import Communication
import Foundation
import Model
import XCTest

/// The communicator in a process started without `mpirun`: an MPI singleton of world size 1.
final class CommunicatorTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipIf(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil,
                      "started by mpirun; MultiRankCommunicatorTests covers that case")
    }

    func testWorldWithoutMpirunHasOneRank() throws {
        let world = try Communicator.world()
        XCTAssertEqual(world.rank, 0)
        XCTAssertEqual(world.size, 1)
        XCTAssertTrue(world.isRoot)
        XCTAssertEqual(world.replicaCount, 1)
        let again = try Communicator.world()
        XCTAssertEqual(again.size, 1)
        try again.barrier()
    }

    func testCollectivesOnOneRankReturnTheRanksOwnData() throws {
        let world = try Communicator.world()
        var floats: [Float] = [1.5, -2, 3.25]
        try world.allReduce(&floats, .sum)
        XCTAssertEqual(floats, [1.5, -2, 3.25])
        try world.allReduceAverage(&floats)
        XCTAssertEqual(floats, [1.5, -2, 3.25])
        XCTAssertEqual(try world.allReduceAverage(0.125), 0.125)
        XCTAssertEqual(try world.allReduce(Int64(-9), .maximum), -9)
        XCTAssertEqual(try world.allReduce(7, .minimum), 7)

        var buffer: [Double] = [4, 5]
        try buffer.withUnsafeMutableBufferPointer { try world.broadcast($0, from: 0) }
        XCTAssertEqual(buffer, [4, 5])
        XCTAssertEqual(try world.broadcast(Int64(11), from: 0), 11)
        XCTAssertEqual(try world.broadcast([UInt8](), from: 0), [])
        XCTAssertEqual(try world.broadcast("{\"epoch\": 3} ✓", from: 0), "{\"epoch\": 3} ✓")
        XCTAssertEqual(try world.broadcast(Data([1, 2, 3]), from: 0), Data([1, 2, 3]))

        XCTAssertEqual(try world.gather([Float(1), 2, 3]), [1, 2, 3])
        XCTAssertEqual(try world.gather([Int32]()), [])
        XCTAssertEqual(try world.allGather(Int32(5)), [5])

        var statistics: [Float] = [0.5, 8]
        statistics.withUnsafeMutableBufferPointer { world.sumInPlace($0) }
        XCTAssertEqual(statistics, [0.5, 8])
    }

    func testRootOutsideTheWorldIsRejected() throws {
        let world = try Communicator.world()
        XCTAssertThrowsError(try world.broadcast(Float(1), from: 1)) { error in
            guard case let CommunicatorError.invalidRoot(_, root, size) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(root, 1)
            XCTAssertEqual(size, 1)
        }
        XCTAssertThrowsError(try world.gather([Float(1)], to: -1))
    }
}
