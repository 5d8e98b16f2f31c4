/// The multi-scale dense network (Huang et al., "Multi-Scale Dense Networks for Resource Efficient
/// Image Classification", ICLR 2018) as the reference builds it, executed from a plan made once:
///
/// - every activation is allocated when the network is built (for `maximumBatchSize` images, or a
///   shard's share of them) and reused;
/// - dense concatenation is free: each scale has a growth buffer `[C_final, N, H, W]` and every
///   layer writes its new channels after the old ones (its gradient buffer likewise), so reading
///   "all features so far" is reading a channel prefix;
/// - the forward pass is a fixed list of steps (a static tape) that the backward pass replays in
///   reverse; every backward accumulates, gradients of multi-consumer buffers are zeroed once per step;
/// - 1x1 bottlenecks that read the same channels run as one SGEMM (`PlannedPointwiseGroup`); their
///   weights are adjacent in the parameter arena, whose order therefore differs slightly from
///   PyTorch's `named_parameters()` (tensors are identified by key, never by position).
///
/// With several compute threads the batch is split into image shards (`ImageShards`): one plan
/// per shard, each run by its own thread, meeting at BatchNorm's statistics and summing the
/// parameter gradients at the end of the backward pass. Only shard 0 updates the running
/// statistics; the logits and pooled features are gathered into whole-batch buffers.
///
/// Gradient Equilibrium (IMTA Sec. 3.1) rescales the gradient of the coarsest scale at each exit;
/// see `GradientEquilibrium`.
public final class MSDNet: TrainableNetwork {
    public let architecture: MSDNetArchitecture
    public let parameters: ParameterArena
    public let buffers: BufferArena
    public let maximumBatchSize: Int
    /// Rescale the coarsest scale's gradient between exits (IMTA GE). Takes effect at the next backward.
    public var gradientEquilibrium: Bool
    public var batchNormReducer: CrossReplicaReducer?
    /// Told during `backward` as the tail of `parameters.gradients` becomes final (overlapped all-reduce).
    public var gradientReadyObserver: GradientReadyObserver?

    public var exitCount: Int { architecture.exitCount }
    public var classCount: Int { architecture.configuration.classes }
    public var trainableParameters: ParameterArena { parameters }
    public var stateTensors: [NamedTensor] { parameters.namedTensors() + buffers.namedTensors() }
    public var runningStatistics: [BufferArena] { [buffers] }

    /// One plan per image shard; shard 0 accumulates into `parameters.gradients`.
    let shards: [ExecutionPlan]
    /// Where the shards meet (nil with one shard).
    private let rendezvous: ShardRendezvous?
    /// The parameter gradients of shards 1..., added to the arena's and zeroed by every backward.
    private let shardGradients: [UnsafeMutablePointer<Float>]
    /// The whole batch's logits (and their gradients) and pooled features: shard 0's own with one
    /// shard, else gathered from the shards after each forward.
    private let batchLogits: [PlannedMatrix]
    private let batchPooled: [PlannedTensor]
    /// What the network allocated beside its plans: `shardGradients` and the gathered outputs.
    private var allocations: [UnsafeMutablePointer<Float>] = []
    /// Times every operator of shard 0 while set (`disttrain bench`); nil in training.
    public var profile: OperatorProfile? {
        get { shards[0].profile }
        set { shards[0].profile = newValue }
    }
    /// The number of image shards a batch is split into (1: each operator is split across the threads).
    public var imageShardCount: Int { shards.count }
    private var forwardShards = 1
    private var forwardCount = 0
    private var forwardWasTraining = false
    private var exitLosses: [Double] = []
    private var exitCorrect: [Int] = []

    /// The instruction set of the convolution kernels this network runs.
    public var kernelPath: KernelPath { shards[0].kernels.path }

