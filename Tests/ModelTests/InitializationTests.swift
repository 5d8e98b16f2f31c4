import Model
import XCTest

/// The initial weights of both schemes against their distributions: `.reference` is PyTorch's
/// layer defaults (convolution and linear `U(-b, b)`, `b = 1/sqrt(fanIn)`, variance `b^2/3`),
/// `.heNormal` the fan-out normal `_init_weights` intends with linear biases 0.
final class InitializationTests: XCTestCase {
    /// The Fashion-MNIST example's network (its largest convolution has 16 * 144 weights); the
    /// ImageNet-stem network adds a convolution with a bias.
    static func configurations(_ initialization: MSDNetConfiguration.WeightInitialization) -> [MSDNetConfiguration] {
        [
            MSDNetConfiguration(stem: .cifar, inputChannels: 1, inputSize: 32, classes: 10, nBlocks: 5,
                                stepmode: .linearGrowth, step: 1, base: 1, nChannels: 16, growthRate: 6,
                                grFactor: [1, 2, 4], bnFactor: [1, 2, 4], prune: .max, reduction: 0.5, bottleneck: true,
                                initialization: initialization),
            MSDNetConfiguration(stem: .imagenet, inputChannels: 3, inputSize: 64, classes: 4, nBlocks: 2,
                                stepmode: .even, step: 1, base: 1, nChannels: 8, growthRate: 4,
                                grFactor: [1, 2], bnFactor: [1, 2], prune: .max, reduction: 0.5, bottleneck: true,
                                initialization: initialization),
        ]
    }

    static func network(_ configuration: MSDNetConfiguration, seed: UInt64 = 3) throws -> MSDNet {
        try MSDNet(configuration: configuration, gradientEquilibrium: true, maximumBatchSize: 1, seed: seed)
    }

    static func array(_ pointer: UnsafeMutablePointer<Float>, count: Int) -> [Double] {
        (0..<count).map { Double(pointer[$0]) }
    }

    /// Sample variance about zero, the distribution's mean.
    static func meanSquare(_ values: [Double]) -> Double {
        values.reduce(0) { $0 + $1 * $1 } / Double(values.count)
    }

    /// Asserts that a large tensor's sample variance is within four standard deviations of the
    /// estimator of `expected` (relative deviation `spread / sqrt(n)`: `sqrt(4/5)` for a uniform,
    /// `sqrt(2)` for a normal distribution) and returns 1, or returns 0 for a tensor too small
    /// for a tolerance under 5 %.
    @discardableResult
    func assertVariance(_ values: [Double], expected: Double, spread: Double, name: String,
                        file: StaticString = #filePath, line: UInt = #line) -> Int {
        let tolerance = 4 * spread / Double(values.count).squareRoot()
        guard tolerance < 0.05 else { return 0 }
        let variance = Self.meanSquare(values)
        XCTAssertEqual(variance / expected, 1, accuracy: tolerance, "\(name): variance \(variance), expected \(expected)",
                       file: file, line: line)
        return 1
    }

    func testReferenceConvolutionsAreUniformWithinTheFanInBound() throws {
        for configuration in Self.configurations(.reference) {
            let network = try Self.network(configuration)
            var normalised: [Double] = []
            var largeTensors = 0
            for unit in network.architecture.unitsInRegistrationOrder {
                let fanIn = unit.inputChannels * unit.kernelSize * unit.kernelSize
                let bound = 1 / Double(fanIn).squareRoot()
                let weight = Self.array(network.parameters.values(of: unit.convolutionName + ".weight"),
                                        count: unit.weightShape.reduce(1, *))
                XCTAssertTrue(weight.allSatisfy { abs($0) <= bound }, "\(unit.convolutionName).weight outside ±\(bound)")
                largeTensors += assertVariance(weight, expected: bound * bound / 3, spread: (4.0 / 5).squareRoot(),
                                               name: unit.convolutionName + ".weight")
                normalised += weight.map { $0 / bound }
                if unit.hasBias {
                    let bias = Self.array(network.parameters.values(of: unit.convolutionName + ".bias"), count: unit.outputChannels)
                    XCTAssertTrue(bias.allSatisfy { abs($0) <= bound && $0 != 0 }, "\(unit.convolutionName).bias")
                }
                let batchNormWeight = Self.array(network.parameters.values(of: unit.batchNormName + ".weight"), count: unit.outputChannels)
                let batchNormBias = Self.array(network.parameters.values(of: unit.batchNormName + ".bias"), count: unit.outputChannels)
                XCTAssertEqual(batchNormWeight, Array(repeating: 1, count: unit.outputChannels), unit.batchNormName)
                XCTAssertEqual(batchNormBias, Array(repeating: 0, count: unit.outputChannels), unit.batchNormName)
            }
            if configuration.stem == .cifar { XCTAssertGreaterThan(largeTensors, 3) }
            // All weights over their bounds: U(-1, 1), variance 1/3, mean 0.
            XCTAssertGreaterThan(normalised.count, 10_000)
            XCTAssertEqual(Self.meanSquare(normalised), 1.0 / 3, accuracy: 0.01)
            XCTAssertEqual(normalised.reduce(0, +) / Double(normalised.count), 0, accuracy: 0.02)
            XCTAssertGreaterThan(normalised.max()!, 0.99)
            XCTAssertLessThan(normalised.min()!, -0.99)
        }
    }

