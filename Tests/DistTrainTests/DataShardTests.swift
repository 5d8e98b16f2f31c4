@testable import DataPipeline
@testable import DistTrain
@testable import Storage
import XCTest

final class DataShardTests: XCTestCase {
    /// An ImageNet-style tree: train/n01 (2 pictures, then a truncated JPEG and a text file),
    /// train/n02 (2 pictures), val/n01 and val/n02 (1 picture each). Returns the JPEG bytes by path.
    static func makeTree(_ directory: TemporaryDirectory) throws -> [String: [UInt8]] {
        var written = [String: [UInt8]]()
        func picture(_ name: String, width: Int, height: Int, phase: Int) throws {
            let jpeg = try JPEGEncoder.encode(pixels: DataJPEGTests.picture(width: width, height: height, phase: phase),
                                              width: width, height: height, channels: 3, quality: 92)
            try directory.write(name, jpeg)
            written[directory.path + "/" + name] = jpeg
        }
        try picture("train/n01/a.JPEG", width: 120, height: 90, phase: 0)
        try picture("train/n01/b.JPEG", width: 64, height: 100, phase: 5)
        let whole = try JPEGEncoder.encode(pixels: DataJPEGTests.picture(width: 50, height: 50), width: 50, height: 50, channels: 3)
        try directory.write("train/n01/c.JPEG", Array(whole.prefix(whole.count - 200)))
        try directory.write("train/n01/d.txt", Array("not an image".utf8))
        try picture("train/n02/e.JPEG", width: 300, height: 200, phase: 3)
        try picture("train/n02/f.JPEG", width: 100, height: 70, phase: 7)
        try picture("val/n01/g.JPEG", width: 80, height: 80, phase: 1)
        try picture("val/n02/h.JPEG", width: 150, height: 230, phase: 2)
        return written
    }

    final class Recorder: @unchecked Sendable {
        let lock = NSLock()
        var skipped = [ImageNetPreparation.SkippedFile]()
        var lastProgress: ImageNetPreparation.Progress?
    }

    func prepare(_ source: String, _ output: String, recorder: Recorder = Recorder()) throws -> [ImageNetPreparation.SplitSummary] {
        try ImageNetPreparation(source: source, output: output, shardSize: 2, workers: 2).run(
            progress: { progress in recorder.lock.withLock { recorder.lastProgress = progress } },
            skippedFile: { file in recorder.lock.withLock { recorder.skipped.append(file) } })
    }

    func testPrepareStoresOriginalBytesSkipsBadFilesAndResumes() throws {
        let source = try TemporaryDirectory()
        let output = try TemporaryDirectory()
        let originals = try Self.makeTree(source)
        let recorder = Recorder()
        let summaries = try prepare(source.path, output.path, recorder: recorder)
        XCTAssertEqual(summaries.map(\.split), ["train", "val"])
        // train: 6 files in shards of 2: [a b] [c d] [e f]; c and d are skipped, so shard 1 is empty.
        XCTAssertEqual(summaries[0].imagesStored, 4)
        XCTAssertEqual(summaries[0].shardsWritten, 3)
        XCTAssertEqual(summaries[0].skipped.map { ($0.path as NSString).lastPathComponent }, ["c.JPEG", "d.txt"])
        XCTAssertEqual(summaries[0].skipped.map(\.reason), ["truncated (no end-of-image marker)", "not a JPEG file (starts with 6e 6f 74 20)"])
        XCTAssertEqual(Set(recorder.skipped.map(\.path)), Set(summaries[0].skipped.map(\.path)))
        XCTAssertEqual(summaries[1].imagesStored, 2)
        XCTAssertEqual(recorder.lastProgress?.filesDone, recorder.lastProgress?.filesTotal)

        let train = try ShardImages(directory: output.path + "/train")
        XCTAssertEqual(train.classes, ["n01", "n02"])
        XCTAssertEqual(train.labels, [0, 0, 1, 1])
        XCTAssertEqual(train.shardPaths.count, 3)
        let expectedFiles = ["n01/a.JPEG", "n01/b.JPEG", "n02/e.JPEG", "n02/f.JPEG"]
        for (sample, name) in expectedFiles.enumerated() {
            XCTAssertEqual(try train.jpeg(sample).bytes, originals[source.path + "/train/" + name], name)
        }
        // The empty shard is passed over: sample 2 is the first record of shard 2.
        XCTAssertTrue(train.location(of: 1) == (0, 1))
        XCTAssertTrue(train.location(of: 2) == (2, 0))
        XCTAssertTrue(train.location(of: 3) == (2, 1))

        // Rerun: every shard is kept. Then lose one shard: only it is rewritten.
        let again = try prepare(source.path, output.path)
        XCTAssertEqual(again.map(\.shardsKept), [3, 1])
        XCTAssertEqual(again.map(\.shardsWritten), [0, 0])
        XCTAssertEqual(again[0].skipped.count, 2)
        XCTAssertEqual(again[0].imagesStored, 4)
        try FileManager.default.removeItem(atPath: output.path + "/train/SHARD-00001.h5")
        let repaired = try prepare(source.path, output.path)
        XCTAssertEqual(repaired[0].shardsKept, 2)
        XCTAssertEqual(repaired[0].shardsWritten, 1)
        XCTAssertEqual(try ShardImages(directory: output.path + "/train").labels, [0, 0, 1, 1])
    }

