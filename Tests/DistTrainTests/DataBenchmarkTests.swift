import XCTest
@testable import Benchmarks
@testable import DistTrain

/// The data benchmark's code paths on a tiny synthetic Fashion-MNIST; what it measures (speed)
/// is never asserted, only that it ran over the images it was asked for.
final class DataBenchmarkTests: XCTestCase {
    /// A Fashion-MNIST-shaped root: `training` and `test` 28×28 images labelled 0, 1, 2, 0, …
    static func makeFashionMNIST(_ directory: TemporaryDirectory, training: Int, test: Int) throws {
        for (prefix, count) in [("train", training), ("t10k", test)] {
            try directory.write("\(prefix)-images-idx3-ubyte",
                                DataReaderTests.idxImages(count: count, height: 28, width: 28) { UInt8(($0 * 7) % 256) })
            try directory.write("\(prefix)-labels-idx1-ubyte", DataReaderTests.idxLabels((0..<count).map { UInt8($0 % 3) }))
        }
    }

    func testJPEGBenchmarkPreparesShardsAndReportsEveryRate() throws {
        let root = try TemporaryDirectory()
        try Self.makeFashionMNIST(root, training: 12, test: 2)
        let result = try DataBenchmark.imageNetJPEG(fashionMNISTRoot: root.path, width: 40, height: 30,
                                                    trainingImages: 9, validationImages: 3, shardSize: 4, batchSize: 4)
        XCTAssertEqual(result.sourceImages, 12)
        XCTAssertEqual(result.storedTrainingImages, 9)
        XCTAssertEqual(result.storedValidationImages, 3)
        XCTAssertEqual(result.shardsWritten, 3 + 1)  // 9 training files in shards of 4, 3 validation files in one
        XCTAssertGreaterThan(result.averageBytes, 0)
        XCTAssertEqual(result.renderers.map { "\($0.augmented) \($0.reducesInDCTDomain)" },
                       ["true true", "false true", "true false", "false false"])
        XCTAssertEqual(result.streams.map(\.workers), [1, 2])
        let rates = [result.prepareFilesPerSecond, result.decodeImagesPerCPUSecond]
            + result.renderers.map(\.imagesPerCPUSecond) + result.streams.map(\.imagesPerSecond)
        for rate in rates { XCTAssertTrue(rate.isFinite && rate > 0, "rate \(rate)") }
        XCTAssertEqual(result.description.split(separator: "\n").count, 1 + 2 + 4 + 2)
    }

    func testLoaderBenchmarkDrawsTheEpochAndTheSimulatedBatches() throws {
        let root = try TemporaryDirectory()
        try Self.makeFashionMNIST(root, training: 40, test: 5)
        let result = try DataBenchmark.fashionMNISTLoader(root: root.path, batchSize: 8, computeSecondsPerBatch: 0.001,
                                                          simulatedBatches: 3, validationHoldout: 10, trainingLimit: 30)
        XCTAssertEqual(result.imagesOpened, 30 + 5)
        XCTAssertEqual(result.epochImages, 16)  // 20 training samples after the hold-out: 2 full batches of 8
        XCTAssertEqual(result.stepsPerEpoch, 2)
        XCTAssertEqual(result.simulatedBatches, 2)  // asked for 3, the epoch has 2
        XCTAssertTrue(result.imagesPerSecond.isFinite && result.imagesPerSecond > 0)
        XCTAssertGreaterThanOrEqual(result.dataWaitSeconds, 0)
        XCTAssertEqual(result.description.split(separator: "\n").count, 3)
    }

    func testMissingFashionMNISTNamesThePath() {
        XCTAssertThrowsError(try DataBenchmark.fashionMNISTLoader(root: "/nonexistent/fashion-mnist")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/fashion-mnist"), "\(error)")
        }
        XCTAssertThrowsError(try DataBenchmark.imageNetJPEG(fashionMNISTRoot: "/nonexistent/fashion-mnist")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/fashion-mnist"), "\(error)")
        }
    }
}
