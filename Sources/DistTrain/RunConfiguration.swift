import Model

/// One training run, as read from the JSON run file (`disttrain CONFIG`).
///
/// Every section is a value type; the trainer, the data pipeline and the model receive the
/// parts they need and nothing else.
public struct RunConfiguration: Codable, Equatable, Sendable {
    /// Names the run; the run directory defaults to `runs/<name>`.
    public var name: String
    /// Where checkpoints, metrics and exit logits go. Default: `runs/<name>`.
    public var runDir: String?
    /// Seeds initialisation, the validation hold-out, the per-epoch permutation and augmentation.
    public var seed: UInt64
    /// OpenBLAS and worker threads per rank. Default: cores / ranks on the node.
    public var threadsPerRank: Int?
    public var data: DataConfiguration
    public var model: MSDNetConfiguration
    /// Use Gradient Equilibrium in phase I (paper section 3.1). Default true.
    public var gradientEquilibrium: Bool
    /// Reduce BatchNorm batch statistics across ranks in training (synchronised BN).
    public var syncBatchNorm: Bool
    public var phase1: PhaseConfiguration
    public var phase2: PhaseConfiguration
    public var isc: InlineSubnetworkCollaborationConfiguration
    public var ofa: OneForAllDistillationConfiguration
    public var checkpoint: CheckpointConfiguration
    public var evaluation: EvaluationConfiguration

    /// The run directory, `runDir` or `runs/<name>`.
    public var resolvedRunDirectory: String { runDir ?? "runs/\(name)" }
}

/// Which data set, where it lives and how much of it to use.
public struct DataConfiguration: Codable, Equatable, Sendable {
    public enum Dataset: String, Codable, Sendable {
        case fashionMNIST = "fashion-mnist"
        case mnist
        case cifar10
        case cifar100
        /// HDF5 shards written by `disttrain prepare imagenet`.
        case imagenet
    }

    public var dataset: Dataset
    /// Directory holding the data set's files.
    public var root: String
    /// Size of the validation hold-out drawn from the training set (5,000 CIFAR and
    /// Fashion-MNIST, 50,000 ImageNet when absent).
    public var validationHoldout: Int?
    /// Use only the first N training samples (smoke runs and tests).
    public var limitTrain: Int?
    /// Use only the first N test samples.
    public var limitTest: Int?
    /// Decoding threads per rank. Default 1.
    public var workers: Int?
}

/// The optimisation schedule of one training phase.
public struct PhaseConfiguration: Codable, Equatable, Sendable {
    /// 0 skips the phase.
    public var epochs: Int
    /// Global batch, split evenly across ranks.
    public var batchSize: Int
    public var lr: Double
    public var momentum: Double
    public var nesterov: Bool
    public var weightDecay: Double
    public var schedule: LearningRateSchedule
}

/// Learning rate as a function of the epoch within a phase.
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// `lr * factor^m`, m = number of milestones (fractions of the phase) already reached.
        case multistep
        /// `lr * factor^(epoch / every)` (ImageNet: x0.1 every 30 epochs).
        case step
        /// `lr / 2 * (1 + cos(pi * t / T))` per iteration, as the reference's `cosine`.
        case cosine
    }

    public var kind: Kind
    /// For `multistep`: fractions of the phase's epochs. Default [0.5, 0.75].
    public var milestones: [Double]?
    /// For `step`: epochs between decays. Default 30.
    public var every: Int?
    /// Multiplier at each decay. Default 0.1.
    public var factor: Double?
}

/// Inline Subnetwork Collaboration (paper section 3.2).
public struct InlineSubnetworkCollaborationConfiguration: Codable, Equatable, Sendable {
    /// Stop the gradient of pred_{i-1} on the ISC path (the paper); the reference does not.
    public var detach: Bool
}

/// One-for-all Knowledge Distillation (paper section 3.3, equation 6).
public struct OneForAllDistillationConfiguration: Codable, Equatable, Sendable {
    public enum Reduction: String, Codable, Sendable {
        /// PyTorch `KLDivLoss()` default: sum over batch and classes / (batch * classes).
        case mean
        /// Sum over batch and classes / batch.
        case batchmean
    }

    /// Softmax temperature T.
    public var temperature: Double
    /// Weight gamma of the distillation term.
    public var gamma: Double
    public var reduction: Reduction
}

/// When checkpoints are written and how many are kept.
public struct CheckpointConfiguration: Codable, Equatable, Sendable {
    /// Also checkpoint every N steps within an epoch (0: only at epoch ends).
    public var everySteps: Int
    /// Keep the newest N checkpoints.
    public var keep: Int
}

/// The budgeted evaluation after training.
public struct EvaluationConfiguration: Codable, Equatable, Sendable {
    /// Run it at the end of the run.
    public var enabled: Bool
    /// Number of budgets p = 1/20 ... budgets/20 (the reference uses 40).
    public var budgets: Int
    /// Evaluation batch size per rank.
    public var batchSize: Int
}
