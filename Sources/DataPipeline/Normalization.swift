/// Per-channel normalisation x' = (x / 255 − mean_c) / std_c, as torchvision's
/// `ToTensor()` followed by `Normalize(mean, std)`.
public struct Normalization: Sendable, Equatable {
    public let mean: [Float]
    public let standardDeviation: [Float]

    public init(mean: [Float], standardDeviation: [Float]) {
        precondition(mean.count == standardDeviation.count)
        self.mean = mean
        self.standardDeviation = standardDeviation
    }

    /// The constants the reference uses (Fashion-MNIST and MNIST: their usual training-set statistics).
    public static func of(_ dataset: DataConfiguration.Dataset) -> Normalization {
        switch dataset {
        case .fashionMNIST: return Normalization(mean: [0.2860], standardDeviation: [0.3530])
        case .mnist: return Normalization(mean: [0.1307], standardDeviation: [0.3081])
        case .cifar10: return Normalization(mean: [0.4914, 0.4824, 0.4467], standardDeviation: [0.2471, 0.2435, 0.2616])
        case .cifar100: return Normalization(mean: [0.5071, 0.4867, 0.4408], standardDeviation: [0.2675, 0.2565, 0.2761])
        case .imagenet: return Normalization(mean: [0.485, 0.456, 0.406], standardDeviation: [0.229, 0.224, 0.225])
        }
    }

    /// Scale and offset per channel so that x' = pixel · scale_c + offset_c for 8-bit pixels.
    func affine(channel: Int) -> (scale: Float, offset: Float) {
        let scale = 1 / (255 * standardDeviation[channel])
        return (scale, -mean[channel] / standardDeviation[channel])
    }
}
