import Foundation

/// Where channel `c`'s `m`-th element lives: `c * channelStride + m * elementStride`.
/// Channel-major `[C, N, H, W]` (BatchNorm2d) has contiguous rows; row-major `[N, F]`
/// (BatchNorm1d) has stride `F` between a feature's elements.
struct BatchNormLayout {
    var channels: Int
    var count: Int
    var channelStride: Int
    var elementStride: Int
}

/// 2-D batch normalisation (PyTorch `nn.BatchNorm2d`, affine, `track_running_stats`) over
/// channel-major activations `[C, N, H, W]`, i.e. `C` contiguous rows of `count = N*H*W` values,
/// with an optional fused ReLU.
///
/// Training: `y = gamma * (x - mean) / sqrt(var + eps) + beta` with the batch mean and the BIASED
/// batch variance; running statistics `r = (1 - momentum) * r + momentum * s` with the UNBIASED
/// variance `var * M / (M - 1)`. Inference: the same formula with the running statistics.
public enum BatchNorm2d {
    /// Training-mode forward. `output` (may alias `input`) is OVERWRITTEN with
    /// `relu ? max(0, y) : y`. Writes the batch mean and `1 / sqrt(var + eps)` per channel to
    /// `savedMean` and `savedInverseStandardDeviation` (needed by `backward`), and updates
    /// `runningMean` / `runningVariance` when they are non-nil. With a `reducer` the statistics
    /// are those of the batch summed over all replicas (synchronised BN). `scratch`, if given,
    /// holds `2 * channels + 1` Doubles used instead of a temporary allocation (on the heap
    /// beyond 64 channels).
    public static func forwardTraining(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                       weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                       runningMean: UnsafeMutablePointer<Float>?,
                                       runningVariance: UnsafeMutablePointer<Float>?,
                                       savedMean: UnsafeMutablePointer<Float>,
                                       savedInverseStandardDeviation: UnsafeMutablePointer<Float>,
                                       channels: Int, count: Int, relu: Bool = false,
                                       momentum: Float = 0.1, epsilon: Float = 1e-5,
                                       reducer: CrossReplicaReducer? = nil, scratch: UnsafeMutablePointer<Double>? = nil) {
        BatchNormKernels.forwardTraining(
            input: input, output: output, weight: weight, bias: bias,
            runningMean: runningMean, runningVariance: runningVariance,
            savedMean: savedMean, savedInverseStandardDeviation: savedInverseStandardDeviation,
            layout: BatchNormLayout(channels: channels, count: count, channelStride: count, elementStride: 1),
            relu: relu, momentum: momentum, epsilon: epsilon, summation: BatchNormSummation(reducer: reducer), scratch: scratch)
    }

    /// Evaluation-mode forward with the running statistics; `output` (may alias `input`) is
    /// OVERWRITTEN.
    public static func forwardInference(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                        runningMean: UnsafePointer<Float>, runningVariance: UnsafePointer<Float>,
                                        channels: Int, count: Int, relu: Bool = false, epsilon: Float = 1e-5) {
        BatchNormKernels.forwardInference(
            input: input, output: output, weight: weight, bias: bias,
            runningMean: runningMean, runningVariance: runningVariance,
            layout: BatchNormLayout(channels: channels, count: count, channelStride: count, elementStride: 1),
            relu: relu, epsilon: epsilon)
    }

    /// Backward of `forwardTraining` (batch statistics), ACCUMULATING into every non-nil
    /// gradient. `input`, `weight`, `bias`, `savedMean`, `savedInverseStandardDeviation`, `relu`
    /// and `reducer` are those of the forward call (the ReLU mask is recomputed from them).
    /// With `g = dy * [y > 0]` and `xhat = (x - mean) * invstd`:
    /// `dbeta += sum g`, `dgamma += sum g*xhat`,
    /// `dx += gamma * invstd * (g - sum(g)/M - xhat * sum(g*xhat)/M)`. `scratch` as for `forwardTraining`.
    public static func backward(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                savedMean: UnsafePointer<Float>,
                                savedInverseStandardDeviation: UnsafePointer<Float>,
                                inputGradient: UnsafeMutablePointer<Float>?,
                                weightGradient: UnsafeMutablePointer<Float>?,
                                biasGradient: UnsafeMutablePointer<Float>?,
                                channels: Int, count: Int, relu: Bool = false,
                                reducer: CrossReplicaReducer? = nil, scratch: UnsafeMutablePointer<Double>? = nil) {
        BatchNormKernels.backward(
            outputGradient: outputGradient, input: input, weight: weight, bias: bias,
            savedMean: savedMean, savedInverseStandardDeviation: savedInverseStandardDeviation,
            inputGradient: inputGradient, weightGradient: weightGradient, biasGradient: biasGradient,
            layout: BatchNormLayout(channels: channels, count: count, channelStride: count, elementStride: 1),
            relu: relu, summation: BatchNormSummation(reducer: reducer), scratch: scratch)
    }
}

