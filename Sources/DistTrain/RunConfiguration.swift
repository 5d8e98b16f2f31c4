import DataPipeline
import Foundation
import Model

/// One training run, as read from the JSON run file (`disttrain CONFIG`).
///
/// Every section is a value type; the trainer, the data pipeline and the model receive the
/// parts they need and nothing else. A run file is read strictly (`load(path:worldSize:)`):
/// unknown keys at any depth, values of the wrong type and impossible values are rejected with
/// the key path; absent optional keys take the defaults documented on each field (and in the
/// README's configuration table). The keys of every object are declared once, as the cases of
/// its `Key` enum, which reading and encoding both go through.
public struct RunConfiguration: Codable, Equatable, Sendable {
    /// Names the run; the run directory defaults to `runs/<name>`. Required, no `/`.
    public var name: String
    /// Where checkpoints, metrics and exit logits go. Default: `runs/<name>`.
    public var runDir: String?
    /// Seeds initialisation, the validation hold-out, the per-epoch permutation and augmentation.
    /// Default 0.
    public var seed: UInt64
    /// Compute threads per rank (one image shard each, or splitting each operator; see `ImageShards`). Default: cores / ranks on the node.
    public var threadsPerRank: Int?
    public var data: DataConfiguration
    public var model: MSDNetConfiguration
    /// Use Gradient Equilibrium in phase I (paper section 3.1). Default true.
    public var gradientEquilibrium: Bool
    /// Reduce BatchNorm batch statistics across ranks in training (synchronised BN). Default false.
    public var syncBatchNorm: Bool
    public var phase1: PhaseConfiguration
    public var phase2: PhaseConfiguration
    public var isc: InlineSubnetworkCollaborationConfiguration
    public var ofa: OneForAllDistillationConfiguration
    public var checkpoint: CheckpointConfiguration
    public var evaluation: EvaluationConfiguration
    public var distributed: DistributedConfiguration

    /// The run directory, `runDir` or `runs/<name>`.
    public var resolvedRunDirectory: String { runDir ?? "runs/\(name)" }

    /// `threadsPerRank`, else the node's cores shared evenly among the ranks on it (Open MPI's local size).
    public var resolvedThreadsPerRank: Int {
        if let threadsPerRank { return threadsPerRank }
        let localRanks = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
        return max(1, ProcessInfo.processInfo.activeProcessorCount / max(localRanks, 1))
    }

    public init(
        name: String, runDir: String? = nil, seed: UInt64 = 0, threadsPerRank: Int? = nil,
        data: DataConfiguration, model: MSDNetConfiguration, gradientEquilibrium: Bool = true,
        syncBatchNorm: Bool = false, phase1: PhaseConfiguration, phase2: PhaseConfiguration,
        isc: InlineSubnetworkCollaborationConfiguration = .init(),
        ofa: OneForAllDistillationConfiguration = .init(),
        checkpoint: CheckpointConfiguration = .init(),
        evaluation: EvaluationConfiguration = .init(),
        distributed: DistributedConfiguration = .init()
    ) {
        self.name = name
        self.runDir = runDir
        self.seed = seed
        self.threadsPerRank = threadsPerRank
        self.data = data
        self.model = model
        self.gradientEquilibrium = gradientEquilibrium
        self.syncBatchNorm = syncBatchNorm
        self.phase1 = phase1
        self.phase2 = phase2
        self.isc = isc
        self.ofa = ofa
        self.checkpoint = checkpoint
        self.evaluation = evaluation
        self.distributed = distributed
    }
}

/// The optimisation schedule of one training phase.
public struct PhaseConfiguration: Equatable, Sendable {
    /// 0 skips the phase. Required.
    public var epochs: Int
    /// Global batch, split evenly across ranks. Required.
    public var batchSize: Int
    /// Initial learning rate. Required.
    public var lr: Double
    /// Default 0.9.
    public var momentum: Double
    /// Default true in phase I (the paper) unless momentum is 0, false in phase II (the
    /// reference IMTA script).
    public var nesterov: Bool
    /// L2 penalty added to the gradient of every parameter. Default 1e-4.
    public var weightDecay: Double
    /// Default `{"kind": "multistep"}`.
    public var schedule: LearningRateSchedule

