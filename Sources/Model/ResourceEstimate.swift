/// The memory a network needs, computed from its configuration alone, before anything is built
/// or allocated, so that a run file asking for more than the machine holds is refused instead of
/// dying in an allocation.
///
/// It follows `MSDNetArchitecture`'s channel and size arithmetic layer by layer and counts what
/// `MSDNet` allocates: per rank, activations and their gradients for every feature segment and
/// intermediate tensor, one pre-activation per convolution, the largest im2col workspace, and for
/// every parameter its value, gradient and momentum, and one more gradient per image shard after
/// the first (`ImageShards`). The parameter count is exact; the
/// activations are within 40% of the built plan (`ResourceEstimateTests`), which is what a
/// refusal needs: the sizes it refuses are off by orders of magnitude. Counting saturates at `Int.max` instead of
/// overflowing, and the walk stops as soon as `budget` is exceeded, so any configuration, however
/// large, is answered at once.
public struct ResourceEstimate: Equatable, Sendable {
    /// Trainable parameters of the backbone.
    public private(set) var parameterCount = 0
    /// Bytes of activations, activation gradients and scratch for the batch per rank.
    public private(set) var activationBytes = 0
    /// Bytes of parameters, their gradients and momentum, plus BatchNorm running statistics.
    public private(set) var parameterBytes = 0
    /// True when the walk stopped early because the total passed the budget (the counts are then
    /// lower bounds).
    public private(set) var exceedsBudget = false

    /// All bytes counted.
    public var totalBytes: Int { Self.add(activationBytes, parameterBytes) }