/// 1-D batch normalisation (PyTorch `nn.BatchNorm1d` on a 2-D input) over row-major
/// activations `[N, F]`: each feature is normalised over the batch. Same formulas, running
/// statistics and fused ReLU as `BatchNorm2d` (used by IMTA's ISC modules).
public enum BatchNorm1d {
    /// Training-mode forward; see `BatchNorm2d.forwardTraining`.
    public static func forwardTraining(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                       weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                       runningMean: UnsafeMutablePointer<Float>?,
                                       runningVariance: UnsafeMutablePointer<Float>?,
                                       savedMean: UnsafeMutablePointer<Float>,
                                       savedInverseStandardDeviation: UnsafeMutablePointer<Float>,
                                       batch: Int, features: Int, relu: Bool = false,
                                       momentum: Float = 0.1, epsilon: Float = 1e-5,
                                       reducer: CrossReplicaReducer? = nil) {
        BatchNormKernels.forwardTraining(
            input: input, output: output, weight: weight, bias: bias,
            runningMean: runningMean, runningVariance: runningVariance,
            savedMean: savedMean, savedInverseStandardDeviation: savedInverseStandardDeviation,
            layout: BatchNormLayout(channels: features, count: batch, channelStride: 1, elementStride: features),
            relu: relu, momentum: momentum, epsilon: epsilon, summation: BatchNormSummation(reducer: reducer))
    }

    /// Evaluation-mode forward; see `BatchNorm2d.forwardInference`.
    public static func forwardInference(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                        runningMean: UnsafePointer<Float>, runningVariance: UnsafePointer<Float>,
                                        batch: Int, features: Int, relu: Bool = false, epsilon: Float = 1e-5) {
        BatchNormKernels.forwardInference(
            input: input, output: output, weight: weight, bias: bias,
            runningMean: runningMean, runningVariance: runningVariance,
            layout: BatchNormLayout(channels: features, count: batch, channelStride: 1, elementStride: features),
            relu: relu, epsilon: epsilon)
    }

    /// Backward of `forwardTraining`, accumulating; see `BatchNorm2d.backward`. `epsilon` is the
    /// forward's. Without a `reducer` it runs in Double from statistics recomputed in Double (see
    /// `BatchNormKernels.backwardInDouble`).
    public static func backward(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                savedMean: UnsafePointer<Float>,
                                savedInverseStandardDeviation: UnsafePointer<Float>,
                                inputGradient: UnsafeMutablePointer<Float>?,
                                weightGradient: UnsafeMutablePointer<Float>?,
                                biasGradient: UnsafeMutablePointer<Float>?,
                                batch: Int, features: Int, relu: Bool = false, epsilon: Float = 1e-5,
                                reducer: CrossReplicaReducer? = nil) {
        let layout = BatchNormLayout(channels: features, count: batch, channelStride: 1, elementStride: features)
        if reducer == nil {
            BatchNormKernels.backwardInDouble(
                outputGradient: outputGradient, input: input, weight: weight, bias: bias,
                inputGradient: inputGradient, weightGradient: weightGradient, biasGradient: biasGradient,
                layout: layout, relu: relu, epsilon: epsilon)
            return
        }
        BatchNormKernels.backward(
            outputGradient: outputGradient, input: input, weight: weight, bias: bias,
            savedMean: savedMean, savedInverseStandardDeviation: savedInverseStandardDeviation,
            inputGradient: inputGradient, weightGradient: weightGradient, biasGradient: biasGradient,
            layout: layout, relu: relu, summation: BatchNormSummation(reducer: reducer))
    }
}