    /// Builds the reference architecture for `configuration`, initialised from `seed` as
    /// `configuration.initialization` says, computing with `kernels`. The batch is split into
    /// `imageShards` shards, by default as `ImageShards.count` says for the compute threads set now.
    public init(configuration: MSDNetConfiguration, gradientEquilibrium: Bool, maximumBatchSize: Int, seed: UInt64 = 0,
                kernels: ComputeKernels = .selected, imageShards: Int? = nil) throws {
        precondition(maximumBatchSize >= 1, "maximumBatchSize must be at least 1")
        let architecture = try MSDNetArchitecture(configuration)
        self.architecture = architecture
        self.parameters = ParameterArena(tensors: PointwiseGroups(architecture).arenaOrder(architecture.parameterTensorsInForwardOrder))
        self.buffers = BufferArena(batchNormLayers: architecture.batchNormLayers)
        self.maximumBatchSize = maximumBatchSize
        self.gradientEquilibrium = gradientEquilibrium
        Initialization.msdnet(architecture, parameters: parameters, seed: seed)
        let shardCount = max(1, min(imageShards ?? ImageShards.count(threads: ComputeThreads.count, maximumBatchSize: maximumBatchSize),
                                    maximumBatchSize))
        let capacity = ImageShards.capacity(maximumBatchSize: maximumBatchSize, shards: shardCount)
        var allocations: [UnsafeMutablePointer<Float>] = []
        func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
            allocations.append(pointer)
            return pointer
        }
        var shardGradients: [UnsafeMutablePointer<Float>] = []
        var shards: [ExecutionPlan] = []
        for shard in 0..<shardCount {
            var gradientBase = parameters.gradients
            if shard > 0 {
                gradientBase = allocate(parameters.count)
                shardGradients.append(gradientBase)
            }
            shards.append(ExecutionPlan(architecture: architecture, parameters: parameters, buffers: buffers, batchCapacity: capacity,
                                        gradientBase: gradientBase, copiesImages: shardCount > 1,
                                        updatesRunningStatistics: shard == 0, kernels: kernels))
        }
        self.shards = shards
        self.shardGradients = shardGradients
        if shardCount == 1 {
            rendezvous = nil
            batchLogits = shards[0].logits
            batchPooled = shards[0].pooled
        } else {
            rendezvous = ShardRendezvous(maximumShards: shardCount, capacity: shards[0].batchNormSumCount)
            batchLogits = shards[0].logits.map {
                PlannedMatrix(features: $0.features, values: allocate($0.features * maximumBatchSize),
                              gradients: allocate($0.features * maximumBatchSize))
            }
            batchPooled = shards[0].pooled.map {
                PlannedTensor(channels: $0.channels, size: 1, values: allocate($0.channels * maximumBatchSize),
                              gradients: allocate($0.channels * maximumBatchSize))
            }
        }
        self.allocations = allocations
    }

    deinit {
        for pointer in allocations { pointer.deallocate() }
    }

    /// Bytes of activation, gradient and scratch memory planned for `maximumBatchSize`: every
    /// shard's plan and the gathered outputs (not the further shards' parameter gradients, which
    /// `ResourceEstimate` counts with the parameters).
    public var activationBytes: Int {
        let gathered = shards.count == 1 ? 0 : (batchLogits.map(\.features).reduce(0, +) + batchPooled.map(\.channels).reduce(0, +))
            * 2 * maximumBatchSize
        return (shards.map(\.allocatedFloats).reduce(0, +) + gathered) * MemoryLayout<Float>.size
    }

    // MARK: - Pieces the phases and the reference check compose

    /// Runs the network on `images` `[C, n, H, W]`. Training mode uses batch statistics and
    /// updates the running statistics; evaluation mode uses the running statistics.
    public func forward(images: UnsafePointer<Float>, count n: Int, training: Bool) {
        precondition(n >= 1 && n <= maximumBatchSize, "batch of \(n) outside 1...\(maximumBatchSize)")
        forwardCount = n
        forwardWasTraining = training
        guard let rendezvous else {
            shards[0].forward(images: images, count: n, training: training, summation: BatchNormSummation(reducer: batchNormReducer))
            return
        }
        let active = min(shards.count, n)
        forwardShards = active
        rendezvous.begin(participants: active)
        let reducer = batchNormReducer
        ComputeThreads.runParts(active) { shard in
            let range = ImageShards.range(of: shard, count: n, shards: active)
            let plan = shards[shard]
            let images = copyImages(images, count: n, range: range, into: plan)
            plan.forward(images: images, count: range.count, training: training,
                         summation: BatchNormSummation(reducer: reducer, rendezvous: active > 1 ? rendezvous : nil, shard: shard))
            for exit in 0..<exitCount { gather(exit: exit, of: plan, range: range, count: n) }
        }
    }

    /// Shard `plan`'s images, rows `range` of `images` `[C, n, H, W]`, copied to its own buffer.
    private func copyImages(_ images: UnsafePointer<Float>, count n: Int, range: Range<Int>,
                            into plan: ExecutionPlan) -> UnsafePointer<Float> {
        guard let destination = plan.shardImages else { preconditionFailure("a shard without an image buffer") }
        let configuration = architecture.configuration
        let plane = configuration.inputSize * configuration.inputSize
        for channel in 0..<configuration.inputChannels {
            (destination + channel * range.count * plane).update(from: images + (channel * n + range.lowerBound) * plane,
                                                                 count: range.count * plane)
        }
        return UnsafePointer(destination)
    }

    /// Copies exit `exit`'s logits and pooled features of shard `plan` (images `range`) into the batch's.
    private func gather(exit: Int, of plan: ExecutionPlan, range: Range<Int>, count n: Int) {
        let classes = batchLogits[exit].features
        (batchLogits[exit].values + range.lowerBound * classes).update(from: plan.logits[exit].values, count: range.count * classes)
        let pooled = batchPooled[exit]
        for feature in 0..<pooled.channels {
            (pooled.values + feature * n + range.lowerBound).update(from: plan.pooled[exit].values + feature * range.count,
                                                                     count: range.count)
        }
    }

    /// Exit `exit`'s logits `[n, classes]` of the last forward.
    public func logits(exit: Int) -> UnsafeMutablePointer<Float> { batchLogits[exit].values }

    /// Where the loss writes dL/dlogits of exit `exit` `[n, classes]` before `backward`.
    public func logitsGradient(exit: Int) -> UnsafeMutablePointer<Float> { batchLogits[exit].gradients }

    /// The pooled classifier feature of exit `exit` (the reference `ClassifierModule`'s second
    /// output), feature-major `[featureWidth, n]`.
    public func pooledFeatures(exit: Int) -> UnsafeMutablePointer<Float> { batchPooled[exit].values }

    /// Backpropagates the logits gradients of the last training forward on the same `images`,
    /// ACCUMULATING into `parameters.gradients`. The logits gradients are consumed.
    ///
    /// With image shards the gradient observer hears once, at the end: the arena's gradients are
    /// final only once every shard's have been added to them.
    public func backward(images: UnsafePointer<Float>) {
        precondition(forwardWasTraining, "backward needs a training-mode forward first")
        guard let rendezvous else {
            shards[0].backward(images: images, count: forwardCount, gradientEquilibrium: gradientEquilibrium,
                               summation: BatchNormSummation(reducer: batchNormReducer), gradientReadyObserver: gradientReadyObserver)
            return
        }
        let n = forwardCount, active = forwardShards
        rendezvous.begin(participants: active)
        let reducer = batchNormReducer
        ComputeThreads.runParts(active) { shard in
            let range = ImageShards.range(of: shard, count: n, shards: active)
            let plan = shards[shard]
            for exit in 0..<exitCount {
                let classes = batchLogits[exit].features
                plan.logits[exit].gradients.update(from: batchLogits[exit].gradients + range.lowerBound * classes,
                                                   count: range.count * classes)
            }
            guard let images = plan.shardImages else { preconditionFailure("a shard without an image buffer") }
            plan.backward(images: images, count: range.count, gradientEquilibrium: gradientEquilibrium,
                          summation: BatchNormSummation(reducer: reducer, rendezvous: active > 1 ? rendezvous : nil, shard: shard),
                          gradientReadyObserver: nil)
            guard active > 1 else { return }
            // Every shard's gradients are complete: each thread adds up its own slice of the arena.
            rendezvous.wait(shard: shard)
            let slice = ImageShards.range(of: shard, count: parameters.count, shards: active)
            let total = parameters.gradients + slice.lowerBound
            for other in shardGradients.prefix(active - 1) {
                let part = other + slice.lowerBound
                for index in 0..<slice.count { total[index] += part[index] }
                part.update(repeating: 0, count: slice.count)
            }
        }
        gradientReadyObserver?.gradientsAreFinal(from: 0)
    }

    /// Runs the steps `steps` (those of exit `exit`'s block) of shard 0 in evaluation mode on
    /// `images` `[C, n, H, W]`, `n` at most `firstShardCapacity`, and makes exit `exit`'s logits
    /// and pooled features those of `logits(exit:)` and `pooledFeatures(exit:)` (early exit).
    func forwardBlockOnFirstShard(images: UnsafePointer<Float>, count n: Int, steps: Range<Int>, exit: Int) {
        shards[0].forward(images: images, count: n, training: false, summation: BatchNormSummation(), steps: steps)
        if rendezvous != nil { gather(exit: exit, of: shards[0], range: 0..<n, count: n) }
    }

    /// The images shard 0 holds at most.
    var firstShardCapacity: Int { shards[0].batchCapacity }

    /// Rows `range` of `images` `[C, n, H, W]` as a batch of their own, in shard 0's image buffer.
    func firstShardImages(_ images: UnsafePointer<Float>, count n: Int, range: Range<Int>) -> UnsafePointer<Float> {
        copyImages(images, count: n, range: range, into: shards[0])
    }

    // MARK: - TrainableNetwork (phase I)

    /// Phase-I step: loss = sum over exits of the mean cross-entropy (the reference `main_GE.py`).
    public func trainingStep(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, count n: Int) -> TrainingStepResult {
        forward(images: images, count: n, training: true)
        // The last step's arrays, refilled: no allocation once the caller has let go of that result.
        exitLosses.removeAll(keepingCapacity: true)
        exitCorrect.removeAll(keepingCapacity: true)
        let classes = classCount
        for exit in 0..<exitCount {
            let logits = logits(exit: exit)
            exitLosses.append(CrossEntropy.forward(logits: logits, labels: labels, batch: n, classes: classes))
            exitCorrect.append(Self.correctCount(logits: logits, labels: labels, count: n, classes: classes))
            let gradient = logitsGradient(exit: exit)
            gradient.update(repeating: 0, count: n * classes)
            CrossEntropy.backward(logits: logits, labels: labels, logitsGradient: gradient, batch: n, classes: classes)
        }
        parameters.zeroGradients()
        backward(images: images)
        return TrainingStepResult(loss: exitLosses.reduce(0, +), exitLosses: exitLosses, exitCorrect: exitCorrect)
    }

    public func predict(images: UnsafePointer<Float>, count n: Int, logits: [UnsafeMutablePointer<Float>]) {
        forward(images: images, count: n, training: false)
        for exit in 0..<exitCount {
            logits[exit].update(from: self.logits(exit: exit), count: n * classCount)
        }
    }
}

