/// Which data set, where it lives and how much of it to use (the run file's `data` object, read
/// by DistTrain and handed to the data pipeline as a value).
public struct DataConfiguration: Equatable, Sendable {
    public enum Dataset: String, Codable, Sendable {
        case fashionMNIST = "fashion-mnist"
        case mnist
        case cifar10
        case cifar100
        /// HDF5 shards written by `disttrain prepare imagenet`.
        case imagenet
    }

    public var dataset: Dataset
    /// Directory holding the data set's files (relative paths are relative to the working
    /// directory). Required; must exist.
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

    public init(
        dataset: Dataset, root: String, validationHoldout: Int? = nil, limitTrain: Int? = nil,
        limitTest: Int? = nil, workers: Int? = nil
    ) {
        self.dataset = dataset
        self.root = root
        self.validationHoldout = validationHoldout
        self.limitTrain = limitTrain
        self.limitTest = limitTest
        self.workers = workers
    }
}

extension DataConfiguration.Dataset {
    public static let all: [Self] = [.fashionMNIST, .mnist, .cifar10, .cifar100, .imagenet]

    /// Images in the official training split, for the data sets whose size is fixed.
    public var trainingImages: Int? {
        switch self {
        case .fashionMNIST, .mnist: return 60_000
        case .cifar10, .cifar100: return 50_000
        case .imagenet: return nil
        }
    }

    /// Classes, for the data sets whose class count is fixed (ImageNet shards may hold a subset).
    public var fixedClasses: Int? {
        switch self {
        case .fashionMNIST, .mnist, .cifar10: return 10
        case .cifar100: return 100
        case .imagenet: return nil
        }
    }

    /// Channels of the images as stored.
    public var imageChannels: Int {
        switch self {
        case .fashionMNIST, .mnist: return 1
        case .cifar10, .cifar100, .imagenet: return 3
        }
    }
}
