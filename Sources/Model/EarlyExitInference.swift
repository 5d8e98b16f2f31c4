import Foundation

/// Early exit that really skips computation (budgeted batch classification run on the clock,
/// not simulated from every exit's output): the batch goes through the network one block at a
/// time in evaluation mode; after block i each sample whose confidence (largest softmax
/// probability) at exit i reaches `thresholds[i]` leaves with that exit's class, and the samples
/// still running are compacted into a smaller batch before block i + 1, so later blocks compute
/// only for them.
///
/// The decisions are those of the simulation over every exit's probabilities (the reference's
/// `dynamic_evaluate`): the same kernels compute each sample's activations, and the confidence is
/// computed by `ExitConfidence`, as the evaluation does. Only the order in which a matrix product
/// sums can change with the batch size (about 1e-8 in a probability), so a confidence that close
/// to a threshold may decide differently.
public final class EarlyExitInference {
    /// Where and how one sample left.
    public struct Decision: Equatable, Sendable {
        public var exit: Int
        public var predictedClass: Int
        public var confidence: Float

        public init(exit: Int, predictedClass: Int, confidence: Float) {
            self.exit = exit
            self.predictedClass = predictedClass
            self.confidence = confidence
        }
    }

    private let backbone: MSDNet
    private let heads: IMTANetwork?
    /// Steps of the plan up to and including exit i's classifier.
    private let stepRanges: [Range<Int>]
    /// Activations that block i + 1 onwards reads and blocks up to i wrote: compacted after exit i.
    private let carriedTensors: [[Int]]
    private let probabilities: UnsafeMutablePointer<Float>

    /// Runs `network`, a phase-I `MSDNet` or a phase-II `IMTANetwork`, with its current weights.
    public init(network: TrainableNetwork) {
        if let imta = network as? IMTANetwork {
            backbone = imta.backbone
            heads = imta
        } else if let msdnet = network as? MSDNet {
            backbone = msdnet
            heads = nil
        } else {
            preconditionFailure("early exit runs an MSDNet or an IMTANetwork")
        }
        let plan = backbone.shards[0]
        var ranges: [Range<Int>] = []
        var start = 0
        for (index, step) in plan.steps.enumerated() {
            if case .classifierOutput = step {
                ranges.append(start..<(index + 1))
                start = index + 1
            }
        }
        precondition(ranges.count == backbone.exitCount, "one classifier per exit")
        stepRanges = ranges
        let access = ranges.map { range in plan.steps[range].map(plan.tensorsAccessed) }
        carriedTensors = (0..<ranges.count).map { exit in
            let written = Set(access[...exit].joined().flatMap(\.written))
            let readLater = Set(access[(exit + 1)...].joined().flatMap(\.read))
            return written.intersection(readLater).sorted()
        }
        precondition(access.dropFirst().joined().allSatisfy { !$0.readsImages }, "only block 0 reads the images")
        probabilities = .allocate(capacity: backbone.classCount)
    }

    deinit { probabilities.deallocate() }

    /// Classifies `images` `[C, n, H, W]` (channel-major, n <= the network's maximum batch):
    /// sample s leaves at the first exit i with confidence >= `thresholds[i]`, or at the last exit.
    /// The network's first image shard runs them, as many at a time as it holds.
    public func classify(images: UnsafePointer<Float>, count n: Int, thresholds: [Float]) -> [Decision] {
        precondition(n >= 1 && n <= backbone.maximumBatchSize, "batch of \(n) outside 1...\(backbone.maximumBatchSize)")
        precondition(thresholds.count == backbone.exitCount, "one threshold per exit")
        let capacity = backbone.firstShardCapacity
        guard n > capacity else { return classifyOnFirstShard(images: images, count: n, thresholds: thresholds) }
        return stride(from: 0, to: n, by: capacity).flatMap { start in
            let range = start..<min(n, start + capacity)
            return classifyOnFirstShard(images: backbone.firstShardImages(images, count: n, range: range), count: range.count,
                                        thresholds: thresholds)
        }
    }