// MARK: - The plan

/// A channel-major activation `[channels, N, size, size]` with room for the largest batch, and
/// its gradient. With a smaller batch `n` the same memory holds `[channels, n, size, size]`.
struct PlannedTensor {
    let channels: Int
    let size: Int
    let values: UnsafeMutablePointer<Float>
    let gradients: UnsafeMutablePointer<Float>

    var plane: Int { size * size }
    func values(channelOffset: Int, count n: Int) -> UnsafeMutablePointer<Float> { values + channelOffset * n * plane }
    func gradients(channelOffset: Int, count n: Int) -> UnsafeMutablePointer<Float> { gradients + channelOffset * n * plane }
}

/// Channels from `channelOffset` of tensor `tensor` (an index into `ExecutionPlan.tensors`).
struct TensorLocation {
    let tensor: Int
    let channelOffset: Int
}

/// One Conv2d + BatchNorm2d + ReLU with its parameters, statistics and saved pre-activation.
struct PlannedUnit {
    let geometry: ConvolutionGeometry
    let weight: UnsafeMutablePointer<Float>
    let weightGradient: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>?
    let biasGradient: UnsafeMutablePointer<Float>?
    let batchNormWeight: UnsafeMutablePointer<Float>
    let batchNormWeightGradient: UnsafeMutablePointer<Float>
    let batchNormBias: UnsafeMutablePointer<Float>
    let batchNormBiasGradient: UnsafeMutablePointer<Float>
    let runningMean: UnsafeMutablePointer<Float>
    let runningVariance: UnsafeMutablePointer<Float>
    let batchesTracked: UnsafeMutablePointer<Int64>
    /// Convolution output (BatchNorm input), kept for the backward pass: channels from
    /// `preActivationChannelOffset` of a `[C, N, H, W]` buffer (shared by a pointwise group).
    let preActivationBase: UnsafeMutablePointer<Float>
    let preActivationChannelOffset: Int
    /// The pointwise group whose single SGEMM computes this unit's convolution (nil: its own).
    let group: Int?
    /// Operator kinds in benchmark breakdowns, e.g. "convolution 3x3/1 forward": made once here,
    /// so that a step that nobody profiles builds no string.
    let forwardLabel: String
    let backwardLabel: String
    let savedMean: UnsafeMutablePointer<Float>
    let savedInverseStandardDeviation: UnsafeMutablePointer<Float>
    /// nil: the network input.
    let input: TensorLocation?
    /// The input is a single-consumer intermediate whose gradient this unit's backward initialises.
    let inputIsIntermediate: Bool
    let output: TensorLocation

