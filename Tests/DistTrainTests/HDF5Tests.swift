import Foundation
import Storage
import TestSupport
import XCTest

final class HDF5Tests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("disttrain-hdf5-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(at: directory)
    }

    private func temporaryPath(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    /// `count` deterministic, distinct values of each element type.
    private func sampleValues<Element: HDF5Element>(_ count: Int, as type: Element.Type) -> [Element] {
        (0..<count).map { index -> Element in
            switch Element.hdf5ElementType {
            case .float32: return Float(index) * 0.37 - 3.25 as! Element
            case .float64: return Double(index) * 1.0e-3 - 0.5 as! Element
            case .int32: return Int32(index * 7919 - 40_000) as! Element
            case .int64 where Element.self == Int.self: return ((1 << 40) + index * 3 - 17) as! Element
            case .int64: return Int64((1 << 40) - index * 11) as! Element
            case .uint8: return UInt8(truncatingIfNeeded: index * 37 + 5) as! Element
            }
        }
    }

    private func assertRoundTrip<Element: HDF5Element & Equatable>(_ type: Element.Type, file: HDF5File,
                                                                    line: UInt = #line) throws {
        let shapes: [[Int]] = [[], [1], [7], [0], [3, 4], [2, 0, 3], [2, 3, 4], [1, 2, 1, 3, 2]]
        let root = try file.root
        for shape in shapes {
            let name = "types/\(Element.self)/rank\(shape.count)-\(shape.map(String.init).joined(separator: "x"))"
            let values = sampleValues(shape.reduce(1, *), as: type)
            try root.createDataset(name, values: values, shape: shape)
            let dataset = try root.dataset(name)
            XCTAssertEqual(try dataset.shape, shape, name, line: line)
            XCTAssertEqual(try dataset.elementType, Element.hdf5ElementType, name, line: line)
            XCTAssertEqual(try dataset.isChecksummed, !shape.isEmpty && !values.isEmpty, name, line: line)
            XCTAssertEqual(try root.read(name, as: type), HDF5Array(shape: shape, values: values), name, line: line)
            var buffer = [Element](repeating: values.first ?? sampleValues(1, as: type)[0], count: values.count)
            try buffer.withUnsafeMutableBufferPointer { try dataset.read(into: $0) }
            XCTAssertEqual(buffer, values, name, line: line)
        }
    }

    func testEveryElementTypeAndRankRoundTrips() throws {
        let path = temporaryPath("types.h5")
        let file = try HDF5File.create(path)
        try assertRoundTrip(Float.self, file: file)
        try assertRoundTrip(Double.self, file: file)
        try assertRoundTrip(Int32.self, file: file)
        try assertRoundTrip(Int64.self, file: file)
        try assertRoundTrip(UInt8.self, file: file)
        try assertRoundTrip(Int.self, file: file)
        try file.root.createDataset("scalar/num_batches_tracked", scalar: Int64(42))
        try file.close()

        let reopened = try HDF5File.open(path)
        let root = try reopened.root
        XCTAssertEqual(try root.read("types/Float/rank3-2x3x4", as: Float.self),
                       HDF5Array(shape: [2, 3, 4], values: sampleValues(24, as: Float.self)))
        XCTAssertEqual(try root.read("types/UInt8/rank5-1x2x1x3x2", as: UInt8.self).values,
                       sampleValues(12, as: UInt8.self))
        XCTAssertEqual(try root.dataset("scalar/num_batches_tracked").readScalar(as: Int64.self), 42)
        XCTAssertEqual(try root.dataset("scalar/num_batches_tracked").shape, [])
    }

    func testLargeDatasetIsChunkedAndRowSlicesReadAcrossChunks() throws {
        let path = temporaryPath("large.h5")
        let shape = [600, 1000]
        let values = (0..<shape.reduce(1, *)).map { Float($0) }
        let file = try HDF5File.create(path)
        try file.root.createDataset("pixels", values: values, shape: shape)
        try file.close()

        let dataset = try HDF5File.open(path).root.dataset("pixels")
        XCTAssertTrue(try dataset.isChecksummed)
        XCTAssertEqual(try dataset.read(as: Float.self).values, values)
        let rows = try dataset.readRows(250..<270, as: Float.self)
        XCTAssertEqual(rows.shape, [20, 1000])
        XCTAssertEqual(rows.values, Array(values[250_000..<270_000]))
        var buffer = [Float](repeating: -1, count: 1000)
        try buffer.withUnsafeMutableBufferPointer { try dataset.readRows(599..<600, into: $0) }
        XCTAssertEqual(buffer, Array(values[599_000...]))
        XCTAssertThrowsError(try dataset.readRows(590..<601, as: Float.self)) { error in
            guard case HDF5Error.sizeMismatch = error else { return XCTFail("\(error)") }
        }
    }

    func testByteArrayDatasetRoundTripsAndAppends() throws {
        let path = temporaryPath("jpeg.h5")
        let first: [[UInt8]] = [[0xFF, 0xD8, 0xFF, 0xE0], [], Array(repeating: 7, count: 10_000)]
        let second: [[UInt8]] = (0..<5000).map { index in (0..<(index % 13)).map { UInt8(truncatingIfNeeded: $0 * index) } }
        let file = try HDF5File.create(path)
        let dataset = try file.root.createByteArrayDataset("shard/jpeg", byteArrays: first)
        try dataset.appendByteArrays(second)
        XCTAssertNil(try dataset.elementType)
        try file.close()

        let reopened = try HDF5File.open(path).root.dataset("shard/jpeg")
        XCTAssertEqual(try reopened.shape, [5003])
        XCTAssertFalse(try reopened.isChecksummed, "HDF5 allows no filters on variable-length types")
        XCTAssertEqual(try reopened.readByteArrays(), first + second)
        XCTAssertEqual(try reopened.readByteArrays(2..<5), [first[2], second[0], second[1]])
        XCTAssertThrowsError(try reopened.read(as: UInt8.self)) { error in
            guard case HDF5Error.typeMismatch = error else { return XCTFail("\(error)") }
        }
    }

    func testAttributesRoundTripOnFileGroupAndDataset() throws {
        let path = temporaryPath("attributes.h5")
        let configuration = #"{"nBlocks": 3, "name": "größe ✓"}"#
        let file = try HDF5File.create(path)
        let root = try file.root
        try root.writeAttribute("format", "disttrain-checkpoint")
        try root.writeAttribute("config", configuration)
        try root.writeAttribute("epoch", 3)
        try root.writeAttribute("learningRate", 0.1)
        try root.writeAttribute("scale", Float(0.25))
        try root.writeAttribute("worldSize", Int32(8))
        try root.writeAttribute("seed", Int64(1 << 40))
        try root.writeAttribute("flag", UInt8(1))
        try root.writeAttribute("milestones", [150, 225])
        try root.writeAttribute("empty", "")
        try root.writeAttribute("noMilestones", [Int32]())
        let group = try root.createGroup("model")
        try group.writeAttribute("note", "group attribute")
        let dataset = try group.createDataset("weight", values: [Float](repeating: 1, count: 4), shape: [2, 2])
        try dataset.writeAttribute("madds", [6.86, 14.35])
        try root.writeAttribute("epoch", 4)
        try file.close()

        let reopened = try HDF5File.open(path)
        let reopenedRoot = try reopened.root
        XCTAssertEqual(try reopenedRoot.attributeNames(),
                       ["config", "empty", "epoch", "flag", "format", "learningRate", "milestones", "noMilestones", "scale",
                        "seed", "worldSize"])
        XCTAssertEqual(try reopenedRoot.readStringAttribute("format"), "disttrain-checkpoint")
        XCTAssertEqual(try reopenedRoot.readStringAttribute("config"), configuration)
        XCTAssertEqual(try reopenedRoot.readStringAttribute("empty"), "")
        XCTAssertEqual(try reopenedRoot.readAttribute("epoch", as: Int.self), 4)
        XCTAssertEqual(try reopenedRoot.readAttribute("learningRate", as: Double.self), 0.1)
        XCTAssertEqual(try reopenedRoot.readAttribute("scale", as: Float.self), 0.25)
        XCTAssertEqual(try reopenedRoot.readAttribute("worldSize", as: Int32.self), 8)
        XCTAssertEqual(try reopenedRoot.readAttribute("worldSize", as: Int64.self), 8)
        XCTAssertEqual(try reopenedRoot.readAttribute("seed", as: Int64.self), 1 << 40)
        XCTAssertEqual(try reopenedRoot.readAttribute("flag", as: UInt8.self), 1)
        XCTAssertEqual(try reopenedRoot.readArrayAttribute("milestones", as: Int.self), [150, 225])
        XCTAssertEqual(try reopenedRoot.readArrayAttribute("noMilestones", as: Int32.self), [])
        XCTAssertTrue(try reopenedRoot.hasAttribute("seed"))
        XCTAssertFalse(try reopenedRoot.hasAttribute("missing"))
        XCTAssertEqual(try reopenedRoot.group("model").readStringAttribute("note"), "group attribute")
        XCTAssertEqual(try reopenedRoot.dataset("model/weight").readArrayAttribute("madds", as: Double.self), [6.86, 14.35])

        XCTAssertThrowsError(try reopenedRoot.readAttribute("seed", as: Int32.self), "2^40 does not fit Int32")
        XCTAssertThrowsError(try reopenedRoot.readAttribute("milestones", as: Int.self)) { error in
            guard case HDF5Error.sizeMismatch = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try reopenedRoot.readStringAttribute("epoch")) { error in
            guard case HDF5Error.typeMismatch = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try reopenedRoot.readStringAttribute("missing")) { error in
            guard case HDF5Error.notFound = error else { return XCTFail("\(error)") }
        }
    }

    func testGroupsNestListAndReportMissingObjects() throws {
        let file = try HDF5File.create(temporaryPath("groups.h5"))
        let root = try file.root
        try root.createGroup("optimizer/momentum")
        try root.createDataset("model/blocks.0.0.layers.0.net.0.weight", values: [Float(1)], shape: [1])
        try root.createDataset("model/classifier.2.linear.bias", values: [Float(2)], shape: [1])
        try root.createDataset("/data/validationIndices", values: [Int64(5), 9], shape: [2])

        XCTAssertEqual(try root.memberNames(), ["data", "model", "optimizer"])
        let model = try root.group("model")
        XCTAssertEqual(model.path, "/model")
        XCTAssertEqual(try model.memberNames(), ["blocks.0.0.layers.0.net.0.weight", "classifier.2.linear.bias"])
        XCTAssertEqual(try model.dataset("classifier.2.linear.bias").path, "/model/classifier.2.linear.bias")
        XCTAssertEqual(try model.read("/data/validationIndices", as: Int64.self).values, [5, 9])
        XCTAssertTrue(try root.exists("optimizer/momentum"))
        XCTAssertTrue(try model.exists("classifier.2.linear.bias"))
        XCTAssertFalse(try root.exists("optimizer/velocity"))
        XCTAssertFalse(try root.exists("missing/deeper/still"))
        XCTAssertFalse(try root.exists("model/classifier.2.linear.bias/inside"))
        XCTAssertEqual(try root.kind(of: "model"), .group)
        XCTAssertEqual(try root.kind(of: "model/classifier.2.linear.bias"), .dataset)
        XCTAssertEqual(try root.group("optimizer").memberNames(), ["momentum"])
        XCTAssertEqual(try root.group("optimizer/momentum").memberNames(), [])

        XCTAssertThrowsError(try root.dataset("model/missing")) { error in
            guard case let HDF5Error.notFound(_, file, object) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(file.hasSuffix("groups.h5"))
            XCTAssertEqual(object, "/model/missing")
        }
        XCTAssertThrowsError(try root.createDataset("model/classifier.2.linear.bias", values: [Float(3)], shape: [1])) { error in
            guard case HDF5Error.libraryCallFailed = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try root.createDataset("bad", values: [Float(3)], shape: [2])) { error in
            guard case HDF5Error.sizeMismatch = error else { return XCTFail("\(error)") }
        }
        // The operation names the attribute, the object where it is missing, once each.
        XCTAssertThrowsError(try root.readAttribute("phase", as: Int64.self)) { error in
            XCTAssertEqual("\(error)", "HDF5: cannot read attribute 'phase' of '/' in \(temporaryPath("groups.h5")): no such object")
        }
        XCTAssertThrowsError(try model.readStringAttribute("classes")) { error in
            XCTAssertEqual("\(error)", "HDF5: cannot read attribute 'classes' of '/model' in \(temporaryPath("groups.h5")): no such object")
        }
        XCTAssertThrowsError(try HDF5File.open(temporaryPath("absent.h5"))) { error in
            XCTAssertEqual("\(error)", "cannot open \(temporaryPath("absent.h5")): no such file")
        }
    }

    func testReadsConvertWithinAKindAndRefuseOutOfRangeOrCrossKind() throws {
        let file = try HDF5File.create(temporaryPath("conversion.h5"))
        let root = try file.root
        try root.createDataset("small", values: [Int64(-3), 4], shape: [2])
        try root.createDataset("large", values: [Int64(1) << 40], shape: [1])
        try root.createDataset("double", values: [0.5, 1e300], shape: [2])
        try root.createDataset("float", values: [Float(1.5)], shape: [1])

        XCTAssertEqual(try root.read("small", as: Int32.self).values, [-3, 4])
        XCTAssertEqual(try root.read("float", as: Double.self).values, [1.5])
        XCTAssertThrowsError(try root.read("large", as: Int32.self)) { error in
            guard case HDF5Error.libraryCallFailed = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try root.read("small", as: UInt8.self), "negative values do not fit UInt8")
        XCTAssertThrowsError(try root.read("double", as: Float.self), "1e300 does not fit Float")
        XCTAssertThrowsError(try root.read("float", as: Int32.self)) { error in
            guard case HDF5Error.typeMismatch = error else { return XCTFail("\(error)") }
        }
        var wrongSize = [Int64](repeating: 0, count: 3)
        XCTAssertThrowsError(try wrongSize.withUnsafeMutableBufferPointer { try root.dataset("small").read(into: $0) }) { error in
            guard case HDF5Error.sizeMismatch = error else { return XCTFail("\(error)") }
        }
    }

    func testCorruptedChunkMakesTheReadThrow() throws {
        let path = temporaryPath("corrupt.h5")
        // A pattern that occurs nowhere else in the file, so its offset locates the dataset's chunk.
        let values = (0..<256).map { Int64(0x5EED_0000_0000_0000) | Int64($0 &* 0x0101_0101) }
        let file = try HDF5File.create(path)
        try file.root.createDataset("weights", values: values, shape: [16, 16])
        try file.close()

        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let pattern = values[100...101].withUnsafeBytes { Array($0) }
        let offset = try XCTUnwrap(findOffset(of: pattern, in: bytes))
        XCTAssertEqual(try HDF5File.open(path).root.read("weights", as: Int64.self).values, values)
        bytes[offset + 3] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        XCTAssertThrowsError(try HDF5File.open(path).root.read("weights", as: Int64.self)) { error in
            guard case let HDF5Error.libraryCallFailed(_, file, object, reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(file.hasSuffix("corrupt.h5"))
            XCTAssertEqual(object, "/weights")
            XCTAssertTrue(reason.contains("Fletcher32 checksum"), reason)
        }
    }

    private func findOffset(of pattern: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= pattern.count else { return nil }
        return (0...(bytes.count - pattern.count)).first { start in
            bytes[start..<(start + pattern.count)].elementsEqual(pattern)
        }
    }

    func testClosedFileRejectsFurtherUse() throws {
        let path = temporaryPath("closed.h5")
        let file = try HDF5File.create(path)
        let group = try file.root.createGroup("group")
        try group.createDataset("values", values: [1.0, 2.0], shape: [2])
        try file.flush()
        XCTAssertTrue(file.isOpen)
        try file.close()
        try file.close()
        XCTAssertFalse(file.isOpen)
        XCTAssertThrowsError(try group.memberNames()) { error in
            guard case HDF5Error.fileClosed = error else { return XCTFail("\(error)") }
        }
        // The strong close released the file: it can be opened for writing again.
        let reopened = try HDF5File.open(path, mode: .readWrite)
        try reopened.root.createDataset("more", values: [UInt8(1)], shape: [1])
        XCTAssertEqual(try reopened.root.read("group/values", as: Double.self).values, [1, 2])
        XCTAssertThrowsError(try HDF5File.open(temporaryPath("absent.h5"))) { error in
            guard case HDF5Error.notFound = error else { return XCTFail("\(error)") }
        }
    }

    // MARK: - The shared reference fixture (written by h5py from the PyTorch reference)

    private var fixturePath: String { FixtureLocation.path("msdnet-cifar-tiny.h5") }

    func testReadsTheReferenceFixture() throws {
        let root = try HDF5File.open(fixturePath).root

        let input = try root.read("input", as: Float.self)
        XCTAssertEqual(input.shape, [4, 3, 32, 32])
        XCTAssertEqual(Array(input.values[0..<4]), [-1.277612, 0.9822221, 0.26193327, -0.29847538])
        XCTAssertEqual(input.values[3 * 3072 + 2 * 1024 + 31 * 32 + 31], 0.16925801)
        XCTAssertEqual(try root.read("target", as: Int64.self), HDF5Array(shape: [4], values: [6, 1, 6, 7]))
        XCTAssertEqual(try root.read("target", as: Int32.self).values, [6, 1, 6, 7])

        let parameters = try root.group("params")
        let names = try parameters.memberNames()
        XCTAssertEqual(names.count, 318)
        XCTAssertEqual(names.first, "blocks.0.0.layers.0.net.0.weight")
        let counters = names.filter { $0.hasSuffix("num_batches_tracked") }
        XCTAssertEqual(counters.count, 52)
        let counter = try parameters.dataset(counters[0])
        XCTAssertEqual(try counter.shape, [])
        XCTAssertEqual(try counter.elementType, .int64)
        XCTAssertEqual(try counter.readScalar(as: Int64.self), 0)
        XCTAssertEqual(try parameters.read("classifier.2.linear.bias", as: Float.self).values,
                       [0.013110933, -0.12847771, 0.06890215, 0.09379086, -0.11202813,
                        -0.09105892, -0.020377759, 0.040122718, -0.0072367587, 0.10338725])

        let loss = try root.dataset("phase1/loss")
        XCTAssertEqual(try loss.elementType, .float64)
        XCTAssertEqual(try loss.readScalar(as: Double.self), 7.292732349961843)
        XCTAssertEqual(try loss.readScalar(as: Float.self), Float(7.292732349961843))

        struct Configuration: Decodable { let nBlocks: Int; let stepmode: String; let grFactor: [Int]; let gamma: Double }
        let configuration = try JSONDecoder().decode(Configuration.self, from: Data(try root.readStringAttribute("config").utf8))
        XCTAssertEqual(configuration.nBlocks, 3)
        XCTAssertEqual(configuration.stepmode, "lin_grow")
        XCTAssertEqual(configuration.grFactor, [1, 2, 4])
        XCTAssertEqual(configuration.gamma, 0.3)
    }

    // MARK: - Files written here, read by h5py

    private struct Readback: Decodable {
        struct Attribute: Decodable { let dtype: String; let shape: [Int]; let text: String?; let values: [Double]? }
        struct Dataset: Decodable {
            let dtype: String
            let shape: [Int]
            let fletcher32: Bool
            let values: [Double]?
            let byteArrays: [[Int]]?
        }
        let attributes: [String: [String: Attribute]]
        let datasets: [String: Dataset]
    }

    func testH5pyReadsWhatDisttrainWrites() throws {
        let path = temporaryPath("for-h5py.h5")
        let file = try HDF5File.create(path)
        let root = try file.root
        try root.writeAttribute("format", "disttrain-checkpoint")
        try root.writeAttribute("epoch", 12)
        try root.writeAttribute("madds", [6.86, 14.35])
        try root.createDataset("model/conv.weight", values: [Float(0.1), -2.5, 3e-8, 4, 5, 6], shape: [1, 2, 3])
        try root.createDataset("model/bn.num_batches_tracked", scalar: Int64(391))
        try root.createDataset("val/probs", values: [0.25, 0.75], shape: [1, 1, 2])
        try root.createDataset("val/labels", values: [Int32(-7), 9], shape: [2])
        try root.createDataset("pixels", values: [UInt8(0), 255, 128], shape: [3])
        try root.createDataset("steps", values: [1 << 40], shape: [1])
        try root.createByteArrayDataset("jpeg", byteArrays: [[0xFF, 0xD8], [], [1, 2, 3]])
        try root.dataset("val/probs").writeAttribute("note", "exit probabilities")
        try file.close()

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("h5py_readback.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, path]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "h5py_readback.py failed: \(errorText)")
        let readback = try JSONDecoder().decode(Readback.self, from: outputData)

        let rootAttributes = try XCTUnwrap(readback.attributes["/"])
        XCTAssertEqual(rootAttributes["format"]?.text, "disttrain-checkpoint")
        XCTAssertEqual(rootAttributes["epoch"]?.dtype, "int64")
        XCTAssertEqual(rootAttributes["epoch"]?.shape, [])
        XCTAssertEqual(rootAttributes["epoch"]?.values, [12])
        XCTAssertEqual(rootAttributes["madds"]?.values, [6.86, 14.35])
        XCTAssertEqual(readback.attributes["/val/probs"]?["note"]?.text, "exit probabilities")

        let weight = try XCTUnwrap(readback.datasets["/model/conv.weight"])
        XCTAssertEqual(weight.dtype, "float32")
        XCTAssertEqual(weight.shape, [1, 2, 3])
        XCTAssertTrue(weight.fletcher32)
        XCTAssertEqual(weight.values?.map { Float($0) }, [0.1, -2.5, 3e-8, 4, 5, 6])
        let counter = try XCTUnwrap(readback.datasets["/model/bn.num_batches_tracked"])
        XCTAssertEqual(counter.dtype, "int64")
        XCTAssertEqual(counter.shape, [])
        XCTAssertEqual(counter.values, [391])
        XCTAssertEqual(readback.datasets["/val/probs"]?.dtype, "float64")
        XCTAssertEqual(readback.datasets["/val/probs"]?.values, [0.25, 0.75])
        XCTAssertEqual(readback.datasets["/val/labels"]?.dtype, "int32")
        XCTAssertEqual(readback.datasets["/val/labels"]?.values, [-7, 9])
        XCTAssertEqual(readback.datasets["/pixels"]?.dtype, "uint8")
        XCTAssertEqual(readback.datasets["/pixels"]?.values, [0, 255, 128])
        XCTAssertEqual(readback.datasets["/steps"]?.values, [Double(1 << 40)])
        let jpeg = try XCTUnwrap(readback.datasets["/jpeg"])
        XCTAssertEqual(jpeg.shape, [3])
        XCTAssertEqual(jpeg.byteArrays, [[0xFF, 0xD8], [], [1, 2, 3]])
    }
}
