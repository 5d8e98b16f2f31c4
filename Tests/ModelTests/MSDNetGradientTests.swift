import Model
import XCTest

/// Whole-network checks of the planned forward/backward: central finite differences of the
/// phase-I loss through small MSDNets (CIFAR and ImageNet stems, a dropped scale with its
/// transition), and the exact Gradient Equilibrium relation on a single-scale network.
final class MSDNetGradientTests: XCTestCase {
    /// Two scales, blocks of 1 and 2 layers: the third layer drops scale 0 and adds a transition.
    static let small = MSDNetConfiguration(stem: .cifar, inputChannels: 2, inputSize: 16, classes: 5, nBlocks: 2,
                                           stepmode: .linearGrowth, step: 1, base: 1, nChannels: 4, growthRate: 2,
                                           grFactor: [1, 2], bnFactor: [1, 2], prune: .max, reduction: 0.5, bottleneck: true)

    struct Batch {
        var images: [Float]
        var labels: [Int32]
        var count: Int
    }

    static func batch(_ configuration: MSDNetConfiguration, count: Int, seed: UInt64) -> Batch {
        var generator = SeededGenerator(seed: seed)
        let pixels = configuration.inputChannels * count * configuration.inputSize * configuration.inputSize
        let images = (0..<pixels).map { _ in Float(generator.normal()) }
        let labels = (0..<count).map { _ in Int32(generator.next() % UInt64(configuration.classes)) }
        return Batch(images: images, labels: labels, count: count)
    }

    static func step(_ network: MSDNet, _ batch: Batch) -> TrainingStepResult {
        batch.images.withUnsafeBufferPointer { images in
            batch.labels.withUnsafeBufferPointer { labels in
                network.trainingStep(images: images.baseAddress!, labels: labels.baseAddress!, count: batch.count)
            }
        }
    }

    /// Loss only (training mode), evaluated in the same way as `trainingStep` computes it.
    static func loss(_ network: MSDNet, _ batch: Batch) -> Double {
        batch.images.withUnsafeBufferPointer { images in
            network.forward(images: images.baseAddress!, count: batch.count, training: true)
        }
        return (0..<network.exitCount).reduce(0.0) { total, exit in
            batch.labels.withUnsafeBufferPointer {
                total + CrossEntropy.forward(logits: network.logits(exit: exit), labels: $0.baseAddress!, batch: batch.count,
                                             classes: network.classCount)
            }
        }
    }

    /// Central difference with Richardson extrapolation (error O(epsilon^4)) of `loss` along one coordinate.
    static func numericDerivative(_ value: UnsafeMutablePointer<Float>, epsilon: Float, _ loss: () -> Double) -> Double {
        let original = value.pointee
        func central(_ step: Float) -> Double {
            value.pointee = original + step
            let plus = loss()
            value.pointee = original - step
            let minus = loss()
            value.pointee = original
            return (plus - minus) / Double(2 * step)
        }
        return (4 * central(epsilon / 2) - central(epsilon)) / 3
    }

    /// Analytic against numeric derivatives. Float32 forward passes and ReLU kinks crossed by a
    /// perturbation make single coordinates noisy, so the check is on the whole sample: the
    /// relative error of the vector of derivatives, and the share of coordinates that agree.
    func assertAgree(_ pairs: [(name: String, analytic: Double, numeric: Double)], file: StaticString = #filePath, line: UInt = #line) {
        let error = pairs.reduce(0.0) { $0 + ($1.analytic - $1.numeric) * ($1.analytic - $1.numeric) }.squareRoot()
        let norm = pairs.reduce(0.0) { $0 + $1.numeric * $1.numeric }.squareRoot()
        XCTAssertLessThanOrEqual(error, 0.03 * norm, "relative error of the gradient sample", file: file, line: line)
        let agreeing = pairs.filter { abs($0.analytic - $0.numeric) <= 1e-3 + 3e-2 * abs($0.numeric) }
        XCTAssertGreaterThanOrEqual(Double(agreeing.count), 0.9 * Double(pairs.count),
                                    "disagreeing: \(pairs.filter { p in !agreeing.contains { $0.name == p.name } })", file: file, line: line)
        XCTAssertGreaterThan(pairs.count, 10, file: file, line: line)
    }

