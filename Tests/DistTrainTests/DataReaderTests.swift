@testable import DataPipeline
@testable import DistTrain
import Foundation
import XCTest

/// Makes a fresh temporary directory for one test and removes it afterwards.
final class TemporaryDirectory {
    let path: String

    init(_ name: String = #function) throws {
        let safeName = name.filter { $0.isLetter || $0.isNumber }
        path = NSTemporaryDirectory() + "disttrain-data-\(safeName)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ bytes: [UInt8]) throws {
        let file = "\(path)/\(name)"
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

final class DataReaderTests: XCTestCase {
    /// Python: `struct.pack(">IIII", 0x803, 3, 4, 5) + bytes(range(60))`, gzipped.
    static let imagesGzip = DataGzipTests.bytes(hex: "1f8b08000000000002036360e06066606000611620666560646266616563e7e0e4e2e6e1e5e3171014121611151397909492969195935750545256515553d7d0d4d2d6d1d5d33730343236313533b7b0b4b20600ec1a955b4c000000")
    /// Python: `struct.pack(">II", 0x801, 3) + bytes([9, 0, 3])`, gzipped.
    static let labelsGzip = DataGzipTests.bytes(hex: "1f8b08000000000002036360e06064606060e664600600b1d698980b000000")

    static func idxImages(count: Int, height: Int, width: Int, pixel: (Int) -> UInt8) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 8, 3]
        for size in [count, height, width] {
            bytes += [UInt8(size >> 24 & 255), UInt8(size >> 16 & 255), UInt8(size >> 8 & 255), UInt8(size & 255)]
        }
        return bytes + (0..<count * height * width).map(pixel)
    }

    static func idxLabels(_ labels: [UInt8]) -> [UInt8] {
        let count = labels.count
        return [0, 0, 8, 1, UInt8(count >> 24 & 255), UInt8(count >> 16 & 255), UInt8(count >> 8 & 255), UInt8(count & 255)] + labels
    }

    func testGzippedIDXParses() throws {
        let images = try IDXFile.parse(try Gzip.decompress(Self.imagesGzip), path: "images", dimensionCount: 3)
        XCTAssertEqual(images.dimensions, [3, 4, 5])
        XCTAssertEqual(images.values, (0..<60).map { UInt8($0) })
        let labels = try IDXFile.parse(try Gzip.decompress(Self.labelsGzip), path: "labels", dimensionCount: 1)
        XCTAssertEqual(labels.values, [9, 0, 3])
    }

    func testRawAndGzippedSplitsLoadTheSame() throws {
        let gzipped = try TemporaryDirectory()
        try gzipped.write("train-images-idx3-ubyte.gz", Self.imagesGzip)
        try gzipped.write("train-labels-idx1-ubyte.gz", Self.labelsGzip)
        let raw = try TemporaryDirectory()
        try raw.write("raw/train-images-idx3-ubyte", try Gzip.decompress(Self.imagesGzip))
        try raw.write("raw/train-labels-idx1-ubyte", try Gzip.decompress(Self.labelsGzip))
        let fromGzip = try IDXFile.loadSplit(root: gzipped.path, training: true, classCount: 10)
        let fromRaw = try IDXFile.loadSplit(root: raw.path, training: true, classCount: 10)
        XCTAssertEqual(fromGzip.labels, [9, 0, 3])
        XCTAssertEqual(fromGzip.pixels, fromRaw.pixels)
        XCTAssertEqual(fromGzip.labels, fromRaw.labels)
        XCTAssertEqual([fromGzip.height, fromGzip.width, fromGzip.channels], [4, 5, 1])
        XCTAssertEqual(fromGzip.pixels[20 + 7], 27)
    }

    func testTruncatedIDXNamesFileAndRecord() throws {
        let bytes = Self.idxImages(count: 3, height: 4, width: 5) { UInt8($0 % 256) }
        XCTAssertThrowsError(try IDXFile.parse(Array(bytes.dropLast(25)), path: "/data/x-images", dimensionCount: 3)) { error in
            guard case .truncatedFile(let path, let record, let expected, let actual) = error as? DataError else {
                return XCTFail("got \(error)")
            }
            XCTAssertEqual(path, "/data/x-images")
            XCTAssertEqual(record, 1)  // 35 of 60 pixel bytes: record 0 complete, record 1 cut
            XCTAssertEqual(expected, 76)
            XCTAssertEqual(actual, 51)
            XCTAssertTrue((error as! DataError).description.contains("record 1"))
        }
        XCTAssertThrowsError(try IDXFile.parse(Array(bytes.prefix(9)), path: "h", dimensionCount: 3)) { error in
            guard case .truncatedFile(_, nil, _, _) = error as? DataError else { return XCTFail("got \(error)") }
        }
    }

    func testWrongMagicIsRejected() {
        XCTAssertThrowsError(try IDXFile.parse(Self.idxLabels([1, 2]), path: "labels-as-images", dimensionCount: 3)) { error in
            guard case .badMagic(_, 0x801, 0x803) = error as? DataError else { return XCTFail("got \(error)") }
        }
    }