    public init(
        epochs: Int, batchSize: Int, lr: Double, momentum: Double = 0.9, nesterov: Bool,
        weightDecay: Double = 1e-4, schedule: LearningRateSchedule = .init()
    ) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.schedule = schedule
    }
}

/// Learning rate as a function of the epoch within a phase.
public struct LearningRateSchedule: Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// `lr * factor^m`, m = number of milestones (fractions of the phase) already reached.
        case multistep
        /// `lr * factor^(epoch / every)` (ImageNet: x0.1 every 30 epochs).
        case step
        /// `lr / 2 * (1 + cos(pi * t / T))` per iteration, as the reference's `cosine`.
        case cosine
    }

    /// Default `multistep`.
    public var kind: Kind
    /// For `multistep`: fractions of the phase's epochs. Default [0.5, 0.75].
    public var milestones: [Double]?
    /// For `step`: epochs between decays. Default 30.
    public var every: Int?
    /// Multiplier at each decay (`multistep`, `step`). Default 0.1.
    public var factor: Double?

    public init(kind: Kind = .multistep, milestones: [Double]? = nil, every: Int? = nil, factor: Double? = nil) {
        self.kind = kind
        self.milestones = milestones
        self.every = every
        self.factor = factor
    }
}

/// Inline Subnetwork Collaboration (paper section 3.2).
public struct InlineSubnetworkCollaborationConfiguration: Equatable, Sendable {
    /// Stop the gradient of pred_{i-1} on the ISC path (the paper); the reference does not.
    /// Default false.
    public var detach: Bool

    public init(detach: Bool = false) {
        self.detach = detach
    }
}

/// One-for-all Knowledge Distillation (paper section 3.3, equation 6).
public struct OneForAllDistillationConfiguration: Equatable, Sendable {
    public enum Reduction: String, Codable, Sendable {
        /// PyTorch `KLDivLoss()` default: sum over batch and classes / (batch * classes).
        case mean
        /// Sum over batch and classes / batch.
        case batchmean
    }

    /// Softmax temperature T. Default 1 (the reference `run_IMTA.sh`).
    public var temperature: Double
    /// Weight gamma of the distillation term, in [0, 1]. Default 0.1 (`run_IMTA.sh`).
    public var gamma: Double
    /// Default `mean`.
    public var reduction: Reduction

    public init(temperature: Double = 1, gamma: Double = 0.1, reduction: Reduction = .mean) {
        self.temperature = temperature
        self.gamma = gamma
        self.reduction = reduction
    }
}

/// When checkpoints are written and how many are kept.
public struct CheckpointConfiguration: Equatable, Sendable {
    /// Also checkpoint every N steps within an epoch (0: only at epoch ends). Default 0.
    public var everySteps: Int
    /// Keep the newest N checkpoints. Default 3.
    public var keep: Int

    public init(everySteps: Int = 0, keep: Int = 3) {
        self.everySteps = everySteps
        self.keep = keep
    }
}

/// How the ranks watch each other.
public struct DistributedConfiguration: Equatable, Sendable {
    /// Seconds a rank may wait in a collective for another rank that makes no progress before
    /// the job names that rank and aborts (0: wait forever). Default 600.
    public var stallTimeout: Double
    /// Bytes of gradient per all-reduce bucket started during the backward pass (0: one
    /// all-reduce of the whole arena after it). Default 4 MiB.
    public var bucketBytes: Int

    public init(stallTimeout: Double = 600, bucketBytes: Int = 4 << 20) {
        self.stallTimeout = stallTimeout
        self.bucketBytes = bucketBytes
    }
}

/// The budgeted evaluation after training.
public struct EvaluationConfiguration: Equatable, Sendable {
    /// Run it at the end of the run. Default true.
    public var enabled: Bool
    /// Number of budgets p = 1/20 ... budgets/20 (the reference uses 40). Default 40.
    public var budgets: Int
    /// Evaluation batch size per rank. Default 128.
    public var batchSize: Int

    public init(enabled: Bool = true, budgets: Int = 40, batchSize: Int = 128) {
        self.enabled = enabled
        self.budgets = budgets
        self.batchSize = batchSize
    }
}

