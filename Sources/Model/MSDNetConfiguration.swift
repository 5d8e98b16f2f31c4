/// The architecture of a multi-scale dense network, with the reference's argument names
/// (MSDNet-PyTorch `args.py`) so that a reference run translates key for key.
public struct MSDNetConfiguration: Equatable, Sendable {
    /// How the first layers turn an image into the finest scale.
    public enum Stem: String, Codable, Sendable {
        /// 3x3 convolution (no bias) + BatchNorm + ReLU at full resolution.
        case cifar
        /// 7x7 stride-2 convolution with bias + BatchNorm + ReLU + 3x3 stride-2 max-pool.
        case imagenet
    }

    /// How many layers each block after the first has.
    public enum StepMode: String, Codable, Sendable {
        /// Every block has `step` layers.
        case even
        /// Block i has `step * i + 1` layers.
        case linearGrowth = "lin_grow"
    }

    /// Where scales are dropped as depth increases.
    public enum Prune: String, Codable, Sendable {
        case max
        case min
    }

    /// How the weights are drawn before training (see `Initialization.msdnet`).
    public enum WeightInitialization: String, Codable, Sendable {
        /// PyTorch's layer defaults, which is what the reference code trains from: its
        /// `_init_weights` is applied only to composite modules, never to a convolution,
        /// BatchNorm or linear layer, so it initialises nothing.
        case reference
        /// What the reference's `_init_weights` intends: convolutions He-normal (fan-out),
        /// linear biases 0.
        case heNormal = "he-normal"
    }

    public var stem: Stem
    public var inputChannels: Int
    /// Height and width of the (square) network input.
    public var inputSize: Int
    public var classes: Int
    public var nBlocks: Int
    public var stepmode: StepMode
    public var step: Int
    public var base: Int
    public var nChannels: Int
    public var growthRate: Int
    public var grFactor: [Int]
    public var bnFactor: [Int]
    public var prune: Prune
    public var reduction: Double
    public var bottleneck: Bool
    /// Only the initial weights depend on it, so a checkpoint resumes under either value.
    public var initialization: WeightInitialization

    public init(
        stem: Stem, inputChannels: Int, inputSize: Int, classes: Int, nBlocks: Int,
        stepmode: StepMode, step: Int, base: Int, nChannels: Int, growthRate: Int,
        grFactor: [Int], bnFactor: [Int], prune: Prune, reduction: Double, bottleneck: Bool,
        initialization: WeightInitialization = .reference
    ) {
        self.stem = stem
        self.inputChannels = inputChannels
        self.inputSize = inputSize
        self.classes = classes
        self.nBlocks = nBlocks
        self.stepmode = stepmode
        self.step = step
        self.base = base
        self.nChannels = nChannels
        self.growthRate = growthRate
        self.grFactor = grFactor
        self.bnFactor = bnFactor
        self.prune = prune
        self.reduction = reduction
        self.bottleneck = bottleneck
        self.initialization = initialization
    }

    /// Number of scales, `len(grFactor)` as in the reference.
    public var scales: Int { grFactor.count }

    /// Layers per block: `base` for block 0, then `step` (even) or `step * i + 1` (lin_grow).
    public var layersPerBlock: [Int] {
        (0..<nBlocks).map { block in
            if block == 0 { return base }
            return stepmode == .even ? step : step * block + 1
        }
    }
}
