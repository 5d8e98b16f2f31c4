@testable import DataPipeline
@testable import DistTrain
import XCTest

final class DataLoaderTests: XCTestCase {
    /// A CIFAR-10 directory of 5 × 40 training and 30 test records with varied pixels; label = record % 10.
    static func makeCIFAR10(_ directory: TemporaryDirectory) throws {
        for batch in 1...5 {
            let records = (0..<40).flatMap { DataReaderTests.cifarRecord(label: UInt8($0 % 10), seed: batch * 100 + $0) }
            try directory.write("data_batch_\(batch).bin", records)
        }
        try directory.write("test_batch.bin", (0..<30).flatMap { DataReaderTests.cifarRecord(label: UInt8($0 % 10), seed: 9000 + $0) })
    }

    static func configuration(_ root: String, holdout: Int = 20) -> DataConfiguration {
        DataConfiguration(dataset: .cifar10, root: root, validationHoldout: holdout, limitTrain: nil, limitTest: nil, workers: nil)
    }

    /// Every batch of a stream as (sample index → its [C, S, S] image, label).
    static func collect(_ stream: BatchStream, channels: Int, size: Int) throws -> [(sample: Int, image: [Float], label: Int32)] {
        var result = [(sample: Int, image: [Float], label: Int32)]()
        while let batch = try stream.next() {
            for position in 0..<batch.count {
                var image = [Float]()
                for channel in 0..<channels {
                    let plane = batch.images + (channel * batch.count + position) * size * size
                    image += Array(UnsafeBufferPointer(start: plane, count: size * size))
                }
                result.append((batch.sampleIndices[position], image, batch.labels[position]))
            }
        }
        return result
    }

    func testTestBatchesAreChannelMajorAndNormalised() throws {
        let directory = try TemporaryDirectory()
        try Self.makeCIFAR10(directory)
        let data = try TrainingData(configuration: Self.configuration(directory.path), inputSize: 32, seed: 1, workers: 2)
        XCTAssertEqual([data.classCount, data.channels, data.imageSize, data.testCount], [10, 3, 32, 30])
        let stream = data.evaluationBatches(split: .test, batchSize: 8, rank: 0, worldSize: 1)
        XCTAssertEqual(stream.sampleCount, 30)
        let first = try XCTUnwrap(try stream.next())
        XCTAssertEqual(first.count, 8)
        XCTAssertEqual(first.sampleIndices, Array(0..<8))
        let normalization = Normalization.of(.cifar10)
        // Sample 5, channel 2 (blue), pixel (y 3, x 7): record byte 1 + 2048 + 3·32 + 7.
        let record = DataReaderTests.cifarRecord(label: 5, seed: 9005)
        let pixel = Float(record[1 + 2048 + 3 * 32 + 7])
        let expected = (pixel / 255 - normalization.mean[2]) / normalization.standardDeviation[2]
        XCTAssertEqual(first.images[(2 * 8 + 5) * 1024 + 3 * 32 + 7], expected, accuracy: 1e-5)
        XCTAssertEqual(first.labels[5], 5)
        var counts = [first.count]
        while let batch = try stream.next() { counts.append(batch.count) }
        XCTAssertEqual(counts, [8, 8, 8, 6])
        XCTAssertNil(try stream.next())
    }

    func testSamplesAndCropsDoNotDependOnWorldSizeOrWorkers() throws {
        let directory = try TemporaryDirectory()
        try Self.makeCIFAR10(directory)
        let configuration = Self.configuration(directory.path)
        let single = try TrainingData(configuration: configuration, inputSize: 32, seed: 7, workers: 1)
        let reference = try Self.collect(single.trainingBatches(epoch: 3, globalBatchSize: 16, rank: 0, worldSize: 1, firstStep: 0),
                                         channels: 3, size: 32)
        XCTAssertEqual(reference.count, (200 - 20) / 16 * 16)
        XCTAssertEqual(single.trainingStepsPerEpoch(globalBatchSize: 16), 11)
        for (worldSize, workers) in [(2, 3), (4, 2)] {
            let data = try TrainingData(configuration: configuration, inputSize: 32, seed: 7, workers: workers)
            XCTAssertEqual(data.validationIndices, single.validationIndices)
            let ranks = try (0..<worldSize).map {
                try Self.collect(data.trainingBatches(epoch: 3, globalBatchSize: 16, rank: $0, worldSize: worldSize, firstStep: 0),
                                 channels: 3, size: 32)
            }
            // Step by step, the ranks' parts concatenate to the single-rank batch, crops included.
            var merged = [(sample: Int, image: [Float], label: Int32)]()
            let perRank = 16 / worldSize
            for step in 0..<11 { for rank in ranks { merged += rank[step * perRank..<(step + 1) * perRank] } }
            XCTAssertEqual(merged.map(\.sample), reference.map(\.sample))
            XCTAssertEqual(merged.map(\.label), reference.map(\.label))
            for index in reference.indices { XCTAssertEqual(merged[index].image, reference[index].image) }
        }
        // The training samples are the training indices, each once, and labels follow the source.
        XCTAssertEqual(Set(reference.map(\.sample)).isSubset(of: Set(single.trainingIndices)), true)
        XCTAssertEqual(Set(reference.map(\.sample)).count, reference.count)
        for entry in reference { XCTAssertEqual(Int(entry.label), entry.sample % 40 % 10) }
        // Another epoch visits the samples in another order and crops them differently.
        let epoch4 = try Self.collect(single.trainingBatches(epoch: 4, globalBatchSize: 16, rank: 0, worldSize: 1, firstStep: 0),
                                      channels: 3, size: 32)
        XCTAssertNotEqual(epoch4.map(\.sample), reference.map(\.sample))
        let epoch3Images = Dictionary(uniqueKeysWithValues: reference.map { ($0.sample, $0.image) })
        var changed = 0
        for entry in epoch4 where epoch3Images[entry.sample] != nil && epoch3Images[entry.sample]! != entry.image { changed += 1 }
        XCTAssertGreaterThan(changed, epoch4.count / 2)
    }