/// The shared implementation of `BatchNorm2d` and `BatchNorm1d`.
enum BatchNormKernels {
    /// The per-channel affine map `y = x * scale + shift` that both forward and backward use, so
    /// the ReLU mask recomputed in backward is bit-identical to the forward's.
    @inline(__always)
    static func affine(weight: Float, bias: Float, mean: Float, inverseStandardDeviation: Float) -> (scale: Float, shift: Float) {
        let scale = weight * inverseStandardDeviation
        return (scale, bias - mean * scale)
    }

    /// `body` on `count` Doubles: `scratch` when given, else a temporary allocation.
    @inline(__always)
    static func withScratch(_ scratch: UnsafeMutablePointer<Double>?, count: Int, _ body: (UnsafeMutablePointer<Double>) -> Void) {
        if let scratch { return body(scratch) }
        withUnsafeTemporaryAllocation(of: Double.self, capacity: count) { body($0.baseAddress!) }
    }

    static func forwardTraining(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                runningMean: UnsafeMutablePointer<Float>?,
                                runningVariance: UnsafeMutablePointer<Float>?,
                                savedMean: UnsafeMutablePointer<Float>,
                                savedInverseStandardDeviation: UnsafeMutablePointer<Float>,
                                layout: BatchNormLayout, relu: Bool, momentum: Float, epsilon: Float,
                                summation: BatchNormSummation, scratch: UnsafeMutablePointer<Double>? = nil) {
        let channels = layout.channels
        var totalCount = Double(layout.count)
        // Statistics in Double (the mean is not rounded before the deviations are taken), as
        // PyTorch's CPU BatchNorm accumulates them.
        withScratch(scratch, count: 2 * channels + 1) { means in
            let variances = means + channels
            if layout.elementStride == 1 && summation.reducer == nil {
                totalCount = rowMoments(input, layout: layout, means: means, variances: variances, summation: summation)
            } else if summation.isLocal {
                ComputeThreads.parallelFor(channels, costPerItem: 2 * layout.count) { range in
                    for c in range {
                        means[c] = rowSum(input, layout: layout, channel: c) / totalCount
                        variances[c] = rowSquaredDeviations(input, layout: layout, channel: c, center: means[c]) / totalCount
                    }
                }
            } else {
                // Two sums (of the values, then of the squared deviations about the whole batch's
                // mean) keep the variance free of the cancellation of E[x^2] - E[x]^2. The first
                // carries the image count after the channels, in the variances' first slot.
                ComputeThreads.parallelFor(channels, costPerItem: layout.count) { range in
                    for c in range { means[c] = rowSum(input, layout: layout, channel: c) }
                }
                means[channels] = Double(layout.count)
                summation.sumInPlace(means, count: channels + 1)
                totalCount = means[channels]
                for c in 0..<channels { means[c] /= totalCount }
                ComputeThreads.parallelFor(channels, costPerItem: layout.count) { range in
                    for c in range { variances[c] = rowSquaredDeviations(input, layout: layout, channel: c, center: means[c]) }
                }
                summation.sumInPlace(variances, count: channels)
                for c in 0..<channels { variances[c] /= totalCount }
            }
            let unbiasing = totalCount > 1 ? totalCount / (totalCount - 1) : 1
            let keep = 1 - Double(momentum)
            for c in 0..<channels {
                savedMean[c] = Float(means[c])
                if let runningMean { runningMean[c] = Float(keep * Double(runningMean[c]) + Double(momentum) * means[c]) }
                if let runningVariance {
                    runningVariance[c] = Float(keep * Double(runningVariance[c]) + Double(momentum) * variances[c] * unbiasing)
                }
                savedInverseStandardDeviation[c] = Float(1 / (variances[c] + Double(epsilon)).squareRoot())
            }
            if layout.elementStride != 1 && summation.isLocal {
                // BatchNorm1d over a small batch: normalised in Double, as `backwardInDouble` differentiates it.
                for c in 0..<channels {
                    let invstd = 1 / (variances[c] + Double(epsilon)).squareRoot()
                    for m in 0..<layout.count {
                        let index = c * layout.channelStride + m * layout.elementStride
                        let value = Float(doubleAffine(input[index], mean: means[c], invstd: invstd, weight: weight[c], bias: bias[c]))
                        output[index] = relu ? max(value, 0) : value
                    }
                }
            }
        }
        if layout.elementStride != 1 && summation.isLocal { return }
        ComputeThreads.parallelFor(channels, costPerItem: layout.count) { range in
            for c in range {
                let (scale, shift) = affine(weight: weight[c], bias: bias[c], mean: savedMean[c],
                                            inverseStandardDeviation: savedInverseStandardDeviation[c])
                applyAffine(input, output, layout: layout, channel: c, scale: scale, shift: shift, relu: relu)
            }
        }
    }