// MARK: - Loading

extension RunConfiguration {
    /// Reads, decodes and validates a run file, before anything is written anywhere.
    ///
    /// - Parameters:
    ///   - worldSize: number of ranks the run will use (the global batches must split evenly).
    ///   - requireDataRoot: check that `data.root` is an existing directory (tests of configs
    ///     for data sets absent from the machine turn it off).
    /// - Throws: `ConfigurationError`, whose `description` is one line naming the file and key.
    public static func load(path: String, worldSize: Int, requireDataRoot: Bool = true) throws -> RunConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "permission denied or not a regular file" : "no such file"
            throw ConfigurationError.unreadableFile(file: path, reason: reason)
        }
        let configuration = try RunConfiguration(json: data, file: path)
        try configuration.validate(worldSize: worldSize, file: path, requireDataRoot: requireDataRoot)
        return configuration
    }

    /// Decodes a run file strictly: every key known, every value of the right type and range,
    /// the sections consistent with each other. `file` names the source in errors.
    public init(json data: Data, file: String) throws {
        try self.init(reading: JSONValue.parse(data, file: file), file: file)
    }

    /// Decodes through the same strict reader as `init(json:file:)`, so that a configuration
    /// stored as JSON (for instance in a checkpoint) reads back exactly as a run file does.
    public init(from decoder: Decoder) throws {
        do {
            try self.init(reading: JSONValue(from: decoder), file: "configuration")
        } catch let error as ConfigurationError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    enum Key: String, RunFileKey {
        case name, runDir, seed, threadsPerRank, data, model, gradientEquilibrium, syncBatchNorm
        case phase1, phase2, isc, ofa, checkpoint, evaluation, distributed
    }

    /// Writes what the reader reads back: every key of every object, optional ones when set.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for key in Key.allCases { try write(key, to: &container) }
    }

    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws {
        switch key {
        case .name: try container.encode(name, forKey: key)
        case .runDir: try container.encodeIfPresent(runDir, forKey: key)
        case .seed: try container.encode(seed, forKey: key)
        case .threadsPerRank: try container.encodeIfPresent(threadsPerRank, forKey: key)
        case .data: try container.encode(section: data, forKey: key)
        case .model: try container.encode(section: model, forKey: key)
        case .gradientEquilibrium: try container.encode(gradientEquilibrium, forKey: key)
        case .syncBatchNorm: try container.encode(syncBatchNorm, forKey: key)
        case .phase1: try container.encode(section: phase1, forKey: key)
        case .phase2: try container.encode(section: phase2, forKey: key)
        case .isc: try container.encode(section: isc, forKey: key)
        case .ofa: try container.encode(section: ofa, forKey: key)
        case .checkpoint: try container.encode(section: checkpoint, forKey: key)
        case .evaluation: try container.encode(section: evaluation, forKey: key)
        case .distributed: try container.encode(section: distributed, forKey: key)
        }
    }

    init(reading value: JSONValue, file: String) throws {
        let root = try ConfigurationObject<Key>(value, file: file, path: "")
        // The run directory defaults to runs/<name>: the name must be one path component.
        name = try root.string(.name, expected: "a name usable as one path component (no '/' or NUL, not '.' or '..', at most 255 bytes)") {
            !$0.contains("/") && !$0.contains("\0") && $0 != "." && $0 != ".." && $0.utf8.count <= 255
        }
        runDir = try root.stringIfPresent(.runDir, expected: "a non-empty path without NUL") { !$0.contains("\0") }
        seed = UInt64(try root.integer(.seed, atLeast: 0, default: 0))
        threadsPerRank = try root.integerIfPresent(.threadsPerRank, atLeast: 1)
        data = try DataConfiguration(reading: root.requiredObject(.data))
        model = try MSDNetConfiguration(
            reading: root.requiredObject(.model), dataset: data.dataset)
        gradientEquilibrium = try root.boolean(.gradientEquilibrium, default: true)
        syncBatchNorm = try root.boolean(.syncBatchNorm, default: false)
        phase1 = try PhaseConfiguration(
            reading: root.requiredObject(.phase1), nesterovDefault: true)
        phase2 = try PhaseConfiguration(
            reading: root.requiredObject(.phase2), nesterovDefault: false)
        isc = try InlineSubnetworkCollaborationConfiguration(reading: root.object(.isc))
        ofa = try OneForAllDistillationConfiguration(reading: root.object(.ofa))
        checkpoint = try CheckpointConfiguration(reading: root.object(.checkpoint))
        evaluation = try EvaluationConfiguration(reading: root.object(.evaluation))
        distributed = try DistributedConfiguration(reading: root.object(.distributed))
    }
}

