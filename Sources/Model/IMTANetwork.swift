/// Phase II of IMTA (the reference `IMTA_MSDNet`, `models/msdnet_imta.py`): the phase-I MSDNet is
/// frozen (its BatchNorm layers stay in training mode, as in the reference, so their running
/// statistics keep updating) and new heads are trained on its pooled classifier features t_i:
///
///     z_0 = classifier_0(t_0)
///     z_i = classifier_i(cat(t_i, isc_{i-1}(z_{i-1})))      i > 0
///
/// with `classifier_i` a Linear and `isc_j` an Inline Subnetwork Collaboration module (Sec. 3.2).
/// The loss is One-for-all Knowledge Distillation (Sec. 3.3) against the backbone's last exit.
/// Keys: the backbone under `net.`, heads `classifier.<i>.*`, ISC `isc_modules.<j>.*`.
public final class IMTANetwork: TrainableNetwork {
    public let backbone: MSDNet
    /// The trained parameters: `classifier.<i>.weight|bias`, then `isc_modules.<j>.*`.
    public let heads: ParameterArena
    /// Running statistics of the ISC BatchNorm1d layers.
    public let headBuffers: BufferArena
    public var distillation: OneForAllDistillation
    /// Stop the gradient of z_{i-1} on the ISC path (the paper); false is the reference behaviour.
    public var detachCollaboration: Bool
    public var batchNormReducer: CrossReplicaReducer? {
        didSet { backbone.batchNormReducer = batchNormReducer }
    }
    /// Told during `backward` as the tail of `heads.gradients` becomes final (overlapped all-reduce).
    public var gradientReadyObserver: GradientReadyObserver?

    public var exitCount: Int { backbone.exitCount }
    public var classCount: Int { backbone.classCount }
    public var maximumBatchSize: Int { backbone.maximumBatchSize }
    public var trainableParameters: ParameterArena { heads }
    public var stateTensors: [NamedTensor] {
        backbone.parameters.namedTensors(prefix: "net.") + backbone.buffers.namedTensors(prefix: "net.")
            + heads.namedTensors() + headBuffers.namedTensors()
    }
    /// The frozen backbone's BatchNorm layers stay in training mode, so both arenas change.
    public var runningStatistics: [BufferArena] { [backbone.buffers, headBuffers] }

    /// Width of the pooled feature of each exit (128 on CIFAR; the reference's `logits_channels`).
    public let featureWidths: [Int]
    let collaboration: [InlineSubnetworkCollaborationModule]
    /// Each exit's Linear classifier, its views into `heads` resolved once.
    private let classifiers: [LinearParameters]
    /// Exit i > 0's classifier input `[n, 2 * featureWidth_i]` and its gradient.
    private let classifierInputs: [PlannedMatrix]
    private let predictions: [PlannedMatrix]
    /// `predictions`' values and gradients, as the loss takes them.
    private let predictionValues: [UnsafePointer<Float>]
    private let predictionGradients: [UnsafeMutablePointer<Float>]
    private var forwardCount = 0
    /// The last step's per-exit results, refilled: no allocation once the caller has let go of that result.
    private var exitLosses: [Double] = []
    private var exitCorrect: [Int] = []
    /// After the backward of the k-th exit from the last, gradients from `finalGradientBoundaries[k]` on are final.
    private let finalGradientBoundaries: [Int]

