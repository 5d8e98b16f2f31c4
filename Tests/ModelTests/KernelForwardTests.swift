import XCTest
import Model

/// A deterministic generator for test data (SplitMix64).
struct KernelTestRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    mutating func uniform() -> Float {
        Float(Double(next() >> 11) / Double(1 << 53) * 2 - 1)
    }

    mutating func array(_ count: Int, scale: Float = 1, offset: Float = 0) -> [Float] {
        (0..<count).map { _ in uniform() * scale + offset }
    }

    mutating func index(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// Direct-loop Double reference of PyTorch's Conv2d on channel-major [C, N, H, W].
func referenceConvolution(_ input: [Float], _ weight: [Float], _ bias: [Float]?, _ g: ConvolutionGeometry) -> [Double] {
    var output = [Double](repeating: 0, count: g.outputCount)
    let k = g.kernelSize
    for co in 0..<g.outputChannels {
        for n in 0..<g.batch {
            for oy in 0..<g.outputHeight {
                for ox in 0..<g.outputWidth {
                    var total = Double(bias?[co] ?? 0)
                    for ci in 0..<g.inputChannels {
                        for ky in 0..<k {
                            for kx in 0..<k {
                                let iy = oy * g.stride - g.padding + ky
                                let ix = ox * g.stride - g.padding + kx
                                guard iy >= 0, iy < g.inputHeight, ix >= 0, ix < g.inputWidth else { continue }
                                let x = input[((ci * g.batch + n) * g.inputHeight + iy) * g.inputWidth + ix]
                                let w = weight[((co * g.inputChannels + ci) * k + ky) * k + kx]
                                total += Double(x) * Double(w)
                            }
                        }
                    }
                    output[((co * g.batch + n) * g.outputHeight + oy) * g.outputWidth + ox] = total
                }
            }
        }
    }
    return output
}

func assertClose(_ actual: [Float], _ expected: [Double], tolerance: Double, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, message, file: file, line: line)
    var worst = 0.0
    var worstIndex = 0
    for i in 0..<min(actual.count, expected.count) {
        let error = abs(Double(actual[i]) - expected[i]) / max(1, abs(expected[i]))
        if error > worst { worst = error; worstIndex = i }
    }
    XCTAssertLessThanOrEqual(worst, tolerance,
                             "\(message): index \(worstIndex) got \(actual[worstIndex]) expected \(expected[worstIndex])",
                             file: file, line: line)
}

final class KernelForwardTests: XCTestCase {
    func checkConvolution(_ g: ConvolutionGeometry, bias: Bool, seed: UInt64) {
        var random = KernelTestRandom(seed: seed)
        let input = random.array(g.inputCount)
        let weight = random.array(g.weightCount)
        let biasValues = bias ? random.array(g.outputChannels) : nil
        var output = [Float](repeating: .nan, count: g.outputCount)
        var workspace = [Float](repeating: .nan, count: max(1, g.workspaceCount))
        Convolution.forward(input: input, weight: weight, bias: biasValues, output: &output,
                            geometry: g, workspace: &workspace)
        assertClose(output, referenceConvolution(input, weight, biasValues, g), tolerance: 1e-5, "\(g)")
    }