    func testValidationSplitRestoresAndStreamsTheHoldout() throws {
        let directory = try TemporaryDirectory()
        try Self.makeCIFAR10(directory)
        let drawn = try TrainingData(configuration: Self.configuration(directory.path), inputSize: 32, seed: 11, workers: 1)
        XCTAssertEqual(drawn.validationIndices.count, 20)
        XCTAssertEqual(drawn.trainingIndices.count, 180)
        let restored = try TrainingData(configuration: Self.configuration(directory.path, holdout: 999), inputSize: 32, seed: 99,
                                        validationIndices: drawn.validationIndices, workers: 1)
        XCTAssertEqual(restored.trainingIndices, drawn.trainingIndices)
        let halves = try (0..<2).map {
            try Self.collect(restored.evaluationBatches(split: .validation, batchSize: 6, rank: $0, worldSize: 2), channels: 3, size: 32)
        }
        XCTAssertEqual(halves.flatMap { $0.map(\.sample) }, drawn.validationIndices)
        XCTAssertEqual(halves.flatMap { $0.map(\.label) }, drawn.labels(of: .validation))
    }

    func testAbandonedStreamStopsItsWorkers() throws {
        let directory = try TemporaryDirectory()
        try Self.makeCIFAR10(directory)
        let data = try TrainingData(configuration: Self.configuration(directory.path), inputSize: 32, seed: 1, workers: 2)
        for _ in 0..<5 {
            let stream = data.trainingBatches(epoch: 0, globalBatchSize: 4, rank: 0, worldSize: 1, firstStep: 0)
            _ = try stream.next()
        }
        let resumed = data.trainingBatches(epoch: 0, globalBatchSize: 4, rank: 0, worldSize: 1, firstStep: 40)
        XCTAssertEqual(resumed.sampleCount, 5 * 4)
        XCTAssertGreaterThanOrEqual(resumed.dataWaitSeconds, 0)
    }

    func testMissingRootAndLimits() throws {
        XCTAssertThrowsError(try TrainingData(configuration: Self.configuration("/nonexistent/cifar"), inputSize: 32, seed: 0, workers: 1)) { error in
            guard case .rootNotFound("/nonexistent/cifar") = error as? DataError else { return XCTFail("got \(error)") }
        }
        let directory = try TemporaryDirectory()
        try Self.makeCIFAR10(directory)
        var configuration = Self.configuration(directory.path, holdout: 10)
        configuration.limitTrain = 50
        configuration.limitTest = 7
        let data = try TrainingData(configuration: configuration, inputSize: 32, seed: 0, workers: 1)
        XCTAssertEqual(data.trainingIndices.count + data.validationIndices.count, 50)
        XCTAssertEqual(data.testCount, 7)
        configuration.validationHoldout = 50
        XCTAssertThrowsError(try TrainingData(configuration: configuration, inputSize: 32, seed: 0, workers: 1)) { error in
            guard case .holdoutTooLarge(50, 50) = error as? DataError else { return XCTFail("got \(error)") }
        }
    }

    func testRealFashionMNISTBatches() throws {
        let root = "/usr/share/datasets/fashion-mnist"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: root + "/t10k-images-idx3-ubyte.gz"), "no Fashion-MNIST at \(root)")
        let configuration = DataConfiguration(dataset: .fashionMNIST, root: root, validationHoldout: 5000,
                                              limitTrain: nil, limitTest: nil, workers: nil)
        let data = try TrainingData(configuration: configuration, inputSize: 32, seed: 0, workers: 1)
        XCTAssertEqual([data.channels, data.imageSize, data.classCount, data.testCount], [1, 32, 10, 10_000])
        XCTAssertEqual(data.trainingIndices.count, 55_000)
        let batch = try XCTUnwrap(try data.evaluationBatches(split: .test, batchSize: 4, rank: 0, worldSize: 1).next())
        XCTAssertEqual(batch.labels[0], 9)
        // The 2-pixel zero border of the 28 → 32 canvas normalises to −mean/std.
        XCTAssertEqual(batch.images[0], -0.2860 / 0.3530, accuracy: 1e-5)
    }
}