    /// New heads on `backbone`, initialised as PyTorch's defaults (Linear uniform(+-1/sqrt(in)) for
    /// weight and bias, BatchNorm1d 1/0) from `seed`.
    public init(backbone: MSDNet, distillation: OneForAllDistillation, detachCollaboration: Bool, seed: UInt64) {
        self.backbone = backbone
        self.distillation = distillation
        self.detachCollaboration = detachCollaboration
        let classes = backbone.classCount
        let exits = backbone.exitCount
        let widths = backbone.architecture.blocks.map(\.classifier.featureWidth)
        featureWidths = widths
        let inputWidths = (0..<exits).map { $0 == 0 ? widths[0] : 2 * widths[$0] }
        var tensors: [(name: String, shape: [Int])] = []
        for exit in 0..<exits {
            tensors.append(("classifier.\(exit).weight", [classes, inputWidths[exit]]))
            tensors.append(("classifier.\(exit).bias", [classes]))
        }
        for index in 0..<(exits - 1) {
            tensors += InlineSubnetworkCollaborationModule.parameterTensors(index: index, classes: classes, width: widths[index + 1])
        }
        heads = ParameterArena(tensors: tensors)
        headBuffers = BufferArena(batchNormLayers: (0..<(exits - 1)).map {
            InlineSubnetworkCollaborationModule.batchNormLayer(index: $0, width: widths[$0 + 1])
        })
        let batch = backbone.maximumBatchSize
        func matrix(_ features: Int) -> PlannedMatrix {
            let values = UnsafeMutablePointer<Float>.allocate(capacity: features * batch)
            values.initialize(repeating: 0, count: features * batch)
            let gradients = UnsafeMutablePointer<Float>.allocate(capacity: features * batch)
            gradients.initialize(repeating: 0, count: features * batch)
            return PlannedMatrix(features: features, values: values, gradients: gradients)
        }
        classifierInputs = inputWidths.map(matrix)
        predictions = (0..<exits).map { _ in matrix(classes) }
        predictionValues = predictions.map { UnsafePointer($0.values) }
        predictionGradients = predictions.map(\.gradients)
        let headParameters = heads, headStatistics = headBuffers
        classifiers = (0..<exits).map { LinearParameters(headParameters, prefix: "classifier.\($0)") }
        collaboration = (0..<(exits - 1)).map {
            InlineSubnetworkCollaborationModule(index: $0, classes: classes, width: widths[$0 + 1], parameters: headParameters,
                                                buffers: headStatistics, maximumBatchSize: batch)
        }

        // The backward of exit i writes its classifier and, for i > 0, the ISC module feeding it.
        finalGradientBoundaries = GradientReadiness(writes: (0..<exits).reversed().map { exit in
            let prefixes = ["classifier.\(exit)."] + (exit > 0 ? ["isc_modules.\(exit - 1)."] : [])
            return headParameters.views.filter { view in prefixes.contains { view.name.hasPrefix($0) } }
                .map { $0.offset..<($0.offset + $0.count) }
        }).boundaries

        var generator = SeededGenerator(seed: seed)
        for exit in 0..<exits {
            Initialization.defaultUniform(classifiers[exit].weight, count: classes * inputWidths[exit],
                                          fanIn: inputWidths[exit], using: &generator)
            Initialization.defaultUniform(classifiers[exit].bias, count: classes, fanIn: inputWidths[exit], using: &generator)
        }
        for index in 0..<(exits - 1) {
            let prefix = "isc_modules.\(index)"
            let width = widths[index + 1]
            Initialization.defaultUniform(heads.values(of: prefix + ".0.weight"), count: width * classes, fanIn: classes, using: &generator)
            Initialization.defaultUniform(heads.values(of: prefix + ".0.bias"), count: width, fanIn: classes, using: &generator)
            Initialization.batchNorm(weight: heads.values(of: prefix + ".1.weight"), bias: heads.values(of: prefix + ".1.bias"),
                                     channels: width)
        }
    }

    deinit {
        for matrix in classifierInputs + predictions {
            matrix.values.deallocate()
            matrix.gradients.deallocate()
        }
    }

    /// Exit `exit`'s prediction z_i `[n, classes]` of the last forward.
    public func prediction(exit: Int) -> UnsafeMutablePointer<Float> { predictions[exit].values }

    /// The OFA teacher of the last forward: the frozen backbone's last-exit logits `[n, classes]`.
    public var teacher: UnsafeMutablePointer<Float> { backbone.logits(exit: backbone.exitCount - 1) }

    /// Backbone forward (training: BatchNorm batch statistics, as the reference) and the heads.
    public func forward(images: UnsafePointer<Float>, count n: Int, training: Bool) {
        backbone.forward(images: images, count: n, training: training)
        forwardCount = n
        for exit in 0..<exitCount { forwardHead(exit: exit, count: n, training: training) }
    }

