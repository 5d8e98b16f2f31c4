/// One Inline Subnetwork Collaboration module (Li et al., ICCV 2019, Sec. 3.2), the reference's
/// `isc_modules[j] = Sequential(Linear(classes, width), BatchNorm1d(width), ReLU)`: it turns exit
/// j's prediction into a feature `f_j = ReLU(BN(W z_j + b))` `[n, width]` that exit j + 1's
/// classifier reads next to its own pooled feature, so later exits build on earlier ones.
///
/// Parameters live in the owning network's arena under `isc_modules.<j>.0.*` (Linear) and
/// `isc_modules.<j>.1.*` (BatchNorm1d); activations are allocated once for the largest batch.
final class InlineSubnetworkCollaborationModule {
    let classes: Int
    let width: Int
    private let linear: LinearParameters
    private let batchNormWeight: UnsafeMutablePointer<Float>
    private let batchNormWeightGradient: UnsafeMutablePointer<Float>
    private let batchNormBias: UnsafeMutablePointer<Float>
    private let batchNormBiasGradient: UnsafeMutablePointer<Float>
    private let runningMean: UnsafeMutablePointer<Float>
    private let runningVariance: UnsafeMutablePointer<Float>
    private let batchesTracked: UnsafeMutablePointer<Int64>
    /// `W z + b` `[n, width]`, the BatchNorm input.
    private let preActivation: UnsafeMutablePointer<Float>
    private let preActivationGradient: UnsafeMutablePointer<Float>
    private let statistics: UnsafeMutablePointer<Float>
    /// `f` `[n, width]` and dL/df.
    let output: UnsafeMutablePointer<Float>
    let outputGradient: UnsafeMutablePointer<Float>

    static func parameterTensors(index: Int, classes: Int, width: Int) -> [(name: String, shape: [Int])] {
        let prefix = "isc_modules.\(index)"
        return [(prefix + ".0.weight", [width, classes]), (prefix + ".0.bias", [width]),
                (prefix + ".1.weight", [width]), (prefix + ".1.bias", [width])]
    }

    static func batchNormLayer(index: Int, width: Int) -> (prefix: String, channels: Int) {
        ("isc_modules.\(index).1", width)
    }

    init(index: Int, classes: Int, width: Int, parameters: ParameterArena, buffers: BufferArena, maximumBatchSize: Int) {
        let prefix = "isc_modules.\(index)"
        self.classes = classes
        self.width = width
        linear = LinearParameters(parameters, prefix: prefix + ".0")
        batchNormWeight = parameters.values(of: prefix + ".1.weight")
        batchNormWeightGradient = parameters.gradients(of: prefix + ".1.weight")
        batchNormBias = parameters.values(of: prefix + ".1.bias")
        batchNormBiasGradient = parameters.gradients(of: prefix + ".1.bias")
        runningMean = buffers.values(of: prefix + ".1.running_mean")
        runningVariance = buffers.values(of: prefix + ".1.running_var")
        guard let counter = buffers.counter(named: prefix + ".1.num_batches_tracked") else {
            preconditionFailure("no BatchNorm1d counter for \(prefix).1")
        }
        batchesTracked = counter
        let count = width * maximumBatchSize
        preActivation = .allocate(capacity: count)
        preActivationGradient = .allocate(capacity: count)
        output = .allocate(capacity: count)
        outputGradient = .allocate(capacity: count)
        statistics = .allocate(capacity: 2 * width)
        for pointer in [preActivation, preActivationGradient, output, outputGradient] { pointer.initialize(repeating: 0, count: count) }
        statistics.initialize(repeating: 0, count: 2 * width)
    }

    deinit {
        for pointer in [preActivation, preActivationGradient, output, outputGradient, statistics] { pointer.deallocate() }
    }

    /// `output = ReLU(BN(W prediction + b))` for `prediction` `[n, classes]`.
    func forward(prediction: UnsafePointer<Float>, count n: Int, training: Bool, reducer: CrossReplicaReducer?) {
        Linear.forward(input: prediction, weight: linear.weight, bias: linear.bias, output: preActivation,
                       batch: n, inputFeatures: classes, outputFeatures: width)
        if training {
            BatchNorm1d.forwardTraining(input: preActivation, output: output, weight: batchNormWeight, bias: batchNormBias,
                                        runningMean: runningMean, runningVariance: runningVariance, savedMean: statistics,
                                        savedInverseStandardDeviation: statistics + width, batch: n, features: width,
                                        relu: true, reducer: reducer)
            batchesTracked.pointee += 1
        } else {
            BatchNorm1d.forwardInference(input: preActivation, output: output, weight: batchNormWeight, bias: batchNormBias,
                                         runningMean: runningMean, runningVariance: runningVariance, batch: n, features: width,
                                         relu: true)
        }
    }

    /// Backward from `outputGradient`, accumulating parameter gradients and, when
    /// `predictionGradient` is non-nil (the reference: ISC does not detach), dL/dprediction.
    func backward(prediction: UnsafePointer<Float>, predictionGradient: UnsafeMutablePointer<Float>?, count n: Int,
                  reducer: CrossReplicaReducer?) {
        preActivationGradient.update(repeating: 0, count: n * width)
        BatchNorm1d.backward(outputGradient: outputGradient, input: preActivation, weight: batchNormWeight, bias: batchNormBias,
                             savedMean: statistics, savedInverseStandardDeviation: statistics + width,
                             inputGradient: preActivationGradient, weightGradient: batchNormWeightGradient,
                             biasGradient: batchNormBiasGradient, batch: n, features: width, relu: true, reducer: reducer)
        Linear.backward(outputGradient: preActivationGradient, input: prediction, weight: linear.weight,
                        inputGradient: predictionGradient, weightGradient: linear.weightGradient, biasGradient: linear.biasGradient,
                        batch: n, inputFeatures: classes, outputFeatures: width)
    }
}
