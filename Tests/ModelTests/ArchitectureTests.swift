import Model
import XCTest

/// The rebuilt architecture has the reference `state_dict` keys and shapes (checked against the
/// fixture `msdnet-cifar-tiny.h5`; the full key set is checked both ways by ReferenceParityTests).
final class ArchitectureTests: XCTestCase {
    /// The fixture's configuration: cifar10, 3 blocks, lin_grow step 1 base 1, 8 channels, growth 4.
    static let tiny = MSDNetConfiguration(stem: .cifar, inputChannels: 3, inputSize: 32, classes: 10, nBlocks: 3,
                                          stepmode: .linearGrowth, step: 1, base: 1, nChannels: 8, growthRate: 4,
                                          grFactor: [1, 2, 4], bnFactor: [1, 2, 4], prune: .max, reduction: 0.5, bottleneck: true)

    /// A sample of the fixture's keys with their shapes: stem, dense layers with and without a
    /// dropped scale, both transitions, classifiers.
    static let fixtureSample: [(String, [Int])] = [
        ("blocks.0.0.layers.0.net.0.weight", [8, 3, 3, 3]),
        ("blocks.0.0.layers.2.net.0.weight", [32, 16, 3, 3]),
        ("blocks.0.1.layers.0.conv_normal.net.0.weight", [4, 8, 1, 1]),
        ("blocks.0.1.layers.0.conv_normal.net.3.weight", [4, 4, 3, 3]),
        ("blocks.0.1.layers.1.conv_down.net.0.weight", [4, 8, 1, 1]),
        ("blocks.0.1.layers.1.conv_normal.net.0.weight", [8, 16, 1, 1]),
        ("blocks.0.1.layers.1.conv_normal.net.3.weight", [4, 8, 3, 3]),
        ("blocks.0.1.layers.2.conv_down.net.0.weight", [16, 16, 1, 1]),
        ("blocks.1.2.m.0.net.0.weight", [20, 40, 1, 1]),
        ("blocks.1.2.m.0.net.1.bias", [20]),
        ("blocks.1.2.m.0.net.1.weight", [20]),
        ("blocks.1.2.m.1.net.0.weight", [40, 80, 1, 1]),
        ("blocks.1.2.m.1.net.1.bias", [40]),
        ("blocks.2.0.layers.0.conv_normal.net.0.weight", [16, 20, 1, 1]),
        ("blocks.2.0.layers.0.conv_normal.net.3.weight", [8, 16, 3, 3]),
        ("blocks.2.0.layers.1.conv_down.net.0.weight", [16, 20, 1, 1]),
        ("blocks.2.0.layers.1.conv_down.net.3.weight", [8, 16, 3, 3]),
        ("blocks.2.0.layers.1.conv_normal.net.0.weight", [32, 40, 1, 1]),
        ("blocks.2.0.layers.1.conv_normal.net.3.weight", [8, 32, 3, 3]),
        ("blocks.2.1.layers.0.conv_down.net.0.weight", [16, 28, 1, 1]),
        ("blocks.2.1.layers.0.conv_down.net.3.weight", [8, 16, 3, 3]),
        ("blocks.2.1.layers.0.conv_normal.net.0.weight", [32, 56, 1, 1]),
        ("blocks.2.1.layers.0.conv_normal.net.3.weight", [8, 32, 3, 3]),
        ("blocks.2.2.m.0.net.0.weight", [36, 72, 1, 1]),
        ("blocks.2.2.m.0.net.1.weight", [36]),
        ("blocks.2.3.layers.0.conv_normal.net.0.weight", [36, 36, 1, 1]),
        ("blocks.2.3.layers.0.conv_normal.net.3.weight", [16, 36, 3, 3]),
        ("classifier.0.linear.weight", [10, 128]),
        ("classifier.1.m.0.net.0.weight", [128, 40, 3, 3]),
        ("classifier.2.linear.bias", [10]),
        ("classifier.2.m.1.net.1.bias", [128]),
    ]

    func testTinyFixtureKeysShapesAndCounts() throws {
        let architecture = try MSDNetArchitecture(Self.tiny)
        let tensors = Dictionary(uniqueKeysWithValues: architecture.parameterTensors.map { ($0.name, $0.shape) })
        for (name, shape) in Self.fixtureSample {
            XCTAssertEqual(tensors[name], shape, name)
        }
        XCTAssertEqual(architecture.parameterTensors.count, 162)
        XCTAssertEqual(architecture.batchNormLayers.count, 52)
        XCTAssertEqual(architecture.parameterCount, 660_086)
        XCTAssertEqual(architecture.blocks.map(\.denseLayerCount), [1, 2, 3])
        XCTAssertEqual(architecture.blocks.map(\.transitionCount), [0, 1, 1])
        XCTAssertEqual(architecture.scaleSizes, [32, 16, 8])
    }