    func geometry(batch n: Int) -> ConvolutionGeometry {
        var geometry = self.geometry
        geometry.batch = n
        return geometry
    }

    func preActivation(count n: Int) -> UnsafeMutablePointer<Float> {
        preActivationBase + preActivationChannelOffset * n * geometry.outputHeight * geometry.outputWidth
    }
}

/// 1x1 convolutions that read the same channels (in a dense layer, the bottleneck of scale s's
/// `conv_normal` and of scale s+1's `conv_down`) run as ONE SGEMM: their weights are adjacent in
/// the arena, so they form one `[sum Cout, Cin]` matrix, and their outputs stack in one buffer.
/// The input is then read once instead of once per convolution, forward and backward.
struct PlannedPointwiseGroup {
    let geometry: ConvolutionGeometry
    let weight: UnsafeMutablePointer<Float>
    let weightGradient: UnsafeMutablePointer<Float>
    let preActivation: UnsafeMutablePointer<Float>
    let preActivationGradient: UnsafeMutablePointer<Float>
    let input: TensorLocation

    func geometry(batch n: Int) -> ConvolutionGeometry {
        var geometry = self.geometry
        geometry.batch = n
        return geometry
    }
}

/// Which convolution paths form pointwise groups (see `PlannedPointwiseGroup`).
struct PointwiseGroups {
    /// Members per group as (block, path) indices, in path order.
    let members: [[(block: Int, path: Int)]]
    /// The members' 1x1 weight keys, per group.
    let weightNames: [[String]]

    init(_ architecture: MSDNetArchitecture) {
        var members: [[(block: Int, path: Int)]] = []
        for (blockIndex, block) in architecture.blocks.enumerated() {
            var bySource: [Int: [Int]] = [:]
            var order: [Int] = []
            for (pathIndex, path) in block.paths.enumerated() {
                guard case let .segment(index, channels) = path.source, let first = path.units.first,
                      first.kernelSize == 1, first.stride == 1, first.padding == 0, !first.hasBias else { continue }
                let key = index * 1_000_003 + channels
                if bySource[key] == nil { order.append(key) }
                bySource[key, default: []].append(pathIndex)
            }
            for key in order where bySource[key]!.count > 1 {
                members.append(bySource[key]!.map { (blockIndex, $0) })
            }
        }
        self.members = members
        weightNames = members.map { group in
            group.map { architecture.blocks[$0.block].paths[$0.path].units[0].convolutionName + ".weight" }
        }
    }

    /// The stacked 1x1 convolution of each group for `batch` images.
    func geometries(_ architecture: MSDNetArchitecture, batch: Int) -> [ConvolutionGeometry] {
        members.map { group in
            let units = group.map { architecture.blocks[$0.block].paths[$0.path].units[0] }
            return ConvolutionGeometry(inputChannels: units[0].inputChannels, outputChannels: units.map(\.outputChannels).reduce(0, +),
                                       kernelSize: 1, stride: 1, padding: 0, batch: batch, inputHeight: units[0].inputSize,
                                       inputWidth: units[0].inputSize)
        }
    }

    /// The parameter list with every group's weights moved next to each other, at the place of
    /// the group's first weight (names, not positions, identify tensors in checkpoints).
    func arenaOrder(_ tensors: [(name: String, shape: [Int])]) -> [(name: String, shape: [Int])] {
        var groupOfWeight: [String: Int] = [:]
        for (group, names) in weightNames.enumerated() {
            for name in names { groupOfWeight[name] = group }
        }
        let shapeByName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.shape) })
        var emitted = Set<Int>()
        var ordered: [(name: String, shape: [Int])] = []
        for tensor in tensors {
            guard let group = groupOfWeight[tensor.name] else {
                ordered.append(tensor)
                continue
            }
            if emitted.insert(group).inserted {
                ordered += weightNames[group].map { ($0, shapeByName[$0]!) }
            }
        }
        return ordered
    }
}

enum PlannedStep {
    case unit(Int)
    /// The shared SGEMM of a pointwise group (its members' BatchNorms are their own `unit` steps).
    case pointwiseGroup(Int)
    /// The ImageNet stem's 3x3 stride-2 max-pool from an intermediate into a segment.
    case maxPool(input: Int, output: TensorLocation, indices: UnsafeMutablePointer<Int32>)
    /// Exit `exit`'s average pool and linear layer.
    case classifierOutput(exit: Int, input: Int)
    /// `R(x[-1]; factor)` on the first `channels` channels of a segment.
    case gradientRescale(segment: Int, channels: Int, factor: Float)
}

