@testable import DataPipeline
@testable import DistTrain
import Foundation
@testable import Storage
import XCTest

/// Seeded mutation fuzzing of everything that reads user-supplied bytes: the run-file parser and
/// the data readers (IDX raw and gzipped, CIFAR, HDF5 shards, JPEG). Each input is a valid file
/// with a few random byte flips, insertions, deletions, duplicated or cut ranges, and
/// interesting integers written over it. The reader must return or throw its typed error; a
/// crash (a trap, an overflow, an allocation failure) ends the test process and fails the suite.
///
/// `DISTTRAIN_FUZZ_ITERATIONS` scales the count for longer offline runs (the suite's default
/// keeps the whole class to a few seconds); `DISTTRAIN_FUZZ_SEED` picks another seed.
final class FuzzTests: XCTestCase {
    static let iterations = Int(ProcessInfo.processInfo.environment["DISTTRAIN_FUZZ_ITERATIONS"] ?? "") ?? 2_000
    static let seed = UInt64(ProcessInfo.processInfo.environment["DISTTRAIN_FUZZ_SEED"] ?? "") ?? 10

    /// Applies one to four random mutations to `bytes`.
    static func mutate(_ bytes: [UInt8], _ random: inout SampleRandom) -> [UInt8] {
        var result = bytes
        let interesting: [UInt32] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF, 0x1_0000]
        for _ in 0...random.nextInt(below: 4) {
            let position = result.isEmpty ? 0 : random.nextInt(below: result.count)
            switch random.nextInt(below: 7) {
            case 0 where !result.isEmpty:
                result[position] ^= UInt8(1 << random.nextInt(below: 8))
            case 1 where !result.isEmpty:
                result[position] = UInt8(truncatingIfNeeded: random.nextUInt64())
            case 2:
                result.insert(UInt8(truncatingIfNeeded: random.nextUInt64()), at: position)
            case 3 where !result.isEmpty:
                result.removeSubrange(position..<min(result.count, position + 1 + random.nextInt(below: 16)))
            case 4 where !result.isEmpty:
                let end = min(result.count, position + 1 + random.nextInt(below: 64))
                result.insert(contentsOf: result[position..<end], at: random.nextInt(below: result.count))
            case 5:
                result = Array(result.prefix(position))
            default:
                let value = interesting[random.nextInt(below: interesting.count)]
                for (offset, byte) in [24, 16, 8, 0].map({ UInt8(truncatingIfNeeded: value >> $0) }).enumerated()
                where position + offset < result.count {
                    result[position + offset] = byte
                }
            }
        }
        return result
    }

    /// Runs `body` on `count` mutations of `seed`; `body` returns normally or throws an error
    /// that `isExpected` accepts. Returns how many inputs were accepted, for the report.
    @discardableResult
    static func fuzz(_ seedInput: [UInt8], count: Int, purpose: Int, isExpected: (Error) -> Bool,
                     file: StaticString = #filePath, line: UInt = #line, _ body: ([UInt8]) throws -> Void) -> Int {
        var random = SampleRandom(seed: seed, purpose: .augmentation, epoch: purpose)
        var accepted = 0
        for iteration in 0..<count {
            let input = mutate(seedInput, &random)
            do {
                try body(input)
                accepted += 1
            } catch where isExpected(error) {
                continue
            } catch {
                XCTFail("iteration \(iteration): unexpected \(type(of: error)): \(error)", file: file, line: line)
            }
        }
        print("fuzz \(purpose): \(count) inputs, \(accepted) accepted, \(count - accepted) refused with a typed error")
        return accepted
    }

    func testRunFileParserAndValidation() throws {
        let runFile = Array("""
            {"name": "fuzz", "seed": 1, "data": {"dataset": "cifar100", "root": "/nonexistent", "validationHoldout": 500,
             "limitTrain": 5000}, "model": {"nBlocks": 3, "stepmode": "lin_grow", "step": 1, "base": 1, "nChannels": 16,
             "growthRate": 6, "grFactor": [1, 2, 4], "bnFactor": [1, 2, 4], "prune": "max", "reduction": 0.5},
             "phase1": {"epochs": 2, "batchSize": 64, "lr": 0.1, "schedule": {"kind": "multistep", "milestones": [0.5, 0.75]}},
             "phase2": {"epochs": 1, "batchSize": 64, "lr": 0.1, "schedule": {"kind": "step", "every": 30, "factor": 0.1}},
             "ofa": {"temperature": 1, "gamma": 0.1}, "checkpoint": {"everySteps": 0, "keep": 3},
             "evaluation": {"budgets": 40, "batchSize": 128}}
            """.utf8)
        // The unmutated file is valid, so the mutations explore around a real run file.
        XCTAssertNoThrow(try RunConfiguration(json: Data(runFile), file: "fuzz.json")
            .validate(worldSize: 1, file: "fuzz.json", requireDataRoot: false))
        Self.fuzz(runFile, count: Self.iterations * 2, purpose: 1, isExpected: { $0 is ConfigurationError }) { bytes in
            try RunConfiguration(json: Data(bytes), file: "fuzz.json").validate(worldSize: 2, file: "fuzz.json", requireDataRoot: false)
        }
    }

    /// IDX images and labels, raw and gzipped (the gzip layer then meets the corruption first).
    func testIDXReaderRawAndGzipped() throws {
        let images = DataReaderTests.imagesGzip, labels = DataReaderTests.labelsGzip
        let isDataError: (Error) -> Bool = { $0 is DataError }
        for (gzipped, dimensions) in [(images, 3), (labels, 1)] {
            let raw = try Gzip.decompress(gzipped)
            Self.fuzz(raw, count: Self.iterations, purpose: 2 + dimensions, isExpected: isDataError) { bytes in
                _ = try IDXFile.parse(bytes, path: "fuzz", dimensionCount: dimensions)
            }
            Self.fuzz(gzipped, count: Self.iterations, purpose: 3 + dimensions, isExpected: { $0 is GzipError || $0 is DataError }) { bytes in
                _ = try IDXFile.parse(try Gzip.decompress(bytes), path: "fuzz", dimensionCount: dimensions)
            }
        }
    }

    func testCIFARReader() {
        var random = SampleRandom(seed: Self.seed, purpose: .augmentation, epoch: 9)
        let records = (0..<3).flatMap { record -> [UInt8] in
            [UInt8(record), UInt8(record * 7 % 100)] + (0..<CIFARFile.imageBytes).map { _ in UInt8(truncatingIfNeeded: random.nextUInt64()) }
        }
        Self.fuzz(records, count: Self.iterations / 2, purpose: 10, isExpected: { $0 is DataError }) { bytes in
            var pixels: [UInt8] = [], labels: [Int32] = []
            try CIFARFile.parse(bytes, path: "fuzz", labelBytes: 2, labelOffset: 1, classCount: 100, pixels: &pixels, labels: &labels)
        }
    }

    /// HDF5 shards as `prepare imagenet` and `pixels` writers leave them, damaged on disk, then
    /// opened and read the way training reads them.
    func testHDF5ShardReader() throws {
        let directory = try TemporaryDirectory()
        let jpeg = try JPEGEncoder.encode(pixels: (0..<(16 * 16 * 3)).map { UInt8($0 % 251) }, width: 16, height: 16, channels: 3)
        var seeds: [[UInt8]] = []
        for content in ["pixels", "jpeg"] {
            let path = directory.path + "/\(content).h5"
            let file = try HDF5File.create(path)
            let root = try file.root
            if content == "pixels" {
                try root.createDataset("pixels", values: (0..<96).map { UInt8($0) }, shape: [2, 4, 4, 3])
            } else {
                try root.createByteArrayDataset("jpeg", byteArrays: [jpeg, jpeg])
            }
            try root.createDataset("labels", values: [Int32(1), 0], shape: [2])
            try root.writeAttribute("classes", "[\"a\", \"b\"]")
            try file.close()
            seeds.append(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        }
        let shardDirectory = directory.path + "/shards"
        try FileManager.default.createDirectory(atPath: shardDirectory, withIntermediateDirectories: true)
        let shardPath = shardDirectory + "/SHARD-00000.h5"
        for (index, seed) in seeds.enumerated() {
            Self.fuzz(seed, count: Self.iterations / 8, purpose: 20 + index,
                      isExpected: { $0 is DataError || $0 is HDF5Error || $0 is JPEGError }) { bytes in
                try Data(bytes).write(to: URL(fileURLWithPath: shardPath))
                let shards = try ShardImages(directory: shardDirectory)
                for sample in 0..<min(shards.count, 4) {
                    switch shards.content {
                    case .jpeg:
                        try Self.decodeAsTrainingDoes(try shards.jpeg(sample).bytes)
                    case let .pixels(height, width, channels):
                        var buffer = [UInt8](repeating: 0, count: height * width * channels)
                        try buffer.withUnsafeMutableBufferPointer { try shards.pixels(sample, into: $0) }
                    }
                }
            }
        }
    }

    /// JPEG files decoded as the ImageNet pipeline decodes them: header, then a DCT reduction.
    func testJPEGDecoder() throws {
        let jpeg = try JPEGEncoder.encode(pixels: (0..<(24 * 16 * 3)).map { UInt8($0 * 7 % 256) }, width: 24, height: 16, channels: 3)
        Self.fuzz(jpeg, count: Self.iterations, purpose: 30, isExpected: { $0 is JPEGError }, Self.decodeAsTrainingDoes)
    }

    static func decodeAsTrainingDoes(_ bytes: [UInt8]) throws {
        let decoder = JPEGDecoder()
        try bytes.withUnsafeBufferPointer { buffer in
            let header = try decoder.header(buffer)
            _ = try decoder.decode(buffer, header: header, reduction: JPEGDecoder.reduction(for: header, minimumWidth: 8, minimumHeight: 8))
        }
    }
}