    func testConvolutionMatchesDirectLoops() {
        checkConvolution(ConvolutionGeometry(inputChannels: 3, outputChannels: 5, kernelSize: 3, stride: 1, padding: 1,
                                             batch: 2, inputHeight: 6, inputWidth: 5), bias: false, seed: 1)
        checkConvolution(ConvolutionGeometry(inputChannels: 4, outputChannels: 3, kernelSize: 3, stride: 2, padding: 1,
                                             batch: 3, inputHeight: 7, inputWidth: 8), bias: true, seed: 2)
        checkConvolution(ConvolutionGeometry(inputChannels: 6, outputChannels: 4, kernelSize: 1,
                                             batch: 2, inputHeight: 4, inputWidth: 3), bias: false, seed: 3)
        checkConvolution(ConvolutionGeometry(inputChannels: 6, outputChannels: 4, kernelSize: 1, stride: 2,
                                             batch: 2, inputHeight: 5, inputWidth: 4), bias: true, seed: 4)
        checkConvolution(ConvolutionGeometry(inputChannels: 3, outputChannels: 4, kernelSize: 7, stride: 2, padding: 3,
                                             batch: 2, inputHeight: 11, inputWidth: 9), bias: true, seed: 5)
        checkConvolution(ConvolutionGeometry(inputChannels: 2, outputChannels: 2, kernelSize: 3, stride: 1, padding: 0,
                                             batch: 1, inputHeight: 5, inputWidth: 5), bias: false, seed: 6)
        // Direct path: a partial block of output channels, and enough work to split over threads.
        checkConvolution(ConvolutionGeometry(inputChannels: 7, outputChannels: 6, kernelSize: 3, stride: 1, padding: 1,
                                             batch: 8, inputHeight: 16, inputWidth: 13), bias: true, seed: 7)
        checkConvolution(ConvolutionGeometry(inputChannels: 3, outputChannels: 5, kernelSize: 5, stride: 1, padding: 2,
                                             batch: 2, inputHeight: 9, inputWidth: 20), bias: false, seed: 8)
        // Direct path on the polyphase split: stride 2 at odd and even sizes, with and without
        // padding, partial channel blocks, and a stride of 3.
        checkConvolution(ConvolutionGeometry(inputChannels: 5, outputChannels: 13, kernelSize: 3, stride: 2, padding: 1,
                                             batch: 5, inputHeight: 15, inputWidth: 14), bias: true, seed: 10)
        checkConvolution(ConvolutionGeometry(inputChannels: 3, outputChannels: 8, kernelSize: 3, stride: 2, padding: 0,
                                             batch: 2, inputHeight: 8, inputWidth: 9), bias: false, seed: 11)
        checkConvolution(ConvolutionGeometry(inputChannels: 4, outputChannels: 7, kernelSize: 5, stride: 3, padding: 2,
                                             batch: 3, inputHeight: 10, inputWidth: 11), bias: true, seed: 12)
        checkConvolution(ConvolutionGeometry(inputChannels: 2, outputChannels: 64, kernelSize: 3, stride: 2, padding: 1,
                                             batch: 2, inputHeight: 6, inputWidth: 6), bias: true, seed: 13)
        // im2col path at strides 1 and 2 (more output channels than the direct path takes).
        checkConvolution(ConvolutionGeometry(inputChannels: 3, outputChannels: 70, kernelSize: 3, stride: 1, padding: 1,
                                             batch: 2, inputHeight: 5, inputWidth: 4), bias: true, seed: 9)
        checkConvolution(ConvolutionGeometry(inputChannels: 3, outputChannels: 65, kernelSize: 3, stride: 2, padding: 1,
                                             batch: 2, inputHeight: 7, inputWidth: 6), bias: false, seed: 14)
    }

    func testConvolutionKnownValue() {
        // One 3x3 image 1...9, all-ones 3x3 kernel, padding 1: the centre is the sum 45, a corner
        // sums its 2x2 neighbourhood 1+2+4+5 = 12.
        let g = ConvolutionGeometry(inputChannels: 1, outputChannels: 1, kernelSize: 3, stride: 1, padding: 1,
                                    batch: 1, inputHeight: 3, inputWidth: 3)
        let input: [Float] = (1...9).map(Float.init)
        let weight = [Float](repeating: 1, count: 9)
        var output = [Float](repeating: 0, count: 9)
        var workspace = [Float](repeating: 0, count: g.workspaceCount)
        Convolution.forward(input: input, weight: weight, bias: [0.5], output: &output, geometry: g, workspace: &workspace)
        XCTAssertEqual(output, [12, 21, 16, 27, 45, 33, 24, 39, 28].map { $0 + 0.5 })
    }

