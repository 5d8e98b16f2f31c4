/// Which held-out part an evaluation pass reads.
public enum EvaluationSplit: Sendable {
    /// The validation hold-out, drawn from the training source, without augmentation.
    case validation
    /// The data set's test split (ImageNet: its `val` folder).
    case test
}

/// A data set opened for one run: the training source minus the validation hold-out, the
/// test split, the reference's augmentation, and per-rank batch streams.
///
/// Small data sets (Fashion-MNIST, MNIST, CIFAR-10/100) are read whole into memory at `init`;
/// ImageNet is read from HDF5 shards (`disttrain prepare imagenet`) sample by sample.
public final class TrainingData {
    public let dataset: DataConfiguration.Dataset
    public let classCount: Int
    /// Network input `[C, n, S, S]`: C.
    public let channels: Int
    /// Network input `[C, n, S, S]`: S.
    public let imageSize: Int
    /// Training source indices used for training: everything but the hold-out, ascending.
    public let trainingIndices: [Int]
    /// The hold-out: training source indices, ascending.
    public let validationIndices: [Int]
    /// Class names where the data set has them (ImageNet WordNet ids), else nil.
    public let classNames: [String]?
    private let trainingSource: SampleRenderer
    private let testSource: SampleRenderer
    private let sampler: Sampler
    private let seed: UInt64
    private let workers: Int

    /// The hold-out size when `data.validationHoldout` is absent: 50,000 ImageNet, 5,000 otherwise.
    public static func defaultValidationHoldout(_ dataset: DataConfiguration.Dataset) -> Int {
        dataset == .imagenet ? 50_000 : 5_000
    }

    /// Opens the data set of `configuration` and draws the validation hold-out with `seed`,
    /// unless `validationIndices` is given (restored from a checkpoint). `inputSize` is the
    /// network's S (32 for the small data sets, 224 for ImageNet); `workers` decoding threads
    /// serve each batch stream.
    public init(configuration: DataConfiguration, inputSize: Int, seed: UInt64,
                validationIndices: [Int]? = nil, workers: Int) throws {
        guard DataFile.isDirectory(configuration.root) else { throw DataError.rootNotFound(path: configuration.root) }
        let normalization = Normalization.of(configuration.dataset)
        let training: SampleRenderer
        let test: SampleRenderer
        var classNames: [String]? = nil
        switch configuration.dataset {
        case .fashionMNIST, .mnist, .cifar10, .cifar100:
            let load: (Bool) throws -> PixelImages
            switch configuration.dataset {
            case .cifar10: load = { try CIFARFile.loadSplit(root: configuration.root, classCount: 10, training: $0) }
            case .cifar100: load = { try CIFARFile.loadSplit(root: configuration.root, classCount: 100, training: $0) }
            default: load = { try IDXFile.loadSplit(root: configuration.root, training: $0, classCount: 10) }
            }
            training = PixelRenderer(images: try load(true).prefix(configuration.limitTrain),
                                     outputSize: inputSize, normalization: normalization)
            test = PixelRenderer(images: try load(false).prefix(configuration.limitTest),
                                 outputSize: inputSize, normalization: normalization)
            classCount = configuration.dataset == .cifar100 ? 100 : 10
        case .imagenet:
            let trainShards = try ShardImages(directory: configuration.root + "/train", limit: configuration.limitTrain)
            let testShards = try ShardImages(directory: configuration.root + "/val", limit: configuration.limitTest)
            guard testShards.classes == trainShards.classes else {
                throw DataError.shardClassesDiffer(path: testShards.shardPaths[0], firstShard: trainShards.shardPaths[0])
            }
            training = JPEGRenderer(shards: trainShards, outputSize: inputSize, normalization: normalization)
            test = JPEGRenderer(shards: testShards, outputSize: inputSize, normalization: normalization)
            classCount = trainShards.classes.count
            classNames = trainShards.classes
        }
        let split: (training: [Int], validation: [Int])
        if let validationIndices {
            split = (try Sampler.complement(of: validationIndices, trainingCount: training.count), validationIndices.sorted())
        } else {
            let holdout = configuration.validationHoldout ?? Self.defaultValidationHoldout(configuration.dataset)
            split = try Sampler.holdout(trainingCount: training.count, holdout: holdout, seed: seed)
        }
        self.dataset = configuration.dataset
        self.channels = training.channels
        self.imageSize = inputSize
        self.trainingIndices = split.training
        self.validationIndices = split.validation
        self.classNames = classNames
        self.trainingSource = training
        self.testSource = test
        self.sampler = Sampler(trainingIndices: split.training, seed: seed)
        self.seed = seed
        self.workers = max(1, workers)
    }

    /// Samples in the test split.
    public var testCount: Int { testSource.count }

    /// Training steps per epoch; the last incomplete global batch is dropped.
    public func trainingStepsPerEpoch(globalBatchSize: Int) -> Int {
        sampler.stepsPerEpoch(globalBatchSize: globalBatchSize)
    }

    /// This rank's augmented batches of `epoch`, from step `firstStep` on (resuming mid-epoch).
    public func trainingBatches(epoch: Int, globalBatchSize: Int, rank: Int, worldSize: Int, firstStep: Int) -> BatchStream {
        precondition(globalBatchSize >= worldSize && rank >= 0 && rank < worldSize)
        let batches = sampler.rankBatches(epoch: epoch, globalBatchSize: globalBatchSize, rank: rank,
                                          worldSize: worldSize, firstStep: firstStep)
        return BatchStream(batches: batches, renderer: trainingSource, augmentation: (seed, epoch), workers: workers)
    }

    /// Unaugmented batches of this rank's contiguous part of `split`, in index order.
    public func evaluationBatches(split: EvaluationSplit, batchSize: Int, rank: Int, worldSize: Int) -> BatchStream {
        precondition(batchSize > 0 && rank >= 0 && rank < worldSize)
        let samples = split == .validation ? validationIndices : Array(0..<testSource.count)
        let batches = Sampler.evaluationBatches(samples: samples, batchSize: batchSize, rank: rank, worldSize: worldSize)
        return BatchStream(batches: batches, renderer: split == .validation ? trainingSource : testSource,
                           augmentation: nil, workers: workers)
    }

    /// Labels of `split` in the order `evaluationBatches` visits them across all ranks.
    public func labels(of split: EvaluationSplit) -> [Int32] {
        split == .validation ? validationIndices.map { trainingSource.label(of: $0) }
                             : (0..<testSource.count).map { testSource.label(of: $0) }
    }
}