    func testTrainingDataOverShards() throws {
        let source = try TemporaryDirectory()
        let output = try TemporaryDirectory()
        let originals = try Self.makeTree(source)
        _ = try prepare(source.path, output.path)
        let configuration = DataConfiguration(dataset: .imagenet, root: output.path, validationHoldout: 1,
                                              limitTrain: nil, limitTest: nil, workers: nil)
        let data = try TrainingData(configuration: configuration, inputSize: 32, seed: 3, workers: 2)
        XCTAssertEqual([data.classCount, data.channels, data.imageSize, data.testCount], [2, 3, 32, 2])
        XCTAssertEqual(data.classNames, ["n01", "n02"])
        let test = try DataLoaderTests.collect(data.evaluationBatches(split: .test, batchSize: 2, rank: 0, worldSize: 1),
                                               channels: 3, size: 32)
        XCTAssertEqual(test.map(\.label), [0, 1])
        // Independent path: full-size decode, then Resize(37) + CenterCrop(32) as one resampling.
        let jpeg = try XCTUnwrap(originals[source.path + "/val/n02/h.JPEG"])
        let decoder = JPEGDecoder()  // owns the pixels `image` points to
        let image = try jpeg.withUnsafeBufferPointer { try decoder.decode($0) }
        let axes = ImageNetGeometry.resizeThenCentreCropAxes(height: 230, width: 150, resize: 37, crop: 32)
        var expected = [Float](repeating: 0, count: 3 * 32 * 32)
        BilinearResampler().resample(source: image.pixels, rowStride: 150 * 3, channels: 3, vertical: axes.vertical,
                                     horizontal: axes.horizontal, flip: false, normalization: .of(.imagenet),
                                     destination: &expected, channelStride: 1024)
        withExtendedLifetime(decoder) {}
        // 150 → 37 columns: the loader decodes at 1/4 (38 columns) first; the two agree within JPEG noise.
        let meanDifference = zip(test[1].image, expected).map { abs($0 - $1) }.reduce(0, +) / Float(expected.count)
        XCTAssertLessThan(meanDifference, 0.05)
        let training = try DataLoaderTests.collect(
            data.trainingBatches(epoch: 0, globalBatchSize: 2, rank: 0, worldSize: 1, firstStep: 0), channels: 3, size: 32)
        XCTAssertEqual(training.count, 2)
        XCTAssertTrue(training.allSatisfy { $0.image.allSatisfy(\.isFinite) })
        let again = try DataLoaderTests.collect(
            data.trainingBatches(epoch: 0, globalBatchSize: 2, rank: 0, worldSize: 1, firstStep: 0), channels: 3, size: 32)
        XCTAssertEqual(again.map(\.image), training.map(\.image))
    }

    func testPixelShardRoundTrip() throws {
        let directory = try TemporaryDirectory()
        let pixels: [UInt8] = (0..<180).map { (index: Int) -> UInt8 in UInt8(index * 3 % 256) }
        let file = try HDF5File.create(directory.path + "/SHARD-00000.h5")
        let root = try file.root
        try root.createDataset("pixels", values: pixels, shape: [3, 4, 5, 3])
        try root.createDataset("labels", values: [Int32(2), 0, 1], shape: [3])
        try root.writeAttribute("classes", "[\"x\", \"y\", \"z\"]")
        try file.close()
        let shards = try ShardImages(directory: directory.path)
        XCTAssertEqual(shards.content, .pixels(height: 4, width: 5, channels: 3))
        XCTAssertEqual(shards.labels, [2, 0, 1])
        var buffer = [UInt8](repeating: 0, count: 60)
        try buffer.withUnsafeMutableBufferPointer { try shards.pixels(2, into: $0) }
        XCTAssertEqual(buffer, Array(pixels[120..<180]))
    }

    func testBadShardsAndTreesAreNamed() throws {
        let directory = try TemporaryDirectory()
        let file = try HDF5File.create(directory.path + "/SHARD-00000.h5")
        try file.root.createByteArrayDataset("jpeg", byteArrays: [[1, 2, 3]])
        try file.root.writeAttribute("classes", "[\"a\"]")
        try file.close()
        XCTAssertThrowsError(try ShardImages(directory: directory.path)) { error in
            guard case .shardMissingDataset(let path, "labels") = error as? DataError else { return XCTFail("got \(error)") }
            XCTAssertTrue(path.hasSuffix("SHARD-00000.h5"))
        }
        let empty = try TemporaryDirectory()
        XCTAssertThrowsError(try ShardImages(directory: empty.path)) { error in
            guard case .noShards = error as? DataError else { return XCTFail("got \(error)") }
        }
        let tree = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: tree.path + "/train/n01", withIntermediateDirectories: true)
        try tree.write("train/n02/a.JPEG", [0xFF, 0xD8])
        XCTAssertThrowsError(try prepare(tree.path, tree.path + "/out")) { error in
            guard case .emptyClassFolder(let path) = error as? DataError else { return XCTFail("got \(error)") }
            XCTAssertEqual(path, tree.path + "/train/n01")
        }
        XCTAssertThrowsError(try prepare(tree.path + "/missing", tree.path + "/out")) { error in
            guard case .sourceNotFound = error as? DataError else { return XCTFail("got \(error)") }
        }
        try FileManager.default.removeItem(atPath: tree.path + "/train/n01")
        XCTAssertThrowsError(try prepare(tree.path, tree.path + "/out")) { error in
            // train/ is fine now; val/ is missing.
            guard case .missingDirectory(let path) = error as? DataError else { return XCTFail("got \(error)") }
            XCTAssertEqual(path, tree.path + "/val")
        }
    }
}