    private func classifyOnFirstShard(images: UnsafePointer<Float>, count n: Int, thresholds: [Float]) -> [Decision] {
        let classes = backbone.classCount, exits = backbone.exitCount
        var decisions = [Decision?](repeating: nil, count: n)
        var running = Array(0..<n)
        for exit in 0..<exits {
            let rows = running.count
            backbone.forwardBlockOnFirstShard(images: images, count: rows, steps: stepRanges[exit], exit: exit)
            let logits: UnsafeMutablePointer<Float>
            if let heads {
                heads.forwardHead(exit: exit, count: rows, training: false)
                logits = heads.prediction(exit: exit)
            } else {
                logits = backbone.logits(exit: exit)
            }
            var staying: [Int] = []
            for row in 0..<rows {
                let (confidence, predicted) = ExitConfidence.confidence(logits: logits + row * classes, classes: classes,
                                                                        scratch: probabilities)
                if exit == exits - 1 || confidence >= thresholds[exit] {
                    decisions[running[row]] = Decision(exit: exit, predictedClass: predicted, confidence: confidence)
                } else {
                    staying.append(row)
                }
            }
            if staying.isEmpty { break }
            if staying.count < rows { compact(after: exit, keeping: staying, of: rows) }
            running = staying.map { running[$0] }
        }
        return decisions.map { $0! }
    }

    /// Moves the rows `keeping` (ascending) of everything later blocks read to the front, as a
    /// batch of `keeping.count`. Channel-major `[C, n, P]` becomes `[C, m, P]` in place: every
    /// destination lies at or before its source and after every source still to be read.
    private func compact(after exit: Int, keeping: [Int], of n: Int) {
        let m = keeping.count
        for index in carriedTensors[exit] {
            let tensor = backbone.shards[0].tensors[index]
            let plane = tensor.plane
            for channel in 0..<tensor.channels {
                for (row, source) in keeping.enumerated() where channel * n + source != channel * m + row {
                    memmove(tensor.values + (channel * m + row) * plane, tensor.values + (channel * n + source) * plane,
                            plane * MemoryLayout<Float>.size)
                }
            }
        }
        if let heads, exit < backbone.exitCount - 1 {
            let collaborating = heads.collaboration[exit]
            for (row, source) in keeping.enumerated() where row != source {
                (collaborating.output + row * collaborating.width).update(from: collaborating.output + source * collaborating.width,
                                                                        count: collaborating.width)
            }
        }
    }
}

/// The class probabilities and confidence the evaluation reports for one sample's logits:
/// `p_j = exp(x_j - max x) / sum_i exp(x_i - max x)` in single precision, summed in class order;
/// confidence = max p_j, the predicted class its first index (as `torch.max`).
public enum ExitConfidence {
    /// Writes the `classes` probabilities of `logits` to `output`.
    public static func probabilities(logits: UnsafePointer<Float>, classes: Int, output: UnsafeMutablePointer<Float>) {
        Softmax.forward(input: logits, output: output, rows: 1, columns: classes)
    }

    /// Confidence and predicted class of `logits`; `scratch` holds `classes` floats.
    public static func confidence(logits: UnsafePointer<Float>, classes: Int,
                                  scratch: UnsafeMutablePointer<Float>) -> (confidence: Float, predictedClass: Int) {
        probabilities(logits: logits, classes: classes, output: scratch)
        let best = Argmax.index(scratch, count: classes)
        return (scratch[best], best)
    }
}

extension ExecutionPlan {
    /// Which planned tensors a step reads and writes, and whether it reads the network input.
    func tensorsAccessed(_ step: PlannedStep) -> (read: [Int], written: [Int], readsImages: Bool) {
        switch step {
        case let .unit(index):
            let unit = units[index]
            return (unit.input.map { [$0.tensor] } ?? [], [unit.output.tensor], unit.input == nil && unit.group == nil)
        case let .pointwiseGroup(index):
            return ([groups[index].input.tensor], [], false)
        case let .maxPool(input, output, _):
            return ([input], [output.tensor], false)
        case let .classifierOutput(_, input):
            return ([input], [], false)
        case .gradientRescale:
            return ([], [], false)
        }
    }
}
