import Foundation
import Model

/// Throughput of one configuration on synthetic data (`disttrain bench`): training steps of phase
/// I or II, or evaluation passes through every exit.
public struct TrainingBenchmarkResult: CustomStringConvertible, Sendable {
    public var batchSize: Int
    public var steps: Int
    /// Wall time of the timed steps, run without profiling as training runs them.
    public var seconds: Double
    public var imagesPerSecond: Double { Double(batchSize * steps) / seconds }
    /// Heap allocations per timed step (all threads; 0 for a step that allocates nothing).
    public var allocationsPerStep: Double
    /// Seconds spent per operator kind over as many steps again, run with the profile, largest
    /// first; empty unless a breakdown was asked for.
    public var operatorSeconds: [(name: String, seconds: Double)]
    /// Wall time of the profiled steps.
    public var profiledSeconds: Double

    public var description: String {
        var lines = [String(format: "%d steps of batch %d: %.1f images/s (%.1f ms/step), %.0f allocations/step", steps, batchSize,
                            imagesPerSecond, 1000 * seconds / Double(steps), allocationsPerStep)]
        for entry in operatorSeconds {
            let name = entry.name + String(repeating: " ", count: max(1, 40 - entry.name.count))
            lines.append("  " + name + String(format: "%8.1f ms/step %6.1f%%", 1000 * entry.seconds / Double(steps),
                                                  100 * entry.seconds / profiledSeconds))
        }
        return lines.joined(separator: "\n")
    }
}

/// Times `trainingStep` of phase I (MSDNet with or without GE) or phase II (IMTA heads on a frozen
/// backbone), or `predict` of the phase-II network (evaluation mode, every exit, as `eval` runs
/// it), on random images, after warm-up steps that are not timed.
public enum TrainingBenchmark {
    public enum Phase: String, Sendable {
        case one
        case two
        case evaluation
    }

    public static func run(configuration: MSDNetConfiguration, batchSize: Int, steps: Int, warmupSteps: Int = 2,
                           phase: Phase = .one, gradientEquilibrium: Bool = true, seed: UInt64 = 0,
                           breakdown: Bool = true) throws -> TrainingBenchmarkResult {
        precondition(batchSize >= 1 && steps >= 1, "batch size and steps must be positive")
        let backbone = try MSDNet(configuration: configuration, gradientEquilibrium: gradientEquilibrium, maximumBatchSize: batchSize, seed: seed)
        let network: TrainableNetwork = phase == .one ? backbone
            : IMTANetwork(backbone: backbone, distillation: OneForAllDistillation(temperature: 1, gamma: 0.1),
                          detachCollaboration: false, seed: seed &+ 1)
        var generator = SeededGenerator(seed: seed &+ 2)
        let pixels = configuration.inputChannels * batchSize * configuration.inputSize * configuration.inputSize
        let images = (0..<pixels).map { _ in Float(generator.normal()) }
        let labels = (0..<batchSize).map { _ in Int32(generator.next() % UInt64(configuration.classes)) }
        let logits = (0..<network.exitCount).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: batchSize * network.classCount) }
        defer { for pointer in logits { pointer.deallocate() } }
        return images.withUnsafeBufferPointer { imageBuffer in
            labels.withUnsafeBufferPointer { labelBuffer in
                func step() {
                    if phase == .evaluation {
                        network.predict(images: imageBuffer.baseAddress!, count: batchSize, logits: logits)
                    } else {
                        _ = network.trainingStep(images: imageBuffer.baseAddress!, labels: labelBuffer.baseAddress!, count: batchSize)
                    }
                }
                func timedSteps() -> Double {
                    let start = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<steps { step() }
                    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                }
                for _ in 0..<warmupSteps { step() }
                let allocationsBefore = AllocationCounter.total
                let seconds = timedSteps()
                let allocations = AllocationCounter.total - allocationsBefore
                var operatorSeconds: [(name: String, seconds: Double)] = []
                var profiledSeconds = 0.0
                if breakdown {
                    let profile = OperatorProfile()
                    backbone.profile = profile
                    profiledSeconds = timedSteps()
                    backbone.profile = nil
                    operatorSeconds = profile.seconds.sorted { $0.value > $1.value }.map { ($0.key, $0.value) }
                }
                return TrainingBenchmarkResult(batchSize: batchSize, steps: steps, seconds: seconds,
                                               allocationsPerStep: Double(allocations) / Double(steps),
                                               operatorSeconds: operatorSeconds, profiledSeconds: profiledSeconds)
            }
        }
    }
}