    static func forwardInference(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                 weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                 runningMean: UnsafePointer<Float>, runningVariance: UnsafePointer<Float>,
                                 layout: BatchNormLayout, relu: Bool, epsilon: Float) {
        ComputeThreads.parallelFor(layout.channels, costPerItem: layout.count) { range in
            for c in range {
                let (scale, shift) = affine(weight: weight[c], bias: bias[c], mean: runningMean[c],
                                            inverseStandardDeviation: 1 / (runningVariance[c] + epsilon).squareRoot())
                applyAffine(input, output, layout: layout, channel: c, scale: scale, shift: shift, relu: relu)
            }
        }
    }

    static func backward(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>,
                         weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                         savedMean: UnsafePointer<Float>, savedInverseStandardDeviation: UnsafePointer<Float>,
                         inputGradient: UnsafeMutablePointer<Float>?,
                         weightGradient: UnsafeMutablePointer<Float>?,
                         biasGradient: UnsafeMutablePointer<Float>?,
                         layout: BatchNormLayout, relu: Bool, summation: BatchNormSummation,
                         scratch: UnsafeMutablePointer<Double>? = nil) {
        let channels = layout.channels
        withScratch(scratch, count: 2 * channels + 1) { sums in
            // sums[c] = sum(g), sums[C + c] = sum(g * (x - mean)) for channel c, in Double.
            ComputeThreads.parallelFor(channels, costPerItem: layout.count) { range in
                for c in range {
                    let (scale, shift) = affine(weight: weight[c], bias: bias[c], mean: savedMean[c],
                                                inverseStandardDeviation: savedInverseStandardDeviation[c])
                    (sums[c], sums[channels + c]) = gradientSums(
                        outputGradient, input, layout: layout, channel: c, mean: savedMean[c],
                        scale: scale, shift: shift, relu: relu)
                }
            }
            // Parameter gradients are this replica's share; the gradient all-reduce sums them.
            for c in 0..<channels {
                if let biasGradient { biasGradient[c] = Float(Double(biasGradient[c]) + sums[c]) }
                if let weightGradient {
                    weightGradient[c] = Float(Double(weightGradient[c]) + sums[channels + c] * Double(savedInverseStandardDeviation[c]))
                }
            }
            sums[2 * channels] = Double(layout.count)
            if !summation.isLocal { summation.sumInPlace(sums, count: 2 * channels + 1) }
            let totalCount = sums[2 * channels]
            guard let inputGradient else { return }
            ComputeThreads.parallelFor(channels, costPerItem: layout.count) { range in
                for c in range {
                    let inverseStandardDeviation = savedInverseStandardDeviation[c]
                    let (scale, shift) = affine(weight: weight[c], bias: bias[c], mean: savedMean[c],
                                                inverseStandardDeviation: inverseStandardDeviation)
                    // PyTorch's order: dx = (g - mean(g) - (x - mean) * k) * scale,
                    // k = mean(g * (x - mean)) * invstd^2, the means taken in Double.
                    let invstd = Double(inverseStandardDeviation)
                    accumulateInputGradient(outputGradient, input, inputGradient, layout: layout, channel: c,
                                            mean: savedMean[c], scale: scale, shift: shift, relu: relu,
                                            gradientMean: Float(sums[c] / totalCount),
                                            centeredCoefficient: Float(sums[channels + c] / totalCount * invstd * invstd))
                }
            }
        }
    }