extension DataConfiguration: RunFileSection {
    enum Key: String, RunFileKey {
        case dataset, root, validationHoldout, limitTrain, limitTest, workers
    }

    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws {
        switch key {
        case .dataset: try container.encode(dataset, forKey: key)
        case .root: try container.encode(root, forKey: key)
        case .validationHoldout: try container.encodeIfPresent(validationHoldout, forKey: key)
        case .limitTrain: try container.encodeIfPresent(limitTrain, forKey: key)
        case .limitTest: try container.encodeIfPresent(limitTest, forKey: key)
        case .workers: try container.encodeIfPresent(workers, forKey: key)
        }
    }

    init(reading object: ConfigurationObject<Key>) throws {
        let dataset = try object.choice(.dataset, among: Dataset.all)
        let validationHoldout = try object.integerIfPresent(.validationHoldout, atLeast: 0)
        self.init(
            dataset: dataset,
            root: try object.string(.root),
            validationHoldout: validationHoldout,
            limitTrain: try object.integerIfPresent(.limitTrain, atLeast: 1),
            limitTest: try object.integerIfPresent(.limitTest, atLeast: 1),
            workers: try object.integerIfPresent(.workers, atLeast: 1))
        if let validationHoldout, let trainingImages = dataset.trainingImages, validationHoldout >= trainingImages {
            throw object.inconsistent(
                .validationHoldout, expected: "fewer than the \(trainingImages) training images of \(dataset.rawValue)")
        }
    }
}

extension MSDNetConfiguration: RunFileSection {
    enum Key: String, RunFileKey {
        case stem, inputChannels, inputSize, classes, nBlocks, stepmode, step, base, nChannels
        case growthRate, grFactor, bnFactor, prune, reduction, bottleneck, initialization
    }

    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws {
        switch key {
        case .stem: try container.encode(stem, forKey: key)
        case .inputChannels: try container.encode(inputChannels, forKey: key)
        case .inputSize: try container.encode(inputSize, forKey: key)
        case .classes: try container.encode(classes, forKey: key)
        case .nBlocks: try container.encode(nBlocks, forKey: key)
        case .stepmode: try container.encode(stepmode, forKey: key)
        case .step: try container.encode(step, forKey: key)
        case .base: try container.encode(base, forKey: key)
        case .nChannels: try container.encode(nChannels, forKey: key)
        case .growthRate: try container.encode(growthRate, forKey: key)
        case .grFactor: try container.encode(grFactor, forKey: key)
        case .bnFactor: try container.encode(bnFactor, forKey: key)
        case .prune: try container.encode(prune, forKey: key)
        case .reduction: try container.encode(reduction, forKey: key)
        case .bottleneck: try container.encode(bottleneck, forKey: key)
        case .initialization: try container.encode(initialization, forKey: key)
        }
    }