    func testNamedParametersOrderIsBlocksThenClassifiers() throws {
        let names = try MSDNetArchitecture(Self.tiny).parameterTensors.map(\.name)
        let firstClassifier = try XCTUnwrap(names.firstIndex { $0.hasPrefix("classifier.") })
        XCTAssertTrue(names[..<firstClassifier].allSatisfy { $0.hasPrefix("blocks.") })
        XCTAssertTrue(names[firstClassifier...].allSatisfy { $0.hasPrefix("classifier.") })
        XCTAssertEqual(names.first, "blocks.0.0.layers.0.net.0.weight")
        XCTAssertEqual(names.last, "classifier.2.linear.bias")
    }

    func testImageNetStemHasBiasAndMaxPool() throws {
        let architecture = try MSDNetArchitecture(CostCounterTests.imagenet(step: 4))
        let stem = try XCTUnwrap(architecture.blocks.first?.paths.first)
        XCTAssertTrue(stem.maxPoolAfter)
        XCTAssertEqual(stem.units.first?.convolutionName, "blocks.0.0.layers.0.0")
        XCTAssertEqual(stem.units.first?.batchNormName, "blocks.0.0.layers.0.1")
        XCTAssertEqual(stem.units.first?.hasBias, true)
        XCTAssertEqual(architecture.scaleSizes, [56, 28, 14, 7])
        // The reference's hard-coded IMTA `logits_channels` for step 4.
        XCTAssertEqual(architecture.blocks.map(\.classifier.featureWidth), [384, 384, 352, 304, 560])
    }

    func testRejectsInputThatDoesNotPoolToOne() {
        var configuration = Self.tiny
        configuration.inputSize = 64
        XCTAssertThrowsError(try MSDNetArchitecture(configuration)) { error in
            XCTAssertEqual(error as? ArchitectureError, .classifierNotPooledToOne(spatialSize: 2, stem: .cifar, scales: 3))
        }
    }

    /// The refusal names sizes that work for the scale count at hand (not the 32 it may have just
    /// refused): each suggested range builds at both ends and fails just outside them.
    func testInputSizeRefusalSuggestsSizesThatBuild() throws {
        let cases: [(MSDNetConfiguration.Stem, [Int], ClosedRange<Int>)] = [
            (.cifar, [1], 5...12), (.cifar, [1, 2], 9...24), (.cifar, [1, 2, 4], 17...48), (.cifar, [1, 2, 4, 4], 33...96),
            (.imagenet, [1, 2, 4, 4], 129...384),
        ]
        for (stem, factors, expected) in cases {
            XCTAssertEqual(MSDNetArchitecture.inputSizesPooledToOne(stem: stem, scales: factors.count), expected, "\(stem) \(factors)")
            var configuration = Self.tiny
            configuration.stem = stem
            configuration.grFactor = factors
            configuration.bnFactor = factors
            for size in [expected.lowerBound, expected.upperBound] {
                configuration.inputSize = size
                XCTAssertNoThrow(try MSDNetArchitecture(configuration), "\(stem) \(factors) inputSize \(size)")
            }
            for size in [expected.lowerBound - 1, expected.upperBound + 1] {
                configuration.inputSize = size
                XCTAssertThrowsError(try MSDNetArchitecture(configuration)) { error in
                    let text = "\(error)"
                    XCTAssertTrue(text.contains("with the \(stem.rawValue) stem and \(factors.count) scale"), text)
                    XCTAssertTrue(text.contains("use an inputSize from \(expected.lowerBound) to \(expected.upperBound)"), text)
                }
            }
        }
    }

    func testSegmentsGrowByTheLayersThatWriteIntoThem() throws {
        let architecture = try MSDNetArchitecture(Self.tiny)
        for (index, segment) in architecture.segments.enumerated() {
            let written = architecture.blocks.flatMap(\.paths).filter { $0.target.segment == index }
            XCTAssertEqual(written.map(\.target.channels).reduce(0, +), segment.channels, "segment \(index)")
            let sorted = written.sorted { $0.target.channelOffset < $1.target.channelOffset }
            var next = 0
            for path in sorted {
                XCTAssertEqual(path.target.channelOffset, next)
                next += path.target.channels
            }
        }
    }
}