    /// `backward` for a small batch, every operation in Double, the mean and `1 / sqrt(var + eps)`
    /// recomputed in Double from `input` exactly as the forward computed them (the forward of a
    /// BatchNorm1d without a reducer normalises in Double too, so the ReLU mask is the forward's). At a batch of 2-3, as ISC's BatchNorm1d sees on many ranks, the input
    /// gradient `(g - mean(g) - xhat mean(g xhat)) scale` cancels to `(1 - xhat^2)`, which is
    /// `eps / (var + eps)`, 1e-5 for a feature of unit spread: Float rounding of `xhat` or of the
    /// statistics then leaves only a few correct digits, while Double leaves ten.
    static func backwardInDouble(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                 weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                 inputGradient: UnsafeMutablePointer<Float>?,
                                 weightGradient: UnsafeMutablePointer<Float>?,
                                 biasGradient: UnsafeMutablePointer<Float>?,
                                 layout: BatchNormLayout, relu: Bool, epsilon: Float) {
        let count = layout.count, stride = layout.elementStride
        let total = Double(count)
        for c in 0..<layout.channels {
            let x = input + c * layout.channelStride, dy = outputGradient + c * layout.channelStride
            // The forward's statistics, bit for bit (same loops, same order).
            let mean = rowSum(input, layout: layout, channel: c) / total
            let variance = rowSquaredDeviations(input, layout: layout, channel: c, center: mean) / total
            let invstd = 1 / (variance + Double(epsilon)).squareRoot()
            func g(_ m: Int) -> Double {
                let positive = doubleAffine(x[m * stride], mean: mean, invstd: invstd, weight: weight[c], bias: bias[c]) > 0
                return relu && !positive ? 0 : Double(dy[m * stride])
            }
            var gradientSum = 0.0, centeredSum = 0.0
            for m in 0..<count {
                gradientSum += g(m)
                centeredSum += g(m) * (Double(x[m * stride]) - mean)
            }
            if let biasGradient { biasGradient[c] = Float(Double(biasGradient[c]) + gradientSum) }
            if let weightGradient { weightGradient[c] = Float(Double(weightGradient[c]) + centeredSum * invstd) }
            guard let inputGradient else { continue }
            let gradientMean = gradientSum / total, k = centeredSum / total * invstd * invstd
            let factor = Double(weight[c]) * invstd
            let dx = inputGradient + c * layout.channelStride
            for m in 0..<count {
                dx[m * stride] = Float(Double(dx[m * stride]) + (g(m) - gradientMean - (Double(x[m * stride]) - mean) * k) * factor)
            }
        }
    }

    /// `(x - mean) * invstd * weight + bias` in Double.
    @inline(__always)
    static func doubleAffine(_ x: Float, mean: Double, invstd: Double, weight: Float, bias: Float) -> Double {
        (Double(x) - mean) * invstd * Double(weight) + Double(bias)
    }

    /// The batch mean and biased variance of every channel of contiguous rows, over this call's
    /// images and the other image shards' (`summation.rendezvous`), into `means` and `variances`;
    /// returns the number of values per channel over all shards.
    ///
    /// One pass per row: the sums of `x - K` and `(x - K)^2` about the row's first value `K` give
    /// the mean `K + S1/n` and the squared deviations `M2 = S2 - S1^2/n`; `K` lies within the data,
    /// so in Double the difference loses nothing a Float keeps. Shards merge their `(mean, M2, n)`
    /// in shard order by Chan, Golub and LeVeque's pairwise update,
    /// `M2 = M2_a + M2_b + delta^2 * n_a * n_b / n`, `mean = mean_a + delta * n_b / n`.
    static func rowMoments(_ x: UnsafePointer<Float>, layout: BatchNormLayout, means: UnsafeMutablePointer<Double>,
                           variances: UnsafeMutablePointer<Double>, summation: BatchNormSummation) -> Double {
        let channels = layout.channels, count = layout.count
        let kernels = ComputeKernels.selected
        ComputeThreads.parallelFor(channels, costPerItem: count) { range in
            for c in range {
                let row = x + c * layout.channelStride
                let shift = Double(row[0])
                var sum = 0.0, squares = 0.0
                kernels.rowShiftedMoments(row, count, shift, &sum, &squares)
                means[c] = shift + sum / Double(count)
                variances[c] = squares - sum * sum / Double(count)
            }
        }
        // The merged vector: means, squared deviations, then the count (`variances` holds the
        // squared deviations until the end, the count one past them).
        means[2 * channels] = Double(count)
        if let rendezvous = summation.rendezvous {
            rendezvous.combine(means, count: 2 * channels + 1, shard: summation.shard) { merged, next in
                let countA = merged[2 * channels], countB = next[2 * channels], total = countA + countB
                for c in 0..<channels {
                    let delta = next[c] - merged[c]
                    merged[c] += delta * countB / total
                    merged[channels + c] += next[channels + c] + delta * delta * countA * countB / total
                }
                merged[2 * channels] = total
            }
        }
        let total = means[2 * channels]
        for c in 0..<channels { variances[c] /= total }
        return total
    }