    func testReferenceLinearWeightsAndBiasesAreUniformWithinTheFanInBound() throws {
        for configuration in Self.configurations(.reference) {
            let network = try Self.network(configuration)
            for head in network.architecture.blocks.map(\.classifier) {
                let bound = 1 / Double(head.featureWidth).squareRoot()
                let weight = Self.array(network.parameters.values(of: head.linearName + ".weight"), count: head.classes * head.featureWidth)
                let bias = Self.array(network.parameters.values(of: head.linearName + ".bias"), count: head.classes)
                XCTAssertTrue(weight.allSatisfy { abs($0) <= bound }, head.linearName)
                XCTAssertTrue(bias.allSatisfy { abs($0) <= bound && $0 != 0 }, "\(head.linearName).bias: \(bias)")
                XCTAssertGreaterThan(Set(bias).count, 1, head.linearName)
            }
        }
    }

    func testHeNormalKeepsTheFanOutNormalAndZeroLinearBiases() throws {
        for configuration in Self.configurations(.heNormal) {
            let network = try Self.network(configuration)
            var normalised: [Double] = []
            var largeTensors = 0
            for unit in network.architecture.unitsInRegistrationOrder {
                let deviation = (2 / Double(unit.kernelSize * unit.kernelSize * unit.outputChannels)).squareRoot()
                let weight = Self.array(network.parameters.values(of: unit.convolutionName + ".weight"),
                                        count: unit.weightShape.reduce(1, *))
                largeTensors += assertVariance(weight, expected: deviation * deviation, spread: 2.0.squareRoot(),
                                               name: unit.convolutionName + ".weight")
                normalised += weight.map { $0 / deviation }
            }
            if configuration.stem == .cifar { XCTAssertGreaterThan(largeTensors, 0) }
            // Standard normal: variance 1, and unlike a uniform sample, values beyond 3.
            XCTAssertEqual(Self.meanSquare(normalised), 1, accuracy: 0.03)
            XCTAssertGreaterThan(normalised.map(abs).max()!, 3)
            for head in network.architecture.blocks.map(\.classifier) {
                let bias = Self.array(network.parameters.values(of: head.linearName + ".bias"), count: head.classes)
                XCTAssertEqual(bias, Array(repeating: 0, count: head.classes), head.linearName)
            }
        }
    }

    /// The documented draw order, recomputed from the generator: the first unit's weight, then
    /// (ImageNet stem) its bias, then the next unit's weight.
    func testDrawOrderFollowsTheRegistrationOrder() throws {
        for initialization in [MSDNetConfiguration.WeightInitialization.reference, .heNormal] {
            let configuration = Self.configurations(initialization)[1]
            let network = try Self.network(configuration, seed: 9)
            let units = network.architecture.unitsInRegistrationOrder
            var generator = SeededGenerator(seed: 9)
            for unit in units.prefix(2) {
                let count = unit.weightShape.reduce(1, *)
                let fanIn = unit.inputChannels * unit.kernelSize * unit.kernelSize
                var expected = [Float](repeating: 0, count: count)
                expected.withUnsafeMutableBufferPointer {
                    switch initialization {
                    case .reference: Initialization.defaultUniform($0.baseAddress!, count: count, fanIn: fanIn, using: &generator)
                    case .heNormal: Initialization.heNormalConvolution($0.baseAddress!, shape: unit.weightShape, using: &generator)
                    }
                }
                let weight = network.parameters.values(of: unit.convolutionName + ".weight")
                XCTAssertEqual((0..<count).map { weight[$0] }, expected, "\(initialization) \(unit.convolutionName)")
                if unit.hasBias {
                    var bias = [Float](repeating: 0, count: unit.outputChannels)
                    bias.withUnsafeMutableBufferPointer {
                        Initialization.defaultUniform($0.baseAddress!, count: unit.outputChannels, fanIn: fanIn, using: &generator)
                    }
                    let actual = network.parameters.values(of: unit.convolutionName + ".bias")
                    XCTAssertEqual((0..<unit.outputChannels).map { actual[$0] }, bias)
                }
            }
        }
    }
}
