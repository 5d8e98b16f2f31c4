/// What one training step reports.
public struct TrainingStepResult: Equatable, Sendable {
    /// The phase's loss (phase I: sum of the exits' mean cross-entropies; phase II: OFA loss).
    public var loss: Double
    /// Mean cross-entropy of each exit against the labels.
    public var exitLosses: [Double]
    /// Top-1 correct predictions of each exit in this batch.
    public var exitCorrect: [Int]

    public init(loss: Double, exitLosses: [Double], exitCorrect: [Int]) {
        self.loss = loss
        self.exitLosses = exitLosses
        self.exitCorrect = exitCorrect
    }
}

/// The one interface through which the trainer drives both phases (phase I: `MSDNet`, phase II:
/// `IMTANetwork`).
public protocol TrainableNetwork: AnyObject {
    var exitCount: Int { get }
    var classCount: Int { get }
    /// Largest `count` that `trainingStep` and `predict` accept.
    var maximumBatchSize: Int { get }
    /// The parameters this phase trains (phase I: all; phase II: heads and ISC modules only).
    var trainableParameters: ParameterArena { get }
    /// Every parameter and buffer to checkpoint, by reference `state_dict` key.
    var stateTensors: [NamedTensor] { get }
    /// The BatchNorm running statistics, one contiguous arena per network part, so that ranks
    /// can average them with one collective per arena.
    var runningStatistics: [BufferArena] { get }
    /// Sums BatchNorm batch statistics across ranks (synchronised BN) when set.
    var batchNormReducer: CrossReplicaReducer? { get set }
    /// Told during `trainingStep`'s backward pass as the tail of `trainableParameters.gradients`
    /// becomes final, so that averaging it across ranks can overlap the rest of the pass.
    var gradientReadyObserver: GradientReadyObserver? { get set }
    /// Training-mode forward, loss and backward for `images` `[C, n, H, W]` (channel-major) and
    /// `labels` `[n]`. Zeroes, then fills `trainableParameters.gradients`. `n <= maximumBatchSize`.
    func trainingStep(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, count n: Int) -> TrainingStepResult
    /// Evaluation-mode forward (running statistics): writes exit e's logits `[n, classes]` to `logits[e]`.
    func predict(images: UnsafePointer<Float>, count n: Int, logits: [UnsafeMutablePointer<Float>])
}

extension TrainableNetwork {
    /// Number of rows of `logits` `[n, classes]` whose largest entry (first on ties) is the label.
    static func correctCount(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, count n: Int, classes: Int) -> Int {
        var correct = 0
        for row in 0..<n {
            if Argmax.index(logits + row * classes, count: classes) == Int(labels[row]) { correct += 1 }
        }
        return correct
    }
}
