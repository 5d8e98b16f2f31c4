/// An architecture the reference builder would reject or build inconsistently.
public enum ArchitectureError: Error, CustomStringConvertible, Equatable {
    case invalidConfiguration(field: String, value: String, expected: String)
    /// A layer's input width computed by the reference formula differs from the channels actually
    /// concatenated so far (happens when `growthRate * grFactor[s]` is odd at a scale that is downsampled into).
    case inconsistentChannels(block: Int, scale: Int, formula: Int, actual: Int)
    /// The classifier must pool the coarsest scale to 1x1, because the reference's `Linear` takes exactly the channel count.
    /// `stem` and `scales` say which input sizes would work.
    case classifierNotPooledToOne(spatialSize: Int, stem: MSDNetConfiguration.Stem, scales: Int)

    public var description: String {
        switch self {
        case let .invalidConfiguration(field, value, expected):
            return "model.\(field) = \(value) is invalid: expected \(expected)"
        case let .inconsistentChannels(block, scale, formula, actual):
            return "block \(block), scale \(scale): the reference computes \(formula) input channels but \(actual) are concatenated; choose growthRate * grFactor even"
        case let .classifierNotPooledToOne(size, stem, scales):
            let fitting = MSDNetArchitecture.inputSizesPooledToOne(stem: stem, scales: scales)
                .map { "use an inputSize from \($0.lowerBound) to \($0.upperBound)" } ?? "no inputSize up to 65536 fits"
            return "the classifier pools the coarsest scale to \(size)x\(size), but the reference needs 1x1: "
                + "with the \(stem.rawValue) stem and \(scales) scale\(scales == 1 ? "" : "s"), \(fitting)"
        }
    }
}

/// `Conv2d` (+ bias for the ImageNet stem) followed by `BatchNorm2d` and `ReLU`: the reference's
/// `ConvBasic`, and each half of its `ConvBN`.
public struct ConvolutionUnit: Equatable, Sendable {
    /// Key prefix of the convolution (`<prefix>.weight`, `<prefix>.bias`).
    public var convolutionName: String
    /// Key prefix of the BatchNorm (`<prefix>.weight`, `.bias`, `.running_mean`, `.running_var`, `.num_batches_tracked`).
    public var batchNormName: String
    public var inputChannels: Int
    public var outputChannels: Int
    public var kernelSize: Int
    public var stride: Int
    public var padding: Int
    public var hasBias: Bool
    public var inputSize: Int

    /// `(in + 2 padding - kernel) / stride + 1`, as PyTorch.
    public var outputSize: Int { (inputSize + 2 * padding - kernelSize) / stride + 1 }
    public var weightShape: [Int] { [outputChannels, inputChannels, kernelSize, kernelSize] }
}

/// A growing channel-major feature buffer of one scale: the stem or a transition starts it, every
/// dense layer appends its new channels after the old ones (the reference's `torch.cat`).
public struct FeatureSegment: Equatable, Sendable {
    public var scale: Int
    /// Height and width.
    public var size: Int
    /// Channels when the segment is complete.
    public var channels: Int
}

/// The first `channels` channels of a segment, as they were when a layer read them.
public struct FeatureSlice: Equatable, Sendable {
    public var segment: Int
    public var channelOffset: Int
    public var channels: Int
}

/// A chain of convolution units reading one input and writing its last unit's output into a segment.
public struct ConvolutionPath: Equatable, Sendable {
    public enum Source: Equatable, Sendable {
        /// The network input `[inputChannels, n, H, W]`.
        case image
        /// Channels `0..<channels` of a segment.
        case segment(index: Int, channels: Int)
    }

    public var units: [ConvolutionUnit]
    public var source: Source
    public var target: FeatureSlice
    /// The ImageNet stem's 3x3 stride-2 padding-1 max-pool after its first unit.
    public var maxPoolAfter: Bool
}