/// The linear layer of one exit.
struct PlannedLinear {
    let weight: UnsafeMutablePointer<Float>
    let weightGradient: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>
    let biasGradient: UnsafeMutablePointer<Float>
    let inputFeatures: Int
    let outputFeatures: Int
}

/// A row-major `[N, features]` matrix and its gradient.
struct PlannedMatrix {
    let features: Int
    let values: UnsafeMutablePointer<Float>
    let gradients: UnsafeMutablePointer<Float>
}

/// The static tape of one image shard (`ImageShards`): activations for `batchCapacity` images,
/// parameter gradients accumulated at `gradientBase` (the arena's own for shard 0).
final class ExecutionPlan {
    /// Segments first (indices equal `MSDNetArchitecture.segments`), then intermediates.
    private(set) var tensors: [PlannedTensor] = []
    private(set) var units: [PlannedUnit] = []
    private(set) var groups: [PlannedPointwiseGroup] = []
    private(set) var steps: [PlannedStep] = []
    private(set) var linears: [PlannedLinear] = []
    /// Pooled classifier features `[featureWidth, N, 1, 1]` per exit.
    private(set) var pooled: [PlannedTensor] = []
    private(set) var logits: [PlannedMatrix] = []
    private let segmentCount: Int
    private let workspace: UnsafeMutablePointer<Float>
    /// dL/d(pre-activation) of the unit being backpropagated.
    private let preActivationGradient: UnsafeMutablePointer<Float>
    /// The per-channel sums of one BatchNorm (`batchNormSumCount` Doubles).
    private let batchNormScratch: UnsafeMutablePointer<Double>
    /// Doubles the widest BatchNorm sums at once (`2 * channels + 1`): its scratch, and what the
    /// image shards merge at a rendezvous.
    let batchNormSumCount: Int
    private var floatAllocations: [UnsafeMutablePointer<Float>] = []
    /// Floats allocated for activations, gradients and scratch.
    private(set) var allocatedFloats = 0
    var profile: OperatorProfile?
    /// After backward step k, gradients from `finalGradientBoundaries[k]` to the arena's end are final.
    private(set) var finalGradientBoundaries: [Int] = []
    let kernels: ComputeKernels
    private var indexAllocations: [UnsafeMutablePointer<Int32>] = []
    /// The images this plan has room for.
    let batchCapacity: Int
    /// This shard's images `[C, n, H, W]`, copied from the batch (nil: the plan reads the batch itself).
    let shardImages: UnsafeMutablePointer<Float>?
    /// Only shard 0 updates the running statistics and their counters (every shard computes the
    /// same whole-batch statistics).
    let updatesRunningStatistics: Bool

    init(architecture: MSDNetArchitecture, parameters: ParameterArena, buffers: BufferArena, batchCapacity: Int,
         gradientBase: UnsafeMutablePointer<Float>, copiesImages: Bool, updatesRunningStatistics: Bool, kernels: ComputeKernels) {
        self.kernels = kernels
        self.batchCapacity = batchCapacity
        self.updatesRunningStatistics = updatesRunningStatistics
        let batch = batchCapacity
        func gradients(of name: String) -> UnsafeMutablePointer<Float> {
            guard let view = parameters.view(named: name) else { preconditionFailure("no parameter \(name)") }
            return gradientBase + view.offset
        }
        var largestWorkspace = 0
        var largestPreActivation = 0
        var widestBatchNorm = 0
        for unit in architecture.unitsInRegistrationOrder {
            widestBatchNorm = max(widestBatchNorm, unit.outputChannels)
            let geometry = ConvolutionGeometry(inputChannels: unit.inputChannels, outputChannels: unit.outputChannels,
                                               kernelSize: unit.kernelSize, stride: unit.stride, padding: unit.padding,
                                               batch: batch, inputHeight: unit.inputSize, inputWidth: unit.inputSize)
            largestWorkspace = max(largestWorkspace, geometry.workspaceCount)
            largestPreActivation = max(largestPreActivation, geometry.outputCount)
        }
        let pointwiseGroups = PointwiseGroups(architecture)
        for geometry in pointwiseGroups.geometries(architecture, batch: batch) {
            largestWorkspace = max(largestWorkspace, geometry.workspaceCount)
        }
        workspace = UnsafeMutablePointer<Float>.allocate(capacity: max(largestWorkspace, 1))
        workspace.initialize(repeating: 0, count: max(largestWorkspace, 1))
        preActivationGradient = UnsafeMutablePointer<Float>.allocate(capacity: max(largestPreActivation, 1))
        preActivationGradient.initialize(repeating: 0, count: max(largestPreActivation, 1))
        batchNormSumCount = 2 * widestBatchNorm + 1
        batchNormScratch = UnsafeMutablePointer<Double>.allocate(capacity: batchNormSumCount)
        segmentCount = architecture.segments.count
        allocatedFloats = largestWorkspace + largestPreActivation
        let input = architecture.configuration
        let imageCount = copiesImages ? input.inputChannels * batch * input.inputSize * input.inputSize : 0
        shardImages = copiesImages ? .allocate(capacity: imageCount) : nil
        allocatedFloats += imageCount
        func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
            floatAllocations.append(pointer)
            allocatedFloats += count
            return pointer
        }
        func addTensor(channels: Int, size: Int) -> Int {
            let count = channels * batch * size * size
            tensors.append(PlannedTensor(channels: channels, size: size, values: allocate(count), gradients: allocate(count)))
            return tensors.count - 1
        }
        for segment in architecture.segments { _ = addTensor(channels: segment.channels, size: segment.size) }