    public init(_ configuration: MSDNetConfiguration, batchSize: Int, budget: Int, imageShards: Int = 1) {
        let c = configuration
        let scales = c.grFactor.count
        guard scales >= 1, c.bnFactor.count == scales, c.nBlocks >= 1, batchSize >= 1 else { return }
        var activationFloats = 0
        var largestScratch = 0
        var parameterFloats = 0
        var bufferFloats = 0
        func overBudget() -> Bool {
            activationBytes = Self.multiply(Self.add(activationFloats, largestScratch), 4)
            // Value, gradient and momentum of each parameter, each further shard's gradient; running
            // mean and variance of each BatchNorm.
            parameterBytes = Self.multiply(Self.add(Self.multiply(parameterFloats, 2 + max(imageShards, 1)), bufferFloats), 4)
            exceedsBudget = totalBytes > budget
            return exceedsBudget
        }
        /// One convolution + BatchNorm unit: its weights (and bias), its pre-activation (and its
        /// gradient, for the 1x1 bottlenecks that `MSDNet` runs as one grouped product), its
        /// workspace (`DirectConvolution`'s padded input and output gradient, else the im2col
        /// matrix), and for all but the last unit of a path the tensor it writes.
        func unit(inputChannels: Int, outputChannels: Int, kernel: Int, outputSize: Int, inputSize: Int? = nil,
                  intermediate: Bool, bias: Bool = false, grouped: Bool = false) {
            let weights = Self.multiply(Self.multiply(inputChannels, outputChannels), kernel * kernel)
            let unitParameters = Self.add(weights, Self.multiply(outputChannels, bias ? 3 : 2))
            parameterCount = Self.add(parameterCount, unitParameters)
            parameterFloats = Self.add(parameterFloats, unitParameters)
            bufferFloats = Self.add(bufferFloats, Self.multiply(outputChannels, 4))
            let outputCount = Self.multiply(Self.multiply(outputChannels, batchSize), Self.multiply(outputSize, outputSize))
            let copies = (intermediate ? 3 : 1) + (grouped ? 1 : 0)
            activationFloats = Self.add(activationFloats, Self.multiply(outputCount, copies))
            let input = inputSize ?? outputSize
            let padded = Self.multiply(Self.multiply(batchSize, Self.add(input, kernel)), Self.add(input, kernel))
            let largestOperand = Self.multiply(max(inputChannels, outputChannels, kernel * kernel), padded)
            if kernel > 1 && outputChannels <= DirectConvolution.maximumOutputChannels && largestOperand < Int.max >> 8 {
                // Small enough to ask the direct path itself (MSDNet pads 3x3 by 1 and 7x7 by 3).
                let geometry = ConvolutionGeometry(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernel,
                                                   stride: input > outputSize ? 2 : 1, padding: kernel / 2, batch: batchSize,
                                                   inputHeight: input, inputWidth: input)
                largestScratch = max(largestScratch, geometry.workspaceCount)
            } else {
                let columns = Self.multiply(Self.multiply(inputChannels, kernel * kernel), Self.multiply(batchSize, Self.multiply(outputSize, outputSize)))
                largestScratch = max(largestScratch, Self.add(columns, outputCount))
            }
        }
        func segment(channels: Int, size: Int) {
            activationFloats = Self.add(activationFloats, Self.multiply(Self.multiply(channels, 2 * batchSize), Self.multiply(size, size)))
        }
        func downsampled(_ size: Int) -> Int { (size + 2 - 3) / 2 + 1 }

        var sizes: [Int] = []
        var size = c.inputSize
        for scale in 0..<scales {
            let channels = Self.multiply(c.nChannels, c.grFactor[scale])
            let inputChannels = scale == 0 ? c.inputChannels : Self.multiply(c.nChannels, c.grFactor[scale - 1])
            if scale == 0 && c.stem == .imagenet {
                let convolved = (size + 6 - 7) / 2 + 1
                unit(inputChannels: inputChannels, outputChannels: channels, kernel: 7, outputSize: convolved, inputSize: size,
                     intermediate: true, bias: true)
                size = downsampled(convolved)
            } else {
                let inputSize = size
                size = scale == 0 ? size : downsampled(size)
                unit(inputChannels: inputChannels, outputChannels: channels, kernel: 3, outputSize: size, inputSize: inputSize,
                     intermediate: false)
            }
            sizes.append(size)
        }
        if overBudget() { return }

        let layersInAll = Self.layerCount(c)
        var channels = (0..<scales).map { Self.multiply(c.nChannels, c.grFactor[$0]) }
        var present = scales
        var layersSoFar = 0
        var widthInUnits = c.nChannels
        for block in 0..<c.nBlocks {
            let layers = block == 0 ? c.base : (c.stepmode == .even ? c.step : Self.add(Self.multiply(c.step, block), 1))
            var layer = 0
            while layer < layers {
                layer += 1
                layersSoFar = Self.add(layersSoFar, 1)
                var outScales = scales
                var inScales = scales
                switch c.prune {
                case .min:
                    inScales = min(scales, Self.add(layersInAll - layersSoFar, 2))
                    outScales = min(scales, Self.add(layersInAll - layersSoFar, 1))
                case .max:
                    let interval = max(1, Self.add(layersInAll, scales - 1) / scales)
                    inScales = scales - max(0, layersSoFar - 2) / interval
                    outScales = max(1, scales - (layersSoFar - 1) / interval)
                }
                inScales = min(inScales, present)
                let offset = scales - outScales
                for scale in offset..<scales {
                    let growth = Self.multiply(c.growthRate, c.grFactor[scale])
                    let bottleneckWidth = { (factor: Int, input: Int, output: Int) in min(input, Self.multiply(factor, output)) }
                    let paths: [(input: Int, factor: Int, output: Int, size: Int)] = scale == offset && inScales == outScales
                        ? [(channels[scale], c.bnFactor[scale], growth, sizes[scale])]
                        : [(channels[max(scale - 1, 0)], c.bnFactor[max(scale - 1, 0)], growth / 2, sizes[max(scale - 1, 0)]),
                           (channels[scale], c.bnFactor[scale], growth / 2, sizes[scale])]
                    for path in paths {
                        if c.bottleneck {
                            let inner = bottleneckWidth(path.factor, path.input, path.output)
                            unit(inputChannels: path.input, outputChannels: inner, kernel: 1, outputSize: sizes[scale],
                                 intermediate: true, grouped: true)
                            unit(inputChannels: inner, outputChannels: path.output, kernel: 3, outputSize: sizes[scale],
                                 inputSize: path.size, intermediate: false)
                        } else {
                            unit(inputChannels: path.input, outputChannels: path.output, kernel: 3, outputSize: sizes[scale],
                                 inputSize: path.size, intermediate: false)
                        }
                    }
                }
                for scale in offset..<scales {
                    let growth = Self.multiply(c.growthRate, c.grFactor[scale])
                    segment(channels: growth, size: sizes[scale])
                    channels[scale] = Self.add(channels[scale], growth)
                }
                widthInUnits = Self.add(widthInUnits, c.growthRate)
                let transition: Bool
                switch c.prune {
                case .max: transition = inScales > outScales && c.reduction > 0
                case .min: transition = c.reduction > 0 && (layersSoFar == layersInAll / 3 || layersSoFar == 2 * layersInAll / 3)
                }
                if transition {
                    widthInUnits = Int((c.reduction * Double(widthInUnits)).rounded(.down))
                    for scale in offset..<scales {
                        let reduced = Self.multiply(widthInUnits, c.grFactor[scale])
                        unit(inputChannels: channels[scale], outputChannels: reduced, kernel: 1, outputSize: sizes[scale], intermediate: false)
                        segment(channels: reduced, size: sizes[scale])
                        channels[scale] = reduced
                    }
                }
                present = outScales
                if overBudget() { return }
            }
            // The classifier: two stride-2 3x3 units on the coarsest scale, then a linear layer.
            let width = channels[scales - 1]
            let inner = c.stem == .cifar ? 128 : width
            let first = downsampled(sizes[scales - 1])
            unit(inputChannels: width, outputChannels: inner, kernel: 3, outputSize: first, inputSize: sizes[scales - 1],
                 intermediate: true)
            unit(inputChannels: inner, outputChannels: inner, kernel: 3, outputSize: downsampled(first), inputSize: first,
                 intermediate: true)
            let linear = Self.add(Self.multiply(inner, c.classes), c.classes)
            parameterCount = Self.add(parameterCount, linear)
            parameterFloats = Self.add(parameterFloats, linear)
            if overBudget() { return }
        }
        // The segments as the stem created them (dense layers added their growth above).
        for scale in 0..<scales { segment(channels: Self.multiply(c.nChannels, c.grFactor[scale]), size: sizes[scale]) }
        _ = overBudget()
    }

    /// Dense layers in the whole network: `base + sum over blocks 1..<nBlocks of the block's layers`,
    /// in closed form (a lin_grow network of 10^5 blocks has 5 * 10^9 layers).
    static func layerCount(_ c: MSDNetConfiguration) -> Int {
        let later = c.nBlocks - 1
        switch c.stepmode {
        case .even:
            return add(c.base, multiply(c.step, later))
        case .linearGrowth:
            // sum over i = 1...later of (step * i + 1) = step * later * (later + 1) / 2 + later.
            let triangle = later % 2 == 0 ? multiply(later / 2, later + 1) : multiply(later, (later + 1) / 2)
            return add(add(c.base, multiply(c.step, triangle)), later)
        }
    }

    static func add(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    static func multiply(_ a: Int, _ b: Int) -> Int {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? .max : product
    }
}