/// The reference `ClassifierModule`: two stride-2 ConvBasic, a 2x2 average pool and a Linear.
public struct ClassifierHead: Equatable, Sendable {
    /// `classifier.<exit>`.
    public var name: String
    public var units: [ConvolutionUnit]
    /// The coarsest scale at the end of the block.
    public var source: FeatureSlice
    /// Spatial size after the two units (the average pool has kernel and stride 2).
    public var poolInputSize: Int
    /// Width of the pooled feature, the linear layer's input (128 on CIFAR).
    public var featureWidth: Int
    public var classes: Int
    public var linearName: String { name + ".linear" }
}

/// The reference MSDNet (`models/msdnet_ge.py`, `MSDNet`) as a list of blocks, each with its
/// convolution paths in the reference's registration order and its classifier.
public struct MSDNetArchitecture: Equatable, Sendable {
    public struct Block: Equatable, Sendable {
        public var paths: [ConvolutionPath]
        public var classifier: ClassifierHead
        /// `x[-1]` at the end of the block (where Gradient Equilibrium acts).
        public var coarsestOutput: FeatureSlice
        /// Dense layers of the block, and how many of them pruned a scale.
        public var denseLayerCount: Int
        public var transitionCount: Int
        /// Channels of each present scale at the end of the block (nil: dropped).
        public var scaleChannels: [Int?]
    }

    public let configuration: MSDNetConfiguration
    public let blocks: [Block]
    public let segments: [FeatureSegment]
    /// Height and width of each scale.
    public let scaleSizes: [Int]

    public var exitCount: Int { blocks.count }

