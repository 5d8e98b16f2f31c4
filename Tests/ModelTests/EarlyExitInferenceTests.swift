import Model
import XCTest

/// Early exit on small trained networks (phase I and phase II, CIFAR and ImageNet stems) against
/// the simulation: every exit's logits from the full forward, then each sample sent out at the
/// first exit whose confidence reaches the threshold. Exit, class and confidence must be equal.
final class EarlyExitInferenceTests: XCTestCase {
    /// Three blocks over three scales (lin_grow drops scales and adds transitions).
    static let cifar = MSDNetConfiguration(stem: .cifar, inputChannels: 2, inputSize: 32, classes: 5, nBlocks: 3,
                                           stepmode: .linearGrowth, step: 1, base: 1, nChannels: 4, growthRate: 2,
                                           grFactor: [1, 2, 4], bnFactor: [1, 2, 4], prune: .max, reduction: 0.5, bottleneck: true)
    static let imagenet = MSDNetConfiguration(stem: .imagenet, inputChannels: 3, inputSize: 64, classes: 4, nBlocks: 2,
                                              stepmode: .even, step: 1, base: 1, nChannels: 4, growthRate: 2,
                                              grFactor: [1, 2], bnFactor: [1, 2], prune: .max, reduction: 0.5, bottleneck: true)

    /// Images whose channel-0 mean encodes the label, so a few steps learn something.
    static func batch(_ configuration: MSDNetConfiguration, count: Int, seed: UInt64) -> (images: [Float], labels: [Int32]) {
        var generator = SeededGenerator(seed: seed)
        let plane = configuration.inputSize * configuration.inputSize
        let labels = (0..<count).map { _ in Int32(generator.next() % UInt64(configuration.classes)) }
        var images = (0..<(configuration.inputChannels * count * plane)).map { _ in Float(generator.normal()) }
        for sample in 0..<count {
            for pixel in 0..<plane { images[sample * plane + pixel] += Float(labels[sample]) - 1.5 }
        }
        return (images, labels)
    }

    static func train(_ network: TrainableNetwork, optimizer: SGD, configuration: MSDNetConfiguration, steps: Int) {
        for step in 0..<steps {
            let (images, labels) = batch(configuration, count: 16, seed: UInt64(100 + step))
            _ = images.withUnsafeBufferPointer { images in
                labels.withUnsafeBufferPointer { labels in
                    network.trainingStep(images: images.baseAddress!, labels: labels.baseAddress!, count: 16)
                }
            }
            optimizer.step(learningRate: 0.05)
        }
    }

    /// Every sample's confidence and class at every exit, from one full evaluation forward.
    static func allExits(_ network: TrainableNetwork, images: [Float], count: Int) -> [[(confidence: Float, predictedClass: Int)]] {
        let classes = network.classCount
        let logits = (0..<network.exitCount).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: count * classes) }
        defer { logits.forEach { $0.deallocate() } }
        images.withUnsafeBufferPointer { network.predict(images: $0.baseAddress!, count: count, logits: logits) }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: classes)
        defer { scratch.deallocate() }
        return logits.map { exitLogits in
            (0..<count).map { ExitConfidence.confidence(logits: exitLogits + $0 * classes, classes: classes, scratch: scratch) }
        }
    }

    func check(_ network: TrainableNetwork, configuration: MSDNetConfiguration, file: StaticString = #filePath, line: UInt = #line) {
        let count = 24
        let (images, _) = Self.batch(configuration, count: count, seed: 7)
        let simulated = Self.allExits(network, images: images, count: count)
        // Each exit's median confidence: about half of the samples still running leave at each exit.
        let medians = simulated.map { exit in exit.map(\.confidence).sorted()[count / 2] }
        let exits = network.exitCount
        let inference = EarlyExitInference(network: network)
        var seenExits = Set<Int>()
        for thresholds in [medians, [Float](repeating: 2, count: exits), [Float](repeating: 0, count: exits)] {
            let decisions = images.withUnsafeBufferPointer {
                inference.classify(images: $0.baseAddress!, count: count, thresholds: thresholds)
            }
            for sample in 0..<count {
                let exit = (0..<exits).first { $0 == exits - 1 || simulated[$0][sample].confidence >= thresholds[$0] }!
                let expected = EarlyExitInference.Decision(exit: exit, predictedClass: simulated[exit][sample].predictedClass,
                                                           confidence: simulated[exit][sample].confidence)
                XCTAssertEqual(decisions[sample], expected, "sample \(sample), thresholds \(thresholds)", file: file, line: line)
                seenExits.insert(decisions[sample].exit)
            }
        }
        XCTAssertEqual(seenExits, Set(0..<exits), "the thresholds send samples out at every exit", file: file, line: line)
        // The network still computes whole batches as before.
        let again = Self.allExits(network, images: images, count: count)
        XCTAssertEqual(again.map { $0.map(\.confidence) }, simulated.map { $0.map(\.confidence) }, file: file, line: line)
    }

    func testPhaseOneNetworksAgreeWithTheSimulation() throws {
        for configuration in [Self.cifar, Self.imagenet] {
            let network = try MSDNet(configuration: configuration, gradientEquilibrium: true, maximumBatchSize: 24, seed: 3)
            let optimizer = SGD(parameters: network.parameters, momentum: 0.9, nesterov: true, weightDecay: 1e-4)
            Self.train(network, optimizer: optimizer, configuration: configuration, steps: 6)
            check(network, configuration: configuration)
        }
    }

    /// Early exit runs the first image shard, a shard's worth of samples at a time (24 samples in
    /// shards of 16), and the heads read the pooled features it gathered.
    func testNetworksInImageShardsAgreeWithTheSimulation() throws {
        let backbone = try MSDNet(configuration: Self.cifar, gradientEquilibrium: true, maximumBatchSize: 32, seed: 4, imageShards: 2)
        Self.train(backbone, optimizer: SGD(parameters: backbone.parameters, momentum: 0.9, nesterov: true, weightDecay: 1e-4),
                   configuration: Self.cifar, steps: 4)
        check(backbone, configuration: Self.cifar)
        let network = IMTANetwork(backbone: backbone, distillation: OneForAllDistillation(temperature: 2, gamma: 0.3),
                                  detachCollaboration: false, seed: 5)
        Self.train(network, optimizer: SGD(parameters: network.heads, momentum: 0.9, nesterov: false, weightDecay: 1e-4),
                   configuration: Self.cifar, steps: 4)
        check(network, configuration: Self.cifar)
    }

    func testPhaseTwoHeadsAgreeWithTheSimulation() throws {
        let backbone = try MSDNet(configuration: Self.cifar, gradientEquilibrium: true, maximumBatchSize: 24, seed: 4)
        Self.train(backbone, optimizer: SGD(parameters: backbone.parameters, momentum: 0.9, nesterov: true, weightDecay: 1e-4),
                   configuration: Self.cifar, steps: 4)
        let network = IMTANetwork(backbone: backbone, distillation: OneForAllDistillation(temperature: 2, gamma: 0.3),
                                  detachCollaboration: false, seed: 5)
        Self.train(network, optimizer: SGD(parameters: network.heads, momentum: 0.9, nesterov: false, weightDecay: 1e-4),
                   configuration: Self.cifar, steps: 4)
        check(network, configuration: Self.cifar)
    }
}