    /// Double reference of training-mode batch norm over rows of `count` elements at
    /// `channel * channelStride + m * elementStride`.
    func referenceBatchNorm(_ x: [Float], gamma: [Float], beta: [Float], channels: Int, count: Int,
                            channelStride: Int, elementStride: Int, relu: Bool)
        -> (output: [Double], mean: [Double], biasedVariance: [Double]) {
        var output = [Double](repeating: 0, count: x.count)
        var means = [Double](), variances = [Double]()
        for c in 0..<channels {
            let values = (0..<count).map { Double(x[c * channelStride + $0 * elementStride]) }
            let mean = values.reduce(0, +) / Double(count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(count)
            means.append(mean)
            variances.append(variance)
            for m in 0..<count {
                let y = Double(gamma[c]) * (values[m] - mean) / (variance + 1e-5).squareRoot() + Double(beta[c])
                output[c * channelStride + m * elementStride] = relu ? max(0, y) : y
            }
        }
        return (output, means, variances)
    }

    func testBatchNorm2dTrainingMatchesFormulasAndUpdatesRunningStatistics() {
        var random = KernelTestRandom(seed: 11)
        let channels = 3, count = 2 * 4 * 5
        let x = random.array(channels * count, scale: 2, offset: 3)
        let gamma = random.array(channels, scale: 0.5, offset: 1), beta = random.array(channels)
        for relu in [false, true] {
            var output = [Float](repeating: .nan, count: x.count)
            var runningMean: [Float] = [0.5, -1, 0], runningVariance: [Float] = [1, 2, 0.5]
            let oldMean = runningMean, oldVariance = runningVariance
            var savedMean = [Float](repeating: 0, count: channels), savedInverse = [Float](repeating: 0, count: channels)
            BatchNorm2d.forwardTraining(input: x, output: &output, weight: gamma, bias: beta,
                                        runningMean: &runningMean, runningVariance: &runningVariance,
                                        savedMean: &savedMean, savedInverseStandardDeviation: &savedInverse,
                                        channels: channels, count: count, relu: relu)
            let reference = referenceBatchNorm(x, gamma: gamma, beta: beta, channels: channels, count: count,
                                               channelStride: count, elementStride: 1, relu: relu)
            assertClose(output, reference.output, tolerance: 1e-5, "BN2d relu \(relu)")
            for c in 0..<channels {
                let unbiased = reference.biasedVariance[c] * Double(count) / Double(count - 1)
                XCTAssertEqual(Double(runningMean[c]), 0.9 * Double(oldMean[c]) + 0.1 * reference.mean[c], accuracy: 1e-5)
                XCTAssertEqual(Double(runningVariance[c]), 0.9 * Double(oldVariance[c]) + 0.1 * unbiased, accuracy: 1e-5)
                XCTAssertEqual(Double(savedMean[c]), reference.mean[c], accuracy: 1e-5)
                XCTAssertEqual(Double(savedInverse[c]), 1 / (reference.biasedVariance[c] + 1e-5).squareRoot(), accuracy: 1e-4)
            }
        }
    }

    /// One ImageNet-sized channel (batch 64 x 128 x 128 > 800k values) of mean 100 and spread
    /// 1e-2: the mean and the variance (the running statistics with momentum 1) and the backward
    /// sums (the affine gradients) come out within 1e-6 relative of a Double computation, as
    /// PyTorch's Double-accumulating CPU kernels give them.
    func testBatchNormStatisticsOfOneLargeChannelArePrecise() {
        var random = KernelTestRandom(seed: 5)
        let count = 64 * 128 * 128
        let x = random.array(count, scale: 1e-2, offset: 100)
        let dy = random.array(count, scale: 1, offset: 1e-3)
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(count)
        let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(count)
        let weight: [Float] = [1.5], bias: [Float] = [0.25]
        var output = [Float](repeating: 0, count: count)
        var runningMean: [Float] = [0], runningVariance: [Float] = [1]
        var savedMean: [Float] = [0], savedInverse: [Float] = [0]
        BatchNorm2d.forwardTraining(input: x, output: &output, weight: weight, bias: bias,
                                    runningMean: &runningMean, runningVariance: &runningVariance,
                                    savedMean: &savedMean, savedInverseStandardDeviation: &savedInverse,
                                    channels: 1, count: count, momentum: 1)
        XCTAssertEqual(Double(runningMean[0]), mean, accuracy: 1e-6 * mean)
        let unbiased = variance * Double(count) / Double(count - 1)
        XCTAssertEqual(Double(runningVariance[0]), unbiased, accuracy: 1e-6 * unbiased)
        XCTAssertEqual(Double(savedInverse[0]), 1 / (variance + 1e-5).squareRoot(), accuracy: 1e-6 / (variance + 1e-5).squareRoot())

        var weightGradient: [Float] = [0], biasGradient: [Float] = [0]
        BatchNorm2d.backward(outputGradient: dy, input: x, weight: weight, bias: bias, savedMean: savedMean,
                             savedInverseStandardDeviation: savedInverse, inputGradient: nil,
                             weightGradient: &weightGradient, biasGradient: &biasGradient, channels: 1, count: count)
        let gradientSum = dy.reduce(0.0) { $0 + Double($1) }
        var centeredSum = 0.0
        for m in 0..<count { centeredSum += Double(dy[m]) * (Double(x[m]) - Double(savedMean[0])) }
        let expectedWeightGradient = centeredSum * Double(savedInverse[0])
        XCTAssertEqual(Double(biasGradient[0]), gradientSum, accuracy: 1e-6 * abs(gradientSum))
        XCTAssertEqual(Double(weightGradient[0]), expectedWeightGradient, accuracy: 1e-6 * abs(expectedWeightGradient))
    }

    func testBatchNorm1dTrainingMatchesFormulas() {
        var random = KernelTestRandom(seed: 12)
        let batch = 6, features = 4
        let x = random.array(batch * features, scale: 1.5, offset: -0.5)
        let gamma = random.array(features, scale: 0.5, offset: 1), beta = random.array(features)
        var output = [Float](repeating: .nan, count: x.count)
        var runningMean = [Float](repeating: 0, count: features), runningVariance = [Float](repeating: 1, count: features)
        var savedMean = [Float](repeating: 0, count: features), savedInverse = [Float](repeating: 0, count: features)
        BatchNorm1d.forwardTraining(input: x, output: &output, weight: gamma, bias: beta,
                                    runningMean: &runningMean, runningVariance: &runningVariance,
                                    savedMean: &savedMean, savedInverseStandardDeviation: &savedInverse,
                                    batch: batch, features: features, relu: true)
        let reference = referenceBatchNorm(x, gamma: gamma, beta: beta, channels: features, count: batch,
                                           channelStride: 1, elementStride: features, relu: true)
        assertClose(output, reference.output, tolerance: 1e-5, "BN1d")
        for f in 0..<features {
            XCTAssertEqual(Double(runningMean[f]), 0.1 * reference.mean[f], accuracy: 1e-6)
            XCTAssertEqual(Double(runningVariance[f]), 0.9 + 0.1 * reference.biasedVariance[f] * 6 / 5, accuracy: 1e-5)
        }
    }

    func testBatchNormInferenceUsesRunningStatistics() {
        let x: [Float] = [1, 2, 3, -4, 5, 6]
        var output = [Float](repeating: 0, count: 6)
        // Two channels of 3: y = gamma * (x - rm) / sqrt(rv + eps) + beta.
        BatchNorm2d.forwardInference(input: x, output: &output, weight: [2, 1], bias: [0.5, -1],
                                     runningMean: [1, 5], runningVariance: [4, 1 - 1e-5],
                                     channels: 2, count: 3, relu: true)
        let inverse = 1 / (4 + 1e-5 as Double).squareRoot()
        let expected: [Double] = [0.5, 2 * inverse + 0.5, 4 * inverse + 0.5, 0, 0, 0]
        assertClose(output, expected, tolerance: 1e-6, "BN inference")
        var output1d = [Float](repeating: 0, count: 6)
        // Rows [1, 2], [3, -4], [5, 6] of a [3, 2] batch; feature 1 has mean 5, var 1.
        BatchNorm1d.forwardInference(input: x, output: &output1d, weight: [2, 1], bias: [0.5, -1],
                                     runningMean: [1, 5], runningVariance: [4, 1 - 1e-5],
                                     batch: 3, features: 2)
        assertClose(output1d, [0.5, -4, 2 * 2 * inverse + 0.5, -10, 2 * 4 * inverse + 0.5, 0], tolerance: 1e-6, "BN1d inference")
    }

    func testMaxPoolWithPaddingMatchesPyTorch() {
        // torch.nn.MaxPool2d(3, 2, 1) on arange(1, 17).view(1, 1, 4, 4) gives [[6, 8], [14, 16]].
        let g = PoolingGeometry(channels: 1, batch: 2, inputHeight: 4, inputWidth: 4, kernelSize: 3, stride: 2, padding: 1)
        XCTAssertEqual(g.outputHeight, 2)
        // The second image is negated: padding must act as -inf, not 0.
        let input: [Float] = (1...16).map(Float.init) + (1...16).map { -Float($0) }
        var output = [Float](repeating: 0, count: g.outputCount)
        var indices = [Int32](repeating: -1, count: g.outputCount)
        MaxPool.forward(input: input, output: &output, indices: &indices, geometry: g)
        XCTAssertEqual(output, [6, 8, 14, 16, -1, -2, -5, -6])
        XCTAssertEqual(indices, [5, 7, 13, 15, 0, 1, 4, 5])
        // ImageNet stem shape: 112 -> 56.
        XCTAssertEqual(PoolingGeometry(channels: 1, batch: 1, inputHeight: 112, inputWidth: 112,
                                       kernelSize: 3, stride: 2, padding: 1).outputHeight, 56)
    }

    func testAveragePoolKnownValues() {
        let g = PoolingGeometry(channels: 1, batch: 1, inputHeight: 4, inputWidth: 4, kernelSize: 2)
        let input: [Float] = (1...16).map(Float.init)
        var output = [Float](repeating: 0, count: g.outputCount)
        AveragePool.forward(input: input, output: &output, geometry: g)
        XCTAssertEqual(output, [3.5, 5.5, 11.5, 13.5])
        // Odd size: the last row and column are dropped, as in PyTorch.
        let odd = PoolingGeometry(channels: 1, batch: 1, inputHeight: 3, inputWidth: 3, kernelSize: 2)
        var oddOutput: [Float] = [0]
        AveragePool.forward(input: (1...9).map(Float.init), output: &oddOutput, geometry: odd)
        XCTAssertEqual(oddOutput, [3])
    }

    func testLinearMatchesMatrixProductInBothLayouts() {
        var random = KernelTestRandom(seed: 21)
        let batch = 3, inputs = 5, outputs = 4
        let x = random.array(batch * inputs), w = random.array(outputs * inputs), b = random.array(outputs)
        var expected = [Double](repeating: 0, count: batch * outputs)
        for n in 0..<batch {
            for o in 0..<outputs {
                var total = Double(b[o])
                for i in 0..<inputs { total += Double(x[n * inputs + i]) * Double(w[o * inputs + i]) }
                expected[n * outputs + o] = total
            }
        }
        var output = [Float](repeating: .nan, count: batch * outputs)
        Linear.forward(input: x, weight: w, bias: b, output: &output, batch: batch, inputFeatures: inputs, outputFeatures: outputs)
        assertClose(output, expected, tolerance: 1e-6, "row-major")
        let transposed = (0..<inputs * batch).map { x[($0 % batch) * inputs + $0 / batch] }
        var output2 = [Float](repeating: .nan, count: batch * outputs)
        Linear.forward(input: transposed, weight: w, bias: b, output: &output2, batch: batch, inputFeatures: inputs,
                       outputFeatures: outputs, inputLayout: .featureMajor)
        assertClose(output2, expected, tolerance: 1e-6, "feature-major")
    }

    func testSoftmaxAndLogSoftmaxKnownValues() {
        let logits: [Float] = [1, 2, 3, 1000, 1000, 1000]
        var probabilities = [Float](repeating: 0, count: 6)
        Softmax.forward(input: logits, output: &probabilities, rows: 2, columns: 3)
        let total = exp(1.0) + exp(2.0) + exp(3.0)
        assertClose(probabilities, [exp(1) / total, exp(2) / total, exp(3) / total, 1.0 / 3, 1.0 / 3, 1.0 / 3],
                    tolerance: 1e-6, "softmax")
        var logProbabilities = [Float](repeating: 0, count: 6)
        LogSoftmax.forward(input: logits, output: &logProbabilities, rows: 2, columns: 3, temperature: 2)
        let halfTotal = exp(0.5) + exp(1.0) + exp(1.5)
        assertClose(logProbabilities, [0.5 - log(halfTotal), 1 - log(halfTotal), 1.5 - log(halfTotal),
                                       -log(3.0), -log(3.0), -log(3.0)], tolerance: 1e-6, "log-softmax T=2")
    }

    func testCrossEntropyKnownValue() {
        // log(e + e^2 + e^3) = 3.40760596; rows with labels 2 and 0 lose 0.40760596 and 2.40760596.
        let loss = CrossEntropy.forward(logits: [1, 2, 3, 1, 2, 3], labels: [2, 0], batch: 2, classes: 3)
        XCTAssertEqual(loss, 1.40760596, accuracy: 1e-6)
        var gradient: [Float] = [1, 1, 1, 1, 1, 1]
        CrossEntropy.backward(logits: [1, 2, 3, 1, 2, 3], labels: [2, 0], logitsGradient: &gradient,
                              batch: 2, classes: 3, scale: 2)
        let total = exp(1.0) + exp(2.0) + exp(3.0)
        let p = [exp(1) / total, exp(2) / total, exp(3) / total]
        assertClose(gradient, [1 + p[0], 1 + p[1], p[2], p[0], 1 + p[1], 1 + p[2]], tolerance: 1e-6, "CE gradient")
    }

    func testKLDivergenceKnownValuesForBothReductions() {
        // Teacher p = (1/2, 1/2); student at T = 2 has q = softmax((2 ln 3, 0) / 2) = (3/4, 1/4):
        // KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3).
        let student: [Float] = [2 * log(3), 0], teacher: [Float] = [5, 5]
        let kl = 0.5 * log(4.0 / 3.0)
        XCTAssertEqual(KLDivergence.forward(studentLogits: student, teacherLogits: teacher, batch: 1, classes: 2,
                                            temperature: 2, reduction: .batchmean), kl, accuracy: 1e-6)
        XCTAssertEqual(KLDivergence.forward(studentLogits: student, teacherLogits: teacher, batch: 1, classes: 2,
                                            temperature: 2, reduction: .mean), kl / 2, accuracy: 1e-6)
        // Identical distributions: 0. A teacher probability that underflows to 0 contributes 0.
        XCTAssertEqual(KLDivergence.forward(studentLogits: [1, 2, 3], teacherLogits: [1, 2, 3], batch: 1, classes: 3,
                                            temperature: 1), 0, accuracy: 1e-7)
        let extreme = KLDivergence.forward(studentLogits: [0, 0], teacherLogits: [0, -1000], batch: 1, classes: 2,
                                           temperature: 1, reduction: .batchmean)
        XCTAssertEqual(extreme, log(2.0), accuracy: 1e-6)
    }

    func testGradientRescaleScalesTheGradientInPlace() {
        var gradient: [Float] = [2, 4, -6]
        GradientEquilibrium.rescaleInPlace(&gradient, count: 3, factor: 0.25)
        XCTAssertEqual(gradient, [0.5, 1, -1.5])
        // Long enough for the parallel path.
        var long = (0..<(1 << 17)).map { Float($0 % 7) - 3 }
        GradientEquilibrium.rescaleInPlace(&long, count: long.count, factor: 3)
        XCTAssertEqual(long, (0..<(1 << 17)).map { 3 * (Float($0 % 7) - 3) })
    }

    func testReLUAndElementwiseParallelPathAgree() {
        // Long enough to take ComputeThreads' parallel path.
        var random = KernelTestRandom(seed: 31)
        let count = ComputeThreads.minimumParallelCount * 2 + 37
        let x = random.array(count)
        var y = [Float](repeating: .nan, count: count)
        ReLU.forward(input: x, output: &y, count: count)
        XCTAssertEqual(y, x.map { max($0, 0) })
        var gradient = [Float](repeating: 1, count: count)
        ReLU.backward(outputGradient: x, output: y, inputGradient: &gradient, count: count)
        XCTAssertEqual(gradient, x.map { $0 > 0 ? 1 + $0 : 1 })
    }
}