    /// The input sizes whose coarsest scale the classifier pools to 1x1 for this stem and scale
    /// count (nil if none up to 65536): the sizes `init` computes through its units, side alone.
    /// Every convolution and pool only shrinks a side monotonically, so they form one range.
    public static func inputSizesPooledToOne(stem: MSDNetConfiguration.Stem, scales: Int) -> ClosedRange<Int>? {
        func convolved(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int { (size + 2 * padding - kernel) / stride + 1 }
        func halved(_ size: Int) -> Int { convolved(size, kernel: 3, stride: 2, padding: 1) }
        let fitting = (1...65536).filter { inputSize in
            // The ImageNet stem: 7x7 stride-2 convolution, then a 3x3 stride-2 max-pool.
            var size = stem == .imagenet ? halved(convolved(inputSize, kernel: 7, stride: 2, padding: 3)) : inputSize
            for _ in 1..<max(scales, 1) { size = halved(size) }
            // The classifier's two stride-2 convolutions, then its 2x2 average pool.
            return halved(halved(size)) / 2 == 1
        }
        return fitting.first.map { $0...fitting.last! }
    }

    public init(_ configuration: MSDNetConfiguration) throws {
        let c = configuration
        let scales = c.grFactor.count
        guard scales >= 1 else { throw ArchitectureError.invalidConfiguration(field: "grFactor", value: "[]", expected: "one factor per scale") }
        guard c.bnFactor.count == scales else {
            throw ArchitectureError.invalidConfiguration(field: "bnFactor", value: "\(c.bnFactor)", expected: "\(scales) factors like grFactor")
        }
        guard c.nBlocks >= 1 else { throw ArchitectureError.invalidConfiguration(field: "nBlocks", value: "\(c.nBlocks)", expected: ">= 1") }
        guard c.base >= 1, c.step >= 1 || c.nBlocks == 1 else {
            throw ArchitectureError.invalidConfiguration(field: "step/base", value: "\(c.step)/\(c.base)", expected: ">= 1")
        }
        guard c.inputChannels >= 1 else { throw ArchitectureError.invalidConfiguration(field: "inputChannels", value: "\(c.inputChannels)", expected: ">= 1") }
        self.configuration = c

        var segments: [FeatureSegment] = []
        var currentSegment = [Int](repeating: -1, count: scales)
        var scaleSizes: [Int] = []
        var stemPaths: [ConvolutionPath] = []
        var size = c.inputSize
        for scale in 0..<scales {
            let channels = c.nChannels * c.grFactor[scale]
            var unit: ConvolutionUnit
            var maxPool = false
            let prefix = "blocks.0.0.layers.\(scale)"
            if scale == 0 && c.stem == .imagenet {
                unit = ConvolutionUnit(convolutionName: prefix + ".0", batchNormName: prefix + ".1", inputChannels: c.inputChannels,
                                       outputChannels: channels, kernelSize: 7, stride: 2, padding: 3, hasBias: true, inputSize: size)
                maxPool = true
                size = (unit.outputSize + 2 - 3) / 2 + 1
            } else {
                unit = ConvolutionUnit(convolutionName: prefix + ".net.0", batchNormName: prefix + ".net.1",
                                       inputChannels: scale == 0 ? c.inputChannels : c.nChannels * c.grFactor[scale - 1],
                                       outputChannels: channels, kernelSize: 3, stride: scale == 0 ? 1 : 2, padding: 1,
                                       hasBias: false, inputSize: size)
                size = unit.outputSize
            }
            scaleSizes.append(size)
            let source: ConvolutionPath.Source = scale == 0 ? .image : .segment(index: currentSegment[scale - 1], channels: segments[currentSegment[scale - 1]].channels)
            segments.append(FeatureSegment(scale: scale, size: size, channels: channels))
            currentSegment[scale] = segments.count - 1
            stemPaths.append(ConvolutionPath(units: [unit], source: source,
                                             target: FeatureSlice(segment: currentSegment[scale], channelOffset: 0, channels: channels),
                                             maxPoolAfter: maxPool))
        }

        let steps = c.layersPerBlock
        let layersInAll = steps.reduce(0, +)
        var layersSoFar = 0
        var widthInUnits = c.nChannels
        var presentScales = scales
        var blocks: [Block] = []

        func convolutionBatchNorm(_ prefix: String, inputChannels: Int, outputChannels: Int, down: Bool,
                                  bottleneckWidth: Int, inputSize: Int) -> [ConvolutionUnit] {
            var units: [ConvolutionUnit] = []
            var inner = inputChannels
            var nextIndex = 0
            if c.bottleneck {
                inner = min(inputChannels, bottleneckWidth * outputChannels)
                units.append(ConvolutionUnit(convolutionName: prefix + ".net.0", batchNormName: prefix + ".net.1",
                                             inputChannels: inputChannels, outputChannels: inner, kernelSize: 1, stride: 1,
                                             padding: 0, hasBias: false, inputSize: inputSize))
                nextIndex = 3
            }
            units.append(ConvolutionUnit(convolutionName: prefix + ".net.\(nextIndex)", batchNormName: prefix + ".net.\(nextIndex + 1)",
                                         inputChannels: inner, outputChannels: outputChannels, kernelSize: 3, stride: down ? 2 : 1,
                                         padding: 1, hasBias: false, inputSize: inputSize))
            return units
        }

        for block in 0..<c.nBlocks {
            var paths: [ConvolutionPath] = block == 0 ? stemPaths : []
            var moduleIndex = block == 0 ? 1 : 0
            var transitions = 0
            for _ in 0..<steps[block] {
                layersSoFar += 1
                var inScales = scales
                var outScales = scales
                switch c.prune {
                case .min:
                    inScales = min(scales, layersInAll - layersSoFar + 2)
                    outScales = min(scales, layersInAll - layersSoFar + 1)
                case .max:
                    let interval = (layersInAll + scales - 1) / scales
                    inScales = scales - max(0, layersSoFar - 2) / interval
                    outScales = scales - (layersSoFar - 1) / interval
                }
                // The formula never exceeds the scales present in configurations the reference can build.
                inScales = min(inScales, presentScales)
                let offset = scales - outScales
                let discard = inScales - outScales
                let prefix = "blocks.\(block).\(moduleIndex).layers"
                // Every output reads the inputs as they were before this layer appended anything.
                let readChannels = currentSegment.map { $0 >= 0 ? segments[$0].channels : 0 }
                for scale in offset..<scales {
                    let formula = widthInUnits * c.grFactor[scale]
                    guard formula == readChannels[scale] else {
                        throw ArchitectureError.inconsistentChannels(block: block, scale: scale, formula: formula, actual: readChannels[scale])
                    }
                }
                var appended = [Int](repeating: 0, count: scales)
                for t in 0..<outScales {
                    let scale = offset + t
                    let growth = c.growthRate * c.grFactor[scale]
                    let segment = currentSegment[scale]
                    if t == 0 && discard == 0 {
                        let units = convolutionBatchNorm("\(prefix).\(t).conv_normal", inputChannels: readChannels[scale],
                                                         outputChannels: growth, down: false, bottleneckWidth: c.bnFactor[scale],
                                                         inputSize: scaleSizes[scale])
                        paths.append(ConvolutionPath(units: units, source: .segment(index: segment, channels: readChannels[scale]),
                                                     target: FeatureSlice(segment: segment, channelOffset: readChannels[scale], channels: growth),
                                                     maxPoolAfter: false))
                        appended[scale] = growth
                    } else {
                        let half = growth / 2
                        let down = convolutionBatchNorm("\(prefix).\(t).conv_down", inputChannels: readChannels[scale - 1],
                                                        outputChannels: half, down: true, bottleneckWidth: c.bnFactor[scale - 1],
                                                        inputSize: scaleSizes[scale - 1])
                        let normal = convolutionBatchNorm("\(prefix).\(t).conv_normal", inputChannels: readChannels[scale],
                                                          outputChannels: half, down: false, bottleneckWidth: c.bnFactor[scale],
                                                          inputSize: scaleSizes[scale])
                        paths.append(ConvolutionPath(units: down, source: .segment(index: currentSegment[scale - 1], channels: readChannels[scale - 1]),
                                                     target: FeatureSlice(segment: segment, channelOffset: readChannels[scale], channels: half),
                                                     maxPoolAfter: false))
                        paths.append(ConvolutionPath(units: normal, source: .segment(index: segment, channels: readChannels[scale]),
                                                     target: FeatureSlice(segment: segment, channelOffset: readChannels[scale] + half, channels: half),
                                                     maxPoolAfter: false))
                        appended[scale] = 2 * half
                    }
                }
                for scale in offset..<scales { segments[currentSegment[scale]].channels += appended[scale] }
                for scale in 0..<offset { currentSegment[scale] = -1 }
                presentScales = outScales
                moduleIndex += 1
                widthInUnits += c.growthRate

                let transition: Bool
                switch c.prune {
                case .max: transition = inScales > outScales && c.reduction > 0
                case .min: transition = c.reduction > 0 && (layersSoFar == layersInAll / 3 || layersSoFar == 2 * layersInAll / 3)
                }
                if transition {
                    let reduced = Int((c.reduction * Double(widthInUnits)).rounded(.down))
                    for t in 0..<outScales {
                        let scale = offset + t
                        let old = currentSegment[scale]
                        let inputChannels = widthInUnits * c.grFactor[scale]
                        guard inputChannels == segments[old].channels else {
                            throw ArchitectureError.inconsistentChannels(block: block, scale: scale, formula: inputChannels, actual: segments[old].channels)
                        }
                        let name = "blocks.\(block).\(moduleIndex).m.\(t).net"
                        let unit = ConvolutionUnit(convolutionName: name + ".0", batchNormName: name + ".1", inputChannels: inputChannels,
                                                   outputChannels: reduced * c.grFactor[scale], kernelSize: 1, stride: 1, padding: 0,
                                                   hasBias: false, inputSize: scaleSizes[scale])
                        segments.append(FeatureSegment(scale: scale, size: scaleSizes[scale], channels: unit.outputChannels))
                        currentSegment[scale] = segments.count - 1
                        paths.append(ConvolutionPath(units: [unit], source: .segment(index: old, channels: inputChannels),
                                                     target: FeatureSlice(segment: currentSegment[scale], channelOffset: 0, channels: unit.outputChannels),
                                                     maxPoolAfter: false))
                    }
                    moduleIndex += 1
                    transitions += 1
                    widthInUnits = reduced
                }
            }

            let coarsest = currentSegment[scales - 1]
            let width = widthInUnits * c.grFactor[scales - 1]
            guard width == segments[coarsest].channels else {
                throw ArchitectureError.inconsistentChannels(block: block, scale: scales - 1, formula: width, actual: segments[coarsest].channels)
            }
            let inner = c.stem == .cifar ? 128 : width
            let name = "classifier.\(block)"
            let first = ConvolutionUnit(convolutionName: name + ".m.0.net.0", batchNormName: name + ".m.0.net.1", inputChannels: width,
                                        outputChannels: inner, kernelSize: 3, stride: 2, padding: 1, hasBias: false,
                                        inputSize: scaleSizes[scales - 1])
            let second = ConvolutionUnit(convolutionName: name + ".m.1.net.0", batchNormName: name + ".m.1.net.1", inputChannels: inner,
                                         outputChannels: inner, kernelSize: 3, stride: 2, padding: 1, hasBias: false,
                                         inputSize: first.outputSize)
            guard second.outputSize / 2 == 1 else {
                throw ArchitectureError.classifierNotPooledToOne(spatialSize: second.outputSize / 2, stem: c.stem, scales: scales)
            }
            let source = FeatureSlice(segment: coarsest, channelOffset: 0, channels: width)
            blocks.append(Block(
                paths: paths,
                classifier: ClassifierHead(name: name, units: [first, second], source: source, poolInputSize: second.outputSize,
                                           featureWidth: inner, classes: c.classes),
                coarsestOutput: source,
                denseLayerCount: steps[block],
                transitionCount: transitions,
                scaleChannels: (0..<scales).map { currentSegment[$0] >= 0 ? segments[currentSegment[$0]].channels : nil }))
        }
        self.blocks = blocks
        self.segments = segments
        self.scaleSizes = scaleSizes
    }

    /// Every convolution unit in the reference's registration order: all blocks, then all classifiers.
    public var unitsInRegistrationOrder: [ConvolutionUnit] {
        blocks.flatMap { $0.paths.flatMap(\.units) } + blocks.flatMap(\.classifier.units)
    }

    /// The trainable tensors with their reference keys, in `named_parameters()` order.
    public var parameterTensors: [(name: String, shape: [Int])] {
        func unitTensors(_ unit: ConvolutionUnit) -> [(name: String, shape: [Int])] {
            var tensors: [(name: String, shape: [Int])] = [(unit.convolutionName + ".weight", unit.weightShape)]
            if unit.hasBias { tensors.append((unit.convolutionName + ".bias", [unit.outputChannels])) }
            tensors.append((unit.batchNormName + ".weight", [unit.outputChannels]))
            tensors.append((unit.batchNormName + ".bias", [unit.outputChannels]))
            return tensors
        }
        var tensors = blocks.flatMap { $0.paths.flatMap { $0.units.flatMap(unitTensors) } }
        for block in blocks {
            tensors += block.classifier.units.flatMap(unitTensors)
            tensors.append((block.classifier.linearName + ".weight", [block.classifier.classes, block.classifier.featureWidth]))
            tensors.append((block.classifier.linearName + ".bias", [block.classifier.classes]))
        }
        return tensors
    }

    /// Every BatchNorm2d layer, by key prefix, in registration order.
    public var batchNormLayers: [(prefix: String, channels: Int)] {
        unitsInRegistrationOrder.map { ($0.batchNormName, $0.outputChannels) }
    }

    /// Number of trainable Floats.
    public var parameterCount: Int { parameterTensors.reduce(0) { $0 + $1.shape.reduce(1, *) } }
}