    /// Compares analytic and numeric derivatives for `samplesPerTensor` coordinates of every
    /// parameter tensor whose name matches `filter`.
    func checkFiniteDifferences(_ configuration: MSDNetConfiguration, gradientEquilibrium: Bool = false, batchSize: Int = 4,
                                samplesPerTensor: Int = 2, epsilon: Float = 4e-3, filter: (String) -> Bool = { _ in true }) throws {
        // He-normal weights keep the perturbations and the Float32 rounding in the sizes these
        // tolerances were set for; the check is of the gradients, not of the initialisation.
        var configuration = configuration
        configuration.initialization = .heNormal
        let network = try MSDNet(configuration: configuration, gradientEquilibrium: gradientEquilibrium, maximumBatchSize: batchSize, seed: 7)
        let batch = Self.batch(configuration, count: batchSize, seed: 11)
        _ = Self.step(network, batch)
        let analytic = Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count))
        var generator = SeededGenerator(seed: 3)
        var pairs: [(name: String, analytic: Double, numeric: Double)] = []
        for view in network.parameters.views where filter(view.name) {
            for _ in 0..<samplesPerTensor {
                let index = view.offset + Int(generator.next() % UInt64(view.count))
                let numeric = Self.numericDerivative(network.parameters.values + index, epsilon: epsilon) { Self.loss(network, batch) }
                pairs.append(("\(view.name)[\(index - view.offset)]", Double(analytic[index]), numeric))
            }
        }
        assertAgree(pairs)
    }

    func testFiniteDifferencesCIFARStemWithDroppedScaleAndTransition() throws {
        let architecture = try MSDNetArchitecture(Self.small)
        XCTAssertEqual(architecture.blocks.map(\.transitionCount), [0, 1])
        try checkFiniteDifferences(Self.small)
    }

    /// No bottleneck (single 3x3 per path, keys `net.0`/`net.1`) and `prune = min` (transitions at
    /// one and two thirds of the layers, scales dropped at the end).
    func testFiniteDifferencesWithoutBottleneckPruneMin() throws {
        var configuration = Self.small
        configuration.bottleneck = false
        configuration.prune = .min
        let architecture = try MSDNetArchitecture(configuration)
        XCTAssertEqual(architecture.blocks.map(\.transitionCount), [1, 1])
        XCTAssertTrue(architecture.parameterTensors.contains { $0.name == "blocks.0.1.layers.0.conv_normal.net.0.weight" })
        XCTAssertFalse(architecture.parameterTensors.contains { $0.name.hasSuffix("net.3.weight") })
        try checkFiniteDifferences(configuration)
    }

    func testFiniteDifferencesImageNetStem() throws {
        var configuration = Self.small
        configuration.stem = .imagenet
        configuration.inputSize = 64
        configuration.inputChannels = 3
        // The max-pool's window maxima switch under larger perturbations.
        try checkFiniteDifferences(configuration, batchSize: 4, epsilon: 2.5e-4, filter: { $0.hasPrefix("blocks.0.0.") || $0.hasSuffix("linear.weight") })
    }

    /// With one scale, everything in block i reaches the loss only through the rescaled `x[-1]`,
    /// and backward is linear in the output gradient: GE's block-i gradient is exactly the plain
    /// gradient divided by `k - i`, and classifier gradients do not change.
    func testGradientEquilibriumDividesBlockGradientsOnOneScale() throws {
        let configuration = MSDNetConfiguration(stem: .cifar, inputChannels: 1, inputSize: 8, classes: 4, nBlocks: 3,
                                                stepmode: .even, step: 1, base: 1, nChannels: 4, growthRate: 2,
                                                grFactor: [1], bnFactor: [1], prune: .max, reduction: 0.5, bottleneck: true)
        let plain = try MSDNet(configuration: configuration, gradientEquilibrium: false, maximumBatchSize: 4, seed: 5)
        let equilibrium = try MSDNet(configuration: configuration, gradientEquilibrium: true, maximumBatchSize: 4, seed: 5)
        let batch = Self.batch(configuration, count: 4, seed: 9)
        let plainResult = Self.step(plain, batch)
        let equilibriumResult = Self.step(equilibrium, batch)
        XCTAssertEqual(plainResult.loss, equilibriumResult.loss)
        var scaledTensors = 0
        for view in plain.parameters.views {
            let divisor: Float
            if view.name.hasPrefix("blocks.") {
                let block = Int(view.name.split(separator: ".")[1])!
                divisor = Float(configuration.nBlocks - block)
            } else {
                divisor = 1
            }
            var largest: Float = 0
            var difference: Float = 0
            for index in view.offset..<(view.offset + view.count) {
                largest = max(largest, abs(plain.parameters.gradients[index]))
                difference = max(difference, abs(plain.parameters.gradients[index] / divisor - equilibrium.parameters.gradients[index]))
            }
            XCTAssertLessThanOrEqual(difference, 1e-5 * largest + 1e-7, view.name)
            if divisor > 1 && largest > 0 { scaledTensors += 1 }
        }
        XCTAssertGreaterThan(scaledTensors, 10)
    }

    /// On two scales GE changes only the blocks before the last (the last block's factor is 1)
    /// and leaves every classifier's gradient as it was.
    func testGradientEquilibriumLeavesClassifiersAndLastBlock() throws {
        let plain = try MSDNet(configuration: Self.small, gradientEquilibrium: false, maximumBatchSize: 3, seed: 5)
        let equilibrium = try MSDNet(configuration: Self.small, gradientEquilibrium: true, maximumBatchSize: 3, seed: 5)
        let batch = Self.batch(Self.small, count: 3, seed: 2)
        _ = Self.step(plain, batch)
        _ = Self.step(equilibrium, batch)
        var changedInFirstBlock = 0
        for view in plain.parameters.views {
            let a = UnsafeBufferPointer(start: plain.parameters.gradients + view.offset, count: view.count)
            let b = UnsafeBufferPointer(start: equilibrium.parameters.gradients + view.offset, count: view.count)
            let largest = a.map(abs).max() ?? 0
            let difference = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            if view.name.hasPrefix("classifier.") || view.name.hasPrefix("blocks.1.") {
                XCTAssertLessThanOrEqual(difference, 1e-6 * largest + 1e-9, view.name)
            } else if difference > 1e-3 * largest {
                changedInFirstBlock += 1
            }
        }
        XCTAssertGreaterThan(changedInFirstBlock, 5)
    }

    /// A batch smaller than the planned maximum (the last batch of an epoch) gives what a network
    /// planned for exactly that batch gives: activations are laid out for the actual `n`.
    func testSmallerBatchThanPlannedMatchesExactPlan() throws {
        let large = try MSDNet(configuration: Self.small, gradientEquilibrium: true, maximumBatchSize: 7, seed: 5)
        let exact = try MSDNet(configuration: Self.small, gradientEquilibrium: true, maximumBatchSize: 3, seed: 5)
        let batch = Self.batch(Self.small, count: 3, seed: 4)
        _ = Self.step(large, Self.batch(Self.small, count: 7, seed: 1))
        let largeResult = Self.step(large, batch)
        let exactResult = Self.step(exact, batch)
        XCTAssertEqual(largeResult.loss, exactResult.loss, accuracy: 1e-5)
        XCTAssertEqual(largeResult.exitCorrect, exactResult.exitCorrect)
        for index in 0..<large.parameters.count {
            XCTAssertEqual(large.parameters.gradients[index], exact.parameters.gradients[index],
                           accuracy: 1e-5 + 1e-4 * abs(exact.parameters.gradients[index]))
        }
    }

    /// The phase-II heads: central differences of the OFA loss with respect to head parameters.
    func testFiniteDifferencesIMTAHeads() throws {
        let backbone = try MSDNet(configuration: Self.small, gradientEquilibrium: true, maximumBatchSize: 4, seed: 1)
        let network = IMTANetwork(backbone: backbone, distillation: OneForAllDistillation(temperature: 2, gamma: 0.3),
                                  detachCollaboration: false, seed: 4)
        let batch = Self.batch(Self.small, count: 4, seed: 6)
        func step() -> Double {
            batch.images.withUnsafeBufferPointer { images in
                batch.labels.withUnsafeBufferPointer { labels in
                    network.trainingStep(images: images.baseAddress!, labels: labels.baseAddress!, count: batch.count).loss
                }
            }
        }
        _ = step()
        let analytic = Array(UnsafeBufferPointer(start: network.heads.gradients, count: network.heads.count))
        var generator = SeededGenerator(seed: 8)
        var pairs: [(name: String, analytic: Double, numeric: Double)] = []
        for view in network.heads.views {
            for _ in 0..<3 {
                let index = view.offset + Int(generator.next() % UInt64(view.count))
                let numeric = Self.numericDerivative(network.heads.values + index, epsilon: 4e-3, step)
                pairs.append(("\(view.name)[\(index - view.offset)]", Double(analytic[index]), numeric))
            }
        }
        assertAgree(pairs)
    }
}