        let groupGeometries = pointwiseGroups.geometries(architecture, batch: batch)
        var membership: [String: (group: Int, member: Int)] = [:]
        for (group, members) in pointwiseGroups.members.enumerated() {
            for (member, location) in members.enumerated() {
                membership["\(location.block).\(location.path)"] = (group, member)
            }
        }
        /// The stacked output buffer of the group being planned and the next member's channel offset.
        var groupChannelOffset = 0

        func addGroup(_ index: Int, input: TensorLocation) {
            let geometry = groupGeometries[index]
            var expectedOffset = parameters.view(named: pointwiseGroups.weightNames[index][0])!.offset
            for name in pointwiseGroups.weightNames[index] {
                let view = parameters.view(named: name)!
                precondition(view.offset == expectedOffset, "pointwise group weights must be adjacent in the arena: \(name)")
                expectedOffset += view.count
            }
            groups.append(PlannedPointwiseGroup(
                geometry: geometry,
                weight: parameters.values(of: pointwiseGroups.weightNames[index][0]),
                weightGradient: gradients(of: pointwiseGroups.weightNames[index][0]),
                preActivation: allocate(geometry.outputCount), preActivationGradient: allocate(geometry.outputCount),
                input: input))
            steps.append(.pointwiseGroup(groups.count - 1))
            groupChannelOffset = 0
        }

        func addUnit(_ unit: ConvolutionUnit, input: TensorLocation?, inputIsIntermediate: Bool, output: TensorLocation,
                     group: Int? = nil, isClassifier: Bool = false) {
            let geometry = ConvolutionGeometry(inputChannels: unit.inputChannels, outputChannels: unit.outputChannels,
                                               kernelSize: unit.kernelSize, stride: unit.stride, padding: unit.padding,
                                               batch: batch, inputHeight: unit.inputSize, inputWidth: unit.inputSize)
            let statistics = allocate(2 * unit.outputChannels)
            let label = (isClassifier ? "classifier " : "") + "convolution \(unit.kernelSize)x\(unit.kernelSize)/\(unit.stride)"
            guard let counter = buffers.counter(named: unit.batchNormName + ".num_batches_tracked") else {
                preconditionFailure("no BatchNorm counter for \(unit.batchNormName)")
            }
            units.append(PlannedUnit(
                geometry: geometry,
                weight: parameters.values(of: unit.convolutionName + ".weight"),
                weightGradient: gradients(of: unit.convolutionName + ".weight"),
                bias: unit.hasBias ? parameters.values(of: unit.convolutionName + ".bias") : nil,
                biasGradient: unit.hasBias ? gradients(of: unit.convolutionName + ".bias") : nil,
                batchNormWeight: parameters.values(of: unit.batchNormName + ".weight"),
                batchNormWeightGradient: gradients(of: unit.batchNormName + ".weight"),
                batchNormBias: parameters.values(of: unit.batchNormName + ".bias"),
                batchNormBiasGradient: gradients(of: unit.batchNormName + ".bias"),
                runningMean: buffers.values(of: unit.batchNormName + ".running_mean"),
                runningVariance: buffers.values(of: unit.batchNormName + ".running_var"),
                batchesTracked: counter,
                preActivationBase: group.map { groups[$0].preActivation } ?? allocate(geometry.outputCount),
                preActivationChannelOffset: group == nil ? 0 : groupChannelOffset,
                group: group,
                forwardLabel: label + " forward", backwardLabel: label + " backward",
                savedMean: statistics,
                savedInverseStandardDeviation: statistics + unit.outputChannels,
                input: input, inputIsIntermediate: inputIsIntermediate, output: output))
            if group != nil { groupChannelOffset += unit.outputChannels }
            steps.append(.unit(units.count - 1))
        }