    // MARK: Per-channel loops

    @inline(__always)
    static func rowSum(_ x: UnsafePointer<Float>, layout: BatchNormLayout, channel: Int) -> Double {
        let row = x + channel * layout.channelStride
        if layout.elementStride == 1 { return ComputeKernels.selected.rowSum(row, layout.count) }
        var total = 0.0
        for m in 0..<layout.count { total += Double(row[m * layout.elementStride]) }
        return total
    }

    @inline(__always)
    static func rowSquaredDeviations(_ x: UnsafePointer<Float>, layout: BatchNormLayout, channel: Int, center: Double) -> Double {
        let row = x + channel * layout.channelStride
        if layout.elementStride == 1 { return ComputeKernels.selected.rowSquaredDeviations(row, layout.count, center) }
        var total = 0.0
        for m in 0..<layout.count {
            let d = Double(row[m * layout.elementStride]) - center
            total += d * d
        }
        return total
    }

    @inline(__always)
    static func applyAffine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, layout: BatchNormLayout,
                            channel: Int, scale: Float, shift: Float, relu: Bool) {
        let source = x + channel * layout.channelStride
        let destination = y + channel * layout.channelStride
        let stride = layout.elementStride
        if stride == 1 {
            ComputeKernels.selected.rowAffine(source, destination, layout.count, scale, shift, relu ? 1 : 0)
        } else {
            for m in 0..<layout.count {
                let value = source[m * stride] * scale + shift
                destination[m * stride] = relu ? max(value, 0) : value
            }
        }
    }

    /// `(sum g, sum g * (x - mean))` with `g = dy * [x * scale + shift > 0]` (mask only with
    /// relu), accumulated in Double.
    @inline(__always)
    static func gradientSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, layout: BatchNormLayout,
                             channel: Int, mean: Float, scale: Float, shift: Float, relu: Bool) -> (Double, Double) {
        let offset = channel * layout.channelStride
        let gradientRow = dy + offset
        let inputRow = x + offset
        let stride = layout.elementStride
        var gradientTotal = 0.0
        var centeredTotal = 0.0
        let center = Double(mean)
        if stride == 1 {
            ComputeKernels.selected.rowGradientSums(gradientRow, inputRow, layout.count, scale, shift, center, relu ? 1 : 0,
                                                     &gradientTotal, &centeredTotal)
            return (gradientTotal, centeredTotal)
        }
        var m = 0
        while m < layout.count {
            let value = inputRow[m * stride]
            var g = gradientRow[m * stride]
            if relu && !(value * scale + shift > 0) { g = 0 }
            gradientTotal += Double(g)
            centeredTotal += Double(g) * (Double(value) - center)
            m += 1
        }
        return (gradientTotal, centeredTotal)
    }

    /// `dx += (g - gradientMean - (x - mean) * centeredCoefficient) * scale` with `g` masked as
    /// in `gradientSums` (PyTorch's CPU kernel's order of operations).
    @inline(__always)
    static func accumulateInputGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                        _ dx: UnsafeMutablePointer<Float>, layout: BatchNormLayout,
                                        channel: Int, mean: Float, scale: Float, shift: Float, relu: Bool,
                                        gradientMean: Float, centeredCoefficient: Float) {
        let offset = channel * layout.channelStride
        let gradientRow = dy + offset
        let inputRow = x + offset
        let destination = dx + offset
        let stride = layout.elementStride
        if stride == 1 {
            ComputeKernels.selected.rowInputGradient(gradientRow, inputRow, destination, layout.count, mean, scale, shift, relu ? 1 : 0,
                                                      gradientMean, centeredCoefficient)
            return
        }
        var m = 0
        while m < layout.count {
            let value = inputRow[m * stride]
            var g = gradientRow[m * stride]
            if relu && !(value * scale + shift > 0) { g = 0 }
            destination[m * stride] += (g - gradientMean - (value - mean) * centeredCoefficient) * scale
            m += 1
        }
    }
}