    func testIDXLabelOutOfRangeNamesRecord() throws {
        let directory = try TemporaryDirectory()
        try directory.write("t10k-images-idx3-ubyte", Self.idxImages(count: 3, height: 2, width: 2) { UInt8($0) })
        try directory.write("t10k-labels-idx1-ubyte", Self.idxLabels([1, 10, 2]))
        XCTAssertThrowsError(try IDXFile.loadSplit(root: directory.path, training: false, classCount: 10)) { error in
            guard case .labelOutOfRange(let path, 1, 10, 10) = error as? DataError else { return XCTFail("got \(error)") }
            XCTAssertTrue(path.hasSuffix("t10k-labels-idx1-ubyte"))
        }
    }

    /// CIFAR-10 records: label byte, then 1024 red, 1024 green, 1024 blue.
    static func cifarRecord(label: UInt8, coarse: UInt8? = nil, seed: Int) -> [UInt8] {
        (coarse.map { [$0] } ?? []) + [label] + (0..<3072).map { UInt8(($0 * 7 + seed * 13) % 256) }
    }

    func testCIFAR10BinaryParses() throws {
        let directory = try TemporaryDirectory()
        for batch in 1...5 {
            try directory.write("cifar-10-batches-bin/data_batch_\(batch).bin",
                                Self.cifarRecord(label: UInt8(batch), seed: batch) + Self.cifarRecord(label: 0, seed: 10 + batch))
        }
        try directory.write("cifar-10-batches-bin/test_batch.bin", Self.cifarRecord(label: 7, seed: 99))
        let training = try CIFARFile.loadSplit(root: directory.path, classCount: 10, training: true)
        XCTAssertEqual(training.count, 10)
        XCTAssertEqual(training.labels, [1, 0, 2, 0, 3, 0, 4, 0, 5, 0])
        // Sample 2 is batch 2's first record: green plane starts at byte 1024 of its image.
        XCTAssertEqual(training.pixels[2 * 3072 + 1024 + 5], UInt8((1029 * 7 + 2 * 13) % 256))
        let test = try CIFARFile.loadSplit(root: directory.path, classCount: 10, training: false)
        XCTAssertEqual(test.labels, [7])
    }

    func testCIFAR100UsesFineLabels() throws {
        let directory = try TemporaryDirectory()
        try directory.write("train.bin", Self.cifarRecord(label: 42, coarse: 3, seed: 1) + Self.cifarRecord(label: 99, coarse: 19, seed: 2))
        let training = try CIFARFile.loadSplit(root: directory.path, classCount: 100, training: true)
        XCTAssertEqual(training.labels, [42, 99])
        XCTAssertEqual(training.pixels[3072], UInt8(2 * 13 % 256))
    }

    func testCIFARBadLabelAndTruncationNameFileAndRecord() throws {
        var pixels = [UInt8](), labels = [Int32]()
        let bad = Self.cifarRecord(label: 3, seed: 0) + Self.cifarRecord(label: 10, seed: 1)
        XCTAssertThrowsError(try CIFARFile.parse(bad, path: "data_batch_1.bin", labelBytes: 1, labelOffset: 0,
                                                 classCount: 10, pixels: &pixels, labels: &labels)) { error in
            guard case .labelOutOfRange("data_batch_1.bin", 1, 10, 10) = error as? DataError else { return XCTFail("got \(error)") }
        }
        let truncated = Array((Self.cifarRecord(label: 3, seed: 0) + Self.cifarRecord(label: 4, seed: 1)).dropLast(100))
        XCTAssertThrowsError(try CIFARFile.parse(truncated, path: "test_batch.bin", labelBytes: 1, labelOffset: 0,
                                                 classCount: 10, pixels: &pixels, labels: &labels)) { error in
            guard case .truncatedFile("test_batch.bin", 1, 6146, 6046) = error as? DataError else { return XCTFail("got \(error)") }
        }
    }

    func testMissingFilesAreListed() throws {
        let directory = try TemporaryDirectory()
        XCTAssertThrowsError(try CIFARFile.loadSplit(root: directory.path, classCount: 10, training: false)) { error in
            guard case .missingFile(let what, let candidates) = error as? DataError else { return XCTFail("got \(error)") }
            XCTAssertEqual(what, "test_batch.bin")
            XCTAssertEqual(candidates.count, 2)
        }
    }

    func testRealFashionMNIST() throws {
        let root = "/usr/share/datasets/fashion-mnist"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: root + "/train-images-idx3-ubyte.gz"), "no Fashion-MNIST at \(root)")
        let training = try IDXFile.loadSplit(root: root, training: true, classCount: 10)
        let test = try IDXFile.loadSplit(root: root, training: false, classCount: 10)
        XCTAssertEqual(training.count, 60_000)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual([training.height, training.width], [28, 28])
        XCTAssertEqual(training.labels[0], 9)  // Ankle boot
        XCTAssertEqual(test.labels[0], 9)
        // Fashion-MNIST is balanced: 6,000 training images per class.
        var perClass = [Int](repeating: 0, count: 10)
        for label in training.labels { perClass[Int(label)] += 1 }
        XCTAssertEqual(perClass, [Int](repeating: 6000, count: 10))
        let meanPixel = training.pixels.reduce(0.0) { $0 + Double($1) } / Double(training.pixels.count) / 255
        XCTAssertEqual(meanPixel, 0.2860, accuracy: 0.0005)
    }
}