        let exits = architecture.exitCount
        for (blockIndex, block) in architecture.blocks.enumerated() {
            for (pathIndex, path) in block.paths.enumerated() {
                var input: TensorLocation?
                if case let .segment(index, _) = path.source { input = TensorLocation(tensor: index, channelOffset: 0) }
                let member = membership["\(blockIndex).\(pathIndex)"]
                if let member, member.member == 0, let input { addGroup(member.group, input: input) }
                var inputIsIntermediate = false
                for (position, unit) in path.units.enumerated() {
                    let last = position == path.units.count - 1
                    let output: TensorLocation
                    if last && !path.maxPoolAfter {
                        output = TensorLocation(tensor: path.target.segment, channelOffset: path.target.channelOffset)
                    } else {
                        output = TensorLocation(tensor: addTensor(channels: unit.outputChannels, size: unit.outputSize), channelOffset: 0)
                    }
                    addUnit(unit, input: input, inputIsIntermediate: inputIsIntermediate, output: output,
                            group: position == 0 ? member.map { $0.group } : nil)
                    input = output
                    inputIsIntermediate = true
                }
                if path.maxPoolAfter, let intermediate = input?.tensor {
                    let indices = UnsafeMutablePointer<Int32>.allocate(capacity: max(tensors[path.target.segment].channels * batch * tensors[path.target.segment].plane, 1))
                    indexAllocations.append(indices)
                    steps.append(.maxPool(input: intermediate,
                                          output: TensorLocation(tensor: path.target.segment, channelOffset: path.target.channelOffset),
                                          indices: indices))
                }
            }
            let head = block.classifier
            let coarsest = block.coarsestOutput
            let factors = GradientEquilibrium.factors(exit: blockIndex, exitCount: exits)
            steps.append(.gradientRescale(segment: coarsest.segment, channels: coarsest.channels, factor: factors.intoBlockOutput))
            var input = TensorLocation(tensor: coarsest.segment, channelOffset: 0)
            var inputIsIntermediate = false
            for unit in head.units {
                let output = TensorLocation(tensor: addTensor(channels: unit.outputChannels, size: unit.outputSize), channelOffset: 0)
                addUnit(unit, input: input, inputIsIntermediate: inputIsIntermediate, output: output, isClassifier: true)
                input = output
                inputIsIntermediate = true
            }
            let pooledTensor = PlannedTensor(channels: head.featureWidth, size: 1,
                                             values: allocate(head.featureWidth * batch), gradients: allocate(head.featureWidth * batch))
            pooled.append(pooledTensor)
            logits.append(PlannedMatrix(features: head.classes, values: allocate(head.classes * batch), gradients: allocate(head.classes * batch)))
            linears.append(PlannedLinear(
                weight: parameters.values(of: head.linearName + ".weight"),
                weightGradient: gradients(of: head.linearName + ".weight"),
                bias: parameters.values(of: head.linearName + ".bias"),
                biasGradient: gradients(of: head.linearName + ".bias"),
                inputFeatures: head.featureWidth, outputFeatures: head.classes))
            steps.append(.classifierOutput(exit: blockIndex, input: input.tensor))
            steps.append(.gradientRescale(segment: coarsest.segment, channels: coarsest.channels, factor: factors.intoNextBlock))
        }
        finalGradientBoundaries = GradientReadiness(writes: backwardGradientWrites(gradientBase: gradientBase)).boundaries
    }

    deinit {
        for pointer in floatAllocations { pointer.deallocate() }
        for pointer in indexAllocations { pointer.deallocate() }
        workspace.deallocate()
        preActivationGradient.deallocate()
        batchNormScratch.deallocate()
        shardImages?.deallocate()
    }

    private func averagePoolGeometry(exit: Int, input: Int, count n: Int) -> PoolingGeometry {
        let tensor = tensors[input]
        return PoolingGeometry(channels: tensor.channels, batch: n, inputHeight: tensor.size, inputWidth: tensor.size, kernelSize: 2)
    }

    @inline(__always)
    private func timed(_ name: String, _ body: () -> Void) {
        if let profile { profile.measure(name, body) } else { body() }
    }

    /// Runs `selection` of the steps (all by default; early exit runs one block at a time).
    func forward(images: UnsafePointer<Float>, count n: Int, training: Bool, summation: BatchNormSummation,
                 steps selection: Range<Int>? = nil) {
        for step in steps[selection ?? steps.indices] {
            switch step {
            case let .unit(index):
                let unit = units[index]
                let geometry = unit.geometry(batch: n)
                let input = unit.input.map { UnsafePointer(tensors[$0.tensor].values(channelOffset: $0.channelOffset, count: n)) } ?? images
                let output = tensors[unit.output.tensor].values(channelOffset: unit.output.channelOffset, count: n)
                let preActivation = unit.preActivation(count: n)
                if unit.group == nil {
                    timed(unit.forwardLabel) {
                        Convolution.forward(input: input, weight: unit.weight, bias: unit.bias.map { UnsafePointer($0) },
                                            output: preActivation, geometry: geometry, workspace: workspace, kernels: kernels)
                    }
                }
                let positions = n * geometry.outputHeight * geometry.outputWidth
                timed("batchnorm+relu forward") {
                    if training {
                        BatchNormKernels.forwardTraining(
                            input: preActivation, output: output, weight: unit.batchNormWeight, bias: unit.batchNormBias,
                            runningMean: updatesRunningStatistics ? unit.runningMean : nil,
                            runningVariance: updatesRunningStatistics ? unit.runningVariance : nil,
                            savedMean: unit.savedMean, savedInverseStandardDeviation: unit.savedInverseStandardDeviation,
                            layout: BatchNormLayout(channels: geometry.outputChannels, count: positions, channelStride: positions,
                                                    elementStride: 1),
                            relu: true, momentum: 0.1, epsilon: 1e-5, summation: summation, scratch: batchNormScratch)
                        if updatesRunningStatistics { unit.batchesTracked.pointee += 1 }
                    } else {
                        BatchNorm2d.forwardInference(input: preActivation, output: output, weight: unit.batchNormWeight,
                                                     bias: unit.batchNormBias, runningMean: unit.runningMean,
                                                     runningVariance: unit.runningVariance, channels: geometry.outputChannels,
                                                     count: positions, relu: true)
                    }
                }
            case let .pointwiseGroup(index):
                let group = groups[index]
                timed("convolution 1x1/1 grouped forward") {
                    Convolution.forward(input: tensors[group.input.tensor].values(channelOffset: group.input.channelOffset, count: n),
                                        weight: group.weight, bias: nil, output: group.preActivation,
                                        geometry: group.geometry(batch: n), workspace: workspace, kernels: kernels)
                }
            case let .maxPool(input, output, indices):
                let source = tensors[input]
                let geometry = PoolingGeometry(channels: source.channels, batch: n, inputHeight: source.size, inputWidth: source.size,
                                               kernelSize: 3, stride: 2, padding: 1)
                MaxPool.forward(input: source.values, output: tensors[output.tensor].values(channelOffset: output.channelOffset, count: n),
                                indices: indices, geometry: geometry)
            case let .classifierOutput(exit, input):
                AveragePool.forward(input: tensors[input].values, output: pooled[exit].values,
                                    geometry: averagePoolGeometry(exit: exit, input: input, count: n))
                let linear = linears[exit]
                Linear.forward(input: pooled[exit].values, weight: linear.weight, bias: linear.bias, output: logits[exit].values,
                               batch: n, inputFeatures: linear.inputFeatures, outputFeatures: linear.outputFeatures,
                               inputLayout: .featureMajor)
            case .gradientRescale:
                break
            }
        }
    }

    /// Replays the tape backwards from `logits[e].gradients`, accumulating parameter gradients.
    func backward(images: UnsafePointer<Float>, count n: Int, gradientEquilibrium: Bool, summation: BatchNormSummation,
                  gradientReadyObserver: GradientReadyObserver?) {
        timed("zero segment gradients") {
            for segment in 0..<segmentCount {
                let tensor = tensors[segment]
                tensor.gradients.update(repeating: 0, count: tensor.channels * n * tensor.plane)
            }
        }
        for (position, step) in steps.reversed().enumerated() {
            defer { gradientReadyObserver?.gradientsAreFinal(from: finalGradientBoundaries[position]) }
            switch step {
            case let .unit(index):
                let unit = units[index]
                let geometry = unit.geometry(batch: n)
                let positions = n * geometry.outputHeight * geometry.outputWidth
                let output = tensors[unit.output.tensor].gradients(channelOffset: unit.output.channelOffset, count: n)
                let preActivationGradient = unit.group.map {
                    groups[$0].preActivationGradient + unit.preActivationChannelOffset * positions
                } ?? self.preActivationGradient
                timed("batchnorm+relu backward") {
                    preActivationGradient.update(repeating: 0, count: geometry.outputChannels * positions)
                    BatchNormKernels.backward(
                        outputGradient: output, input: unit.preActivation(count: n), weight: unit.batchNormWeight,
                        bias: unit.batchNormBias, savedMean: unit.savedMean,
                        savedInverseStandardDeviation: unit.savedInverseStandardDeviation,
                        inputGradient: preActivationGradient, weightGradient: unit.batchNormWeightGradient,
                        biasGradient: unit.batchNormBiasGradient,
                        layout: BatchNormLayout(channels: geometry.outputChannels, count: positions, channelStride: positions,
                                                elementStride: 1),
                        relu: true, summation: summation, scratch: batchNormScratch)
                }
                if unit.group != nil { continue }
                var input = images
                var inputGradient: UnsafeMutablePointer<Float>?
                if let location = unit.input {
                    let tensor = tensors[location.tensor]
                    input = UnsafePointer(tensor.values(channelOffset: location.channelOffset, count: n))
                    inputGradient = tensor.gradients(channelOffset: location.channelOffset, count: n)
                    if unit.inputIsIntermediate {
                        tensor.gradients.update(repeating: 0, count: tensor.channels * n * tensor.plane)
                    }
                }
                timed(unit.backwardLabel) {
                    Convolution.backward(outputGradient: preActivationGradient, input: input, weight: unit.weight,
                                         inputGradient: inputGradient, weightGradient: unit.weightGradient,
                                         biasGradient: unit.biasGradient, geometry: geometry, workspace: workspace,
                                         kernels: kernels)
                }
            case let .pointwiseGroup(index):
                let group = groups[index]
                let input = tensors[group.input.tensor]
                timed("convolution 1x1/1 grouped backward") {
                    Convolution.backward(outputGradient: group.preActivationGradient,
                                         input: input.values(channelOffset: group.input.channelOffset, count: n), weight: group.weight,
                                         inputGradient: input.gradients(channelOffset: group.input.channelOffset, count: n),
                                         weightGradient: group.weightGradient, biasGradient: nil,
                                         geometry: group.geometry(batch: n), workspace: workspace, kernels: kernels)
                }
            case let .maxPool(input, output, indices):
                let source = tensors[input]
                let geometry = PoolingGeometry(channels: source.channels, batch: n, inputHeight: source.size, inputWidth: source.size,
                                               kernelSize: 3, stride: 2, padding: 1)
                source.gradients.update(repeating: 0, count: source.channels * n * source.plane)
                MaxPool.backward(outputGradient: tensors[output.tensor].gradients(channelOffset: output.channelOffset, count: n),
                                 indices: indices, inputGradient: source.gradients, geometry: geometry)
            case let .classifierOutput(exit, input):
                let linear = linears[exit]
                let features = pooled[exit]
                features.gradients.update(repeating: 0, count: linear.inputFeatures * n)
                Linear.backward(outputGradient: logits[exit].gradients, input: features.values, weight: linear.weight,
                                inputGradient: features.gradients, weightGradient: linear.weightGradient,
                                biasGradient: linear.biasGradient, batch: n, inputFeatures: linear.inputFeatures,
                                outputFeatures: linear.outputFeatures, inputLayout: .featureMajor)
                let source = tensors[input]
                source.gradients.update(repeating: 0, count: source.channels * n * source.plane)
                AveragePool.backward(outputGradient: features.gradients, inputGradient: source.gradients,
                                     geometry: averagePoolGeometry(exit: exit, input: input, count: n))
            case let .gradientRescale(segment, channels, factor):
                if gradientEquilibrium {
                    GradientEquilibrium.rescaleInPlace(tensors[segment].gradients, count: channels * n * tensors[segment].plane, factor: factor)
                }
            }
        }
    }
}