    /// Reads the architecture with the reference's argument names and defaults (MSDNet-PyTorch
    /// `args.py`); the stem, input shape and class count default from the data set.
    init(reading object: ConfigurationObject<Key>, dataset: DataConfiguration.Dataset) throws {
        let isImageNet = dataset == .imagenet
        let stem = try object.choice(.stem, among: [Stem.cifar, .imagenet], default: isImageNet ? .imagenet : .cifar)
        let inputChannels = try object.integer(.inputChannels, atLeast: 1, default: dataset.imageChannels)
        if inputChannels != dataset.imageChannels {
            throw object.inconsistent(.inputChannels, expected: "\(dataset.imageChannels), the channels of \(dataset.rawValue) images")
        }
        let inputSize = try object.integer(.inputSize, atLeast: 1, default: isImageNet ? 224 : 32)
        let classes = try object.integer(.classes, atLeast: 2, default: dataset.fixedClasses ?? 1000)
        if let fixedClasses = dataset.fixedClasses, classes != fixedClasses {
            throw object.inconsistent(.classes, expected: "\(fixedClasses), the classes of \(dataset.rawValue)")
        }
        // Each scale after the first halves the resolution, so more scales than halvings of the
        // input leave nothing for the classifier to pool.
        let maximumScales = Int.bitWidth - inputSize.leadingZeroBitCount
        let grFactor = try object.integerArray(.grFactor, atLeast: 1, maximumCount: maximumScales, default: [1, 2, 4])
        let bnFactor = try object.integerArray(.bnFactor, atLeast: 1, maximumCount: maximumScales, default: [1, 2, 4])
        if bnFactor.count != grFactor.count {
            throw object.inconsistent(.bnFactor, expected: "\(grFactor.count) entries, one per scale like grFactor \(grFactor)")
        }
        self.init(
            stem: stem,
            inputChannels: inputChannels,
            inputSize: inputSize,
            classes: classes,
            nBlocks: try object.integer(.nBlocks, atLeast: 1),
            stepmode: try object.choice(.stepmode, among: [StepMode.even, .linearGrowth]),
            step: try object.integer(.step, atLeast: 1, default: 1),
            base: try object.integer(.base, atLeast: 1, default: 4),
            nChannels: try object.integer(.nChannels, atLeast: 1, default: 32),
            growthRate: try object.integer(.growthRate, atLeast: 1, default: 6),
            grFactor: grFactor,
            bnFactor: bnFactor,
            prune: try object.choice(.prune, among: [Prune.max, .min], default: .max),
            reduction: try object.number(.reduction, expected: "a number in (0, 1]", default: 0.5) { $0 > 0 && $0 <= 1 },
            bottleneck: try object.boolean(.bottleneck, default: true),
            initialization: try object.choice(.initialization, among: [WeightInitialization.reference, .heNormal],
                                              default: .reference))
    }
}

extension PhaseConfiguration: RunFileSection {
    enum Key: String, RunFileKey {
        case epochs, batchSize, lr, momentum, nesterov, weightDecay, schedule
    }

    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws {
        switch key {
        case .epochs: try container.encode(epochs, forKey: key)
        case .batchSize: try container.encode(batchSize, forKey: key)
        case .lr: try container.encode(lr, forKey: key)
        case .momentum: try container.encode(momentum, forKey: key)
        case .nesterov: try container.encode(nesterov, forKey: key)
        case .weightDecay: try container.encode(weightDecay, forKey: key)
        case .schedule: try container.encode(section: schedule, forKey: key)
        }
    }

    init(reading object: ConfigurationObject<Key>, nesterovDefault: Bool) throws {
        epochs = try object.integer(.epochs, atLeast: 0)
        batchSize = try object.integer(.batchSize, atLeast: 1)
        lr = try object.number(.lr, expected: "a positive number") { $0 > 0 }
        momentum = try object.number(.momentum, expected: "a number in [0, 1)", default: 0.9) { $0 >= 0 && $0 < 1 }
        nesterov = try object.boolean(.nesterov, default: nesterovDefault && momentum > 0)
        if nesterov && momentum == 0 {
            throw object.inconsistent(.nesterov, expected: "false when momentum is 0 (Nesterov needs momentum)")
        }
        weightDecay = try object.number(.weightDecay, expected: "a non-negative number", default: 1e-4) { $0 >= 0 }
        schedule = try LearningRateSchedule(reading: object.object(.schedule))
    }
}

extension LearningRateSchedule: RunFileSection {
    enum Key: String, RunFileKey {
        case kind, milestones, every, factor
    }

    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws {
        switch key {
        case .kind: try container.encode(kind, forKey: key)
        case .milestones: try container.encodeIfPresent(milestones, forKey: key)
        case .every: try container.encodeIfPresent(every, forKey: key)
        case .factor: try container.encodeIfPresent(factor, forKey: key)
        }
    }