    /// Exit `exit`'s head on the backbone's pooled feature t_i of the last forward (and the ISC
    /// output of exit i - 1), then its ISC module for exit i + 1.
    func forwardHead(exit: Int, count n: Int, training: Bool) {
        let classes = classCount
        let weight = classifiers[exit].weight, bias = classifiers[exit].bias
        let pooled = backbone.pooledFeatures(exit: exit)
        if exit == 0 {
            Linear.forward(input: pooled, weight: weight, bias: bias, output: predictions[exit].values, batch: n,
                           inputFeatures: featureWidths[0], outputFeatures: classes, inputLayout: .featureMajor)
        } else {
            let width = featureWidths[exit]
            let input = classifierInputs[exit].values
            let collaborating = collaboration[exit - 1].output
            for row in 0..<n {
                let destination = input + row * 2 * width
                for feature in 0..<width { destination[feature] = pooled[feature * n + row] }
                (destination + width).update(from: collaborating + row * width, count: width)
            }
            Linear.forward(input: input, weight: weight, bias: bias, output: predictions[exit].values, batch: n,
                           inputFeatures: 2 * width, outputFeatures: classes)
        }
        if exit < exitCount - 1 {
            collaboration[exit].forward(prediction: predictions[exit].values, count: n, training: training, reducer: batchNormReducer)
        }
    }

    /// Backpropagates `predictions[i].gradients` through the heads (never into the frozen backbone),
    /// accumulating into `heads.gradients`.
    public func backward() {
        let n = forwardCount
        let classes = classCount
        for (position, exit) in stride(from: exitCount - 1, through: 0, by: -1).enumerated() {
            defer { gradientReadyObserver?.gradientsAreFinal(from: finalGradientBoundaries[position]) }
            let weight = classifiers[exit].weight
            let weightGradient = classifiers[exit].weightGradient, biasGradient = classifiers[exit].biasGradient
            if exit == 0 {
                Linear.backward(outputGradient: predictions[exit].gradients, input: backbone.pooledFeatures(exit: 0), weight: weight,
                                inputGradient: nil, weightGradient: weightGradient, biasGradient: biasGradient, batch: n,
                                inputFeatures: featureWidths[0], outputFeatures: classes, inputLayout: .featureMajor)
                continue
            }
            let width = featureWidths[exit]
            let input = classifierInputs[exit]
            input.gradients.update(repeating: 0, count: n * 2 * width)
            Linear.backward(outputGradient: predictions[exit].gradients, input: input.values, weight: weight,
                            inputGradient: input.gradients, weightGradient: weightGradient, biasGradient: biasGradient, batch: n,
                            inputFeatures: 2 * width, outputFeatures: classes)
            let module = collaboration[exit - 1]
            for row in 0..<n {
                (module.outputGradient + row * width).update(from: input.gradients + row * 2 * width + width, count: width)
            }
            module.backward(prediction: predictions[exit - 1].values,
                            predictionGradient: detachCollaboration ? nil : predictions[exit - 1].gradients,
                            count: n, reducer: batchNormReducer)
        }
    }

    /// Phase-II step: OFA loss (Eq. 6) over the heads' predictions, backward into the heads only.
    public func trainingStep(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, count n: Int) -> TrainingStepResult {
        forward(images: images, count: n, training: true)
        let classes = classCount
        for matrix in predictions { matrix.gradients.update(repeating: 0, count: n * classes) }
        let loss = distillation.lossAndGradients(logits: predictionValues, teacher: teacher, labels: labels, count: n, classes: classes,
                                                 gradients: predictionGradients, exitCrossEntropies: &exitLosses)
        heads.zeroGradients()
        backward()
        exitCorrect.removeAll(keepingCapacity: true)
        for matrix in predictions {
            exitCorrect.append(Self.correctCount(logits: matrix.values, labels: labels, count: n, classes: classes))
        }
        return TrainingStepResult(loss: loss, exitLosses: exitLosses, exitCorrect: exitCorrect)
    }

    public func predict(images: UnsafePointer<Float>, count n: Int, logits: [UnsafeMutablePointer<Float>]) {
        forward(images: images, count: n, training: false)
        for exit in 0..<exitCount {
            logits[exit].update(from: predictions[exit].values, count: n * classCount)
        }
    }
}

/// A Linear layer's weight, bias and their gradients in a parameter arena (`<prefix>.weight`,
/// `<prefix>.bias`), looked up by name once rather than on every pass.
struct LinearParameters {
    let weight: UnsafeMutablePointer<Float>
    let weightGradient: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>
    let biasGradient: UnsafeMutablePointer<Float>

    init(_ arena: ParameterArena, prefix: String) {
        weight = arena.values(of: prefix + ".weight")
        weightGradient = arena.gradients(of: prefix + ".weight")
        bias = arena.values(of: prefix + ".bias")
        biasGradient = arena.gradients(of: prefix + ".bias")
    }
}
