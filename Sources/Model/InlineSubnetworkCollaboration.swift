/// One Inline Subnetwork Collaboration module (Li et al., ICCV 2019, Sec. 3.2), the reference's
/// `isc_modules[j] = Sequential(Linear(classes, width), BatchNorm1d(width), ReLU)`: it turns exit
/// j's prediction into a feature `f_j = ReLU(BN(W z_j + b))` `[n, width]` that exit j + 1's
/// classifier reads next to its own pooled feature, so later exits build on earlier ones.
///
/// Parameters live in the owning network's arena under `isc_modules.<j>.0.*` (Linear) and
/// `isc_modules.<j>.1.*` (BatchNorm1d); activations are allocated once for the largest batch.
///
/// The module runs in Double from the Linear's products to the ReLU mask, forward and backward:
/// with a per-rank batch of 2-3 (a 256 batch on 128 ranks) the BatchNorm normalises
/// `x - mean = (x1 - x2) / 2`, a small difference of two large Linear outputs, so rounding them to
/// Float first leaves errors of 1e-4 relative in the features (the reference in float32 fares no
/// better); and its input gradient cancels to `1 - xhat^2 = eps / (var + eps)`. The cost is small:
/// `n * classes * width` products per module.
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
    /// `W z + b` `[n, width]`, the BatchNorm input, kept in Double (see the type's comment).
    private let preActivation: UnsafeMutablePointer<Double>
    private let preActivationGradient: UnsafeMutablePointer<Double>
    /// Per feature: the batch mean, then `1 / sqrt(var + eps)`.
    private let statistics: UnsafeMutablePointer<Double>
    /// Two sets of per-feature column sums `[2, width]` (see `columnSums`), and their Float copy
    /// with the row count after it `[width + 1]`, which the replicas sum: planned here so that a
    /// step allocates nothing.
    private let sums: UnsafeMutablePointer<Double>
    private let sharedSums: UnsafeMutablePointer<Float>
    /// `f` `[n, width]` and dL/df.
    let output: UnsafeMutablePointer<Float>
    let outputGradient: UnsafeMutablePointer<Float>
    static let epsilon = 1e-5
    static let momentum = 0.1

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
        sums = .allocate(capacity: 2 * width)
        sharedSums = .allocate(capacity: width + 1)
        preActivation.initialize(repeating: 0, count: count)
        preActivationGradient.initialize(repeating: 0, count: count)
        output.initialize(repeating: 0, count: count)
        outputGradient.initialize(repeating: 0, count: count)
        statistics.initialize(repeating: 0, count: 2 * width)
        sums.initialize(repeating: 0, count: 2 * width)
        sharedSums.initialize(repeating: 0, count: width + 1)
    }

    deinit {
        preActivation.deallocate()
        preActivationGradient.deallocate()
        output.deallocate()
        outputGradient.deallocate()
        statistics.deallocate()
        sums.deallocate()
        sharedSums.deallocate()
    }

    /// `output = ReLU(BN(W prediction + b))` for `prediction` `[n, classes]`, in Double: training
    /// normalises with the batch statistics (biased variance; running statistics updated with the
    /// unbiased one, momentum 0.1, as `nn.BatchNorm1d`), evaluation with the running ones.
    func forward(prediction: UnsafePointer<Float>, count n: Int, training: Bool, reducer: CrossReplicaReducer?) {
        for row in 0..<n {
            for feature in 0..<width {
                preActivation[row * width + feature] = Double(linear.bias[feature])
                    + VectorReduction.dot(prediction + row * classes, linear.weight + feature * classes, count: classes)
            }
        }
        let means = statistics, inverseDeviations = statistics + width
        if training {
            var total = Double(n)
            columnSums(into: means, count: n, reducer: reducer, total: &total) { row, feature in self.preActivation[row * width + feature] }
            for feature in 0..<width { means[feature] /= total }
            let squares = sums
            columnSums(into: squares, count: n, reducer: reducer, total: &total) { row, feature in
                let deviation = self.preActivation[row * width + feature] - means[feature]
                return deviation * deviation
            }
            let unbiasing = total > 1 ? total / (total - 1) : 1
            for feature in 0..<width {
                let variance = squares[feature] / total
                inverseDeviations[feature] = 1 / (variance + Self.epsilon).squareRoot()
                runningMean[feature] = Float((1 - Self.momentum) * Double(runningMean[feature]) + Self.momentum * means[feature])
                runningVariance[feature] = Float((1 - Self.momentum) * Double(runningVariance[feature])
                    + Self.momentum * variance * unbiasing)
            }
            batchesTracked.pointee += 1
        } else {
            for feature in 0..<width {
                means[feature] = Double(runningMean[feature])
                inverseDeviations[feature] = 1 / (Double(runningVariance[feature]) + Self.epsilon).squareRoot()
            }
        }
        for row in 0..<n {
            for feature in 0..<width {
                output[row * width + feature] = Float(max(normalized(row: row, feature: feature), 0))
            }
        }
    }

    /// `BN(W z + b)` of one element, before the ReLU, from the statistics of the last forward.
    @inline(__always)
    private func normalized(row: Int, feature: Int) -> Double {
        (preActivation[row * width + feature] - statistics[feature]) * statistics[width + feature]
            * Double(batchNormWeight[feature]) + Double(batchNormBias[feature])
    }

    /// Writes to `destination[feature]` the `sum over rows of value(row, feature)` over this rank's
    /// `count` rows, then over all replicas when a `reducer` is given (which also sums `total`,
    /// the rows).
    private func columnSums(into destination: UnsafeMutablePointer<Double>, count n: Int, reducer: CrossReplicaReducer?,
                            total: inout Double, _ value: (Int, Int) -> Double) {
        destination.update(repeating: 0, count: width)
        for row in 0..<n {
            for feature in 0..<width { destination[feature] += value(row, feature) }
        }
        guard let reducer else { return }
        for feature in 0..<width { sharedSums[feature] = Float(destination[feature]) }
        sharedSums[width] = Float(n)
        reducer.sumInPlace(UnsafeMutableBufferPointer(start: sharedSums, count: width + 1))
        total = Double(sharedSums[width])
        for feature in 0..<width { destination[feature] = Double(sharedSums[feature]) }
    }

    /// Backward from `outputGradient` (training statistics), in Double, accumulating parameter
    /// gradients and, when `predictionGradient` is non-nil (the reference: ISC does not detach),
    /// dL/dprediction:
    /// `dx = (g - mean(g) - xhat mean(g xhat)) gamma invstd` with `g = df [BN > 0]`, then the Linear's.
    func backward(prediction: UnsafePointer<Float>, predictionGradient: UnsafeMutablePointer<Float>?, count n: Int,
                  reducer: CrossReplicaReducer?) {
        func masked(_ row: Int, _ feature: Int) -> Double {
            normalized(row: row, feature: feature) > 0 ? Double(outputGradient[row * width + feature]) : 0
        }
        func centered(_ row: Int, _ feature: Int) -> Double { preActivation[row * width + feature] - statistics[feature] }
        var total = Double(n)
        let gradientSums = sums, centeredSums = sums + width
        // This rank's sums for the parameter gradients (averaged across ranks later), then the
        // replicas' for the input gradient, in the same two rows.
        columnSums(into: gradientSums, count: n, reducer: nil, total: &total) { masked($0, $1) }
        columnSums(into: centeredSums, count: n, reducer: nil, total: &total) { masked($0, $1) * centered($0, $1) }
        for feature in 0..<width {
            let inverseDeviation = statistics[width + feature]
            batchNormBiasGradient[feature] = Float(Double(batchNormBiasGradient[feature]) + gradientSums[feature])
            batchNormWeightGradient[feature] = Float(Double(batchNormWeightGradient[feature])
                + centeredSums[feature] * inverseDeviation)
        }
        columnSums(into: gradientSums, count: n, reducer: reducer, total: &total) { masked($0, $1) }
        columnSums(into: centeredSums, count: n, reducer: reducer, total: &total) { masked($0, $1) * centered($0, $1) }
        for row in 0..<n {
            for feature in 0..<width {
                let inverseDeviation = statistics[width + feature]
                let k = centeredSums[feature] / total * inverseDeviation * inverseDeviation
                preActivationGradient[row * width + feature] = (masked(row, feature) - gradientSums[feature] / total
                    - centered(row, feature) * k) * Double(batchNormWeight[feature]) * inverseDeviation
            }
        }
        for feature in 0..<width {
            var biasGradient = Double(linear.biasGradient[feature])
            for row in 0..<n { biasGradient += preActivationGradient[row * width + feature] }
            linear.biasGradient[feature] = Float(biasGradient)
            for input in 0..<classes {
                var weightGradient = Double(linear.weightGradient[feature * classes + input])
                for row in 0..<n { weightGradient += preActivationGradient[row * width + feature] * Double(prediction[row * classes + input]) }
                linear.weightGradient[feature * classes + input] = Float(weightGradient)
            }
        }
        guard let predictionGradient else { return }
        for row in 0..<n {
            for input in 0..<classes {
                var gradient = Double(predictionGradient[row * classes + input])
                for feature in 0..<width { gradient += preActivationGradient[row * width + feature] * Double(linear.weight[feature * classes + input]) }
                predictionGradient[row * classes + input] = Float(gradient)
            }
        }
    }
}