    init(reading object: ConfigurationObject<Key>) throws {
        kind = try object.choice(.kind, among: [Kind.multistep, .step, .cosine], default: .multistep)
        milestones = try object.numberArrayIfPresent(.milestones, expected: "a fraction of the phase in (0, 1)") { $0 > 0 && $0 < 1 }
        every = try object.integerIfPresent(.every, atLeast: 1)
        factor = try object.numberIfPresent(.factor, expected: "a number in (0, 1]") { $0 > 0 && $0 <= 1 }
        // A key the chosen kind ignores is a mistake in the file, not something to drop silently.
        let usedBy: [Key: Kind] = [.milestones: .multistep, .every: .step]
        for (key, user) in usedBy where object.contains(key) && kind != user {
            throw object.inconsistent(key, expected: "no \(key.rawValue) for kind \"\(kind.rawValue)\" (only \"\(user.rawValue)\" uses it)")
        }
        if kind == .cosine && object.contains(.factor) {
            throw object.inconsistent(.factor, expected: "no factor for kind \"cosine\" (it decays to 0)")
        }
        if let milestones, zip(milestones, milestones.dropFirst()).contains(where: { $0 >= $1 }) {
            throw object.inconsistent(.milestones, expected: "strictly increasing fractions")
        }
    }
}

extension InlineSubnetworkCollaborationConfiguration: RunFileSection {
    enum Key: String, RunFileKey {
        case detach
    }

    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws {
        switch key {
        case .detach: try container.encode(detach, forKey: key)
        }
    }

    init(reading object: ConfigurationObject<Key>) throws {
        detach = try object.boolean(.detach, default: false)
    }
}

extension OneForAllDistillationConfiguration: RunFileSection {
    enum Key: String, RunFileKey {
        case temperature, gamma, reduction
    }

    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws {
        switch key {
        case .temperature: try container.encode(temperature, forKey: key)
        case .gamma: try container.encode(gamma, forKey: key)
        case .reduction: try container.encode(reduction, forKey: key)
        }
    }

    init(reading object: ConfigurationObject<Key>) throws {
        temperature = try object.number(.temperature, expected: "a positive number", default: 1) { $0 > 0 }
        gamma = try object.number(.gamma, expected: "a number in [0, 1]", default: 0.1) { $0 >= 0 && $0 <= 1 }
        reduction = try object.choice(.reduction, among: [Reduction.mean, .batchmean], default: .mean)
    }
}

extension CheckpointConfiguration: RunFileSection {
    enum Key: String, RunFileKey {
        case everySteps, keep
    }

    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws {
        switch key {
        case .everySteps: try container.encode(everySteps, forKey: key)
        case .keep: try container.encode(keep, forKey: key)
        }
    }

    init(reading object: ConfigurationObject<Key>) throws {
        everySteps = try object.integer(.everySteps, atLeast: 0, default: 0)
        keep = try object.integer(.keep, atLeast: 1, default: 3)
    }
}

extension DistributedConfiguration: RunFileSection {
    enum Key: String, RunFileKey {
        case stallTimeout
        case bucketBytes
    }

    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws {
        switch key {
        case .stallTimeout: try container.encode(stallTimeout, forKey: key)
        case .bucketBytes: try container.encode(bucketBytes, forKey: key)
        }
    }

    init(reading object: ConfigurationObject<Key>) throws {
        stallTimeout = try object.number(.stallTimeout, expected: "a number of seconds >= 0", default: 600) { $0 >= 0 }
        bucketBytes = try object.integer(.bucketBytes, atLeast: 0, default: 4 << 20)
    }
}

extension EvaluationConfiguration: RunFileSection {
    enum Key: String, RunFileKey {
        case enabled, budgets, batchSize
    }

    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws {
        switch key {
        case .enabled: try container.encode(enabled, forKey: key)
        case .budgets: try container.encode(budgets, forKey: key)
        case .batchSize: try container.encode(batchSize, forKey: key)
        }
    }

    init(reading object: ConfigurationObject<Key>) throws {
        enabled = try object.boolean(.enabled, default: true)
        budgets = try object.integer(.budgets, atLeast: 1, default: 40)
        batchSize = try object.integer(.batchSize, atLeast: 1, default: 128)
    }
}
