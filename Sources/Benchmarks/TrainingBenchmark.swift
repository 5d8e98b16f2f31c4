import Foundation
import Model

/// Training throughput of one configuration on synthetic data (`disttrain bench`).
public struct TrainingBenchmarkResult: CustomStringConvertible, Sendable {
    public var batchSize: Int
    public var steps: Int
    public var seconds: Double
    public var imagesPerSecond: Double { Double(batchSize * steps) / seconds }
    /// Seconds spent per operator kind over the timed steps, largest first.
    public var operatorSeconds: [(name: String, seconds: Double)]

    public var description: String {
        var lines = [String(format: "%d steps of batch %d: %.1f images/s (%.1f ms/step)", steps, batchSize, imagesPerSecond,
                            1000 * seconds / Double(steps))]
        for entry in operatorSeconds {
            let name = entry.name + String(repeating: " ", count: max(1, 40 - entry.name.count))
            lines.append("  " + name + String(format: "%8.1f ms/step %6.1f%%", 1000 * entry.seconds / Double(steps),
                                                  100 * entry.seconds / seconds))
        }
        return lines.joined(separator: "\n")
    }
}

/// Times `trainingStep` of phase I (MSDNet with or without GE) or phase II (IMTA heads on a frozen
/// backbone) on random images, after warm-up steps that are not timed.
public enum TrainingBenchmark {
    public enum Phase: String, Sendable {
        case one
        case two
    }

    public static func run(configuration: MSDNetConfiguration, batchSize: Int, steps: Int, warmupSteps: Int = 2,
                           phase: Phase = .one, gradientEquilibrium: Bool = true, seed: UInt64 = 0) throws -> TrainingBenchmarkResult {
        precondition(batchSize >= 1 && steps >= 1, "batch size and steps must be positive")
        let backbone = try MSDNet(configuration: configuration, gradientEquilibrium: gradientEquilibrium, maximumBatchSize: batchSize, seed: seed)
        let network: TrainableNetwork
        switch phase {
        case .one: network = backbone
        case .two:
            network = IMTANetwork(backbone: backbone, distillation: OneForAllDistillation(temperature: 1, gamma: 0.1),
                                  detachCollaboration: false, seed: seed &+ 1)
        }
        var generator = SeededGenerator(seed: seed &+ 2)
        let pixels = configuration.inputChannels * batchSize * configuration.inputSize * configuration.inputSize
        let images = (0..<pixels).map { _ in Float(generator.normal()) }
        let labels = (0..<batchSize).map { _ in Int32(generator.next() % UInt64(configuration.classes)) }
        return images.withUnsafeBufferPointer { imageBuffer in
            labels.withUnsafeBufferPointer { labelBuffer in
                for _ in 0..<warmupSteps {
                    _ = network.trainingStep(images: imageBuffer.baseAddress!, labels: labelBuffer.baseAddress!, count: batchSize)
                }
                let profile = OperatorProfile()
                backbone.profile = profile
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<steps {
                    _ = network.trainingStep(images: imageBuffer.baseAddress!, labels: labelBuffer.baseAddress!, count: batchSize)
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                backbone.profile = nil
                return TrainingBenchmarkResult(batchSize: batchSize, steps: steps, seconds: seconds,
                                               operatorSeconds: profile.seconds.sorted { $0.value > $1.value }.map { ($0.key, $0.value) })
            }
        }
    }
}
