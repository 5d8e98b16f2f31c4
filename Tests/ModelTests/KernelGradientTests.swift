import Foundation
import XCTest
import Model

/// Every gradient buffer starts at this value, so the checks also verify that backward ADDS.
let kernelGradientPrefill: Float = 0.25

/// Compares an analytic gradient with central differences `(L(x + h) - L(x - h)) / 2h` at up to
/// `samples` indices (all of them for small buffers). `loss` evaluates the Float kernels on the
/// perturbed copy of `values` and sums in Double.
func checkGradient(_ name: String, values: [Float], analytic: [Float], samples: Int = 32, step: Float = 1e-2,
                   tolerance: Double = 5e-3, seed: UInt64 = 99, loss: ([Float]) -> Double,
                   file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(values.count, analytic.count, name, file: file, line: line)
    var random = KernelTestRandom(seed: seed)
    let indices = values.count <= samples ? Array(0..<values.count) : (0..<samples).map { _ in random.index(values.count) }
    var perturbed = values
    for i in indices {
        perturbed[i] = values[i] + step
        let plus = loss(perturbed)
        perturbed[i] = values[i] - step
        let minus = loss(perturbed)
        perturbed[i] = values[i]
        let numeric = (plus - minus) / (2 * Double(step))
        let exact = Double(analytic[i] - kernelGradientPrefill)
        XCTAssertLessThanOrEqual(abs(numeric - exact), tolerance * (1 + abs(numeric)),
                                 "\(name)[\(i)]: analytic \(exact), numeric \(numeric)", file: file, line: line)
    }
}

func weightedSum(_ output: [Float], _ weights: [Float]) -> Double {
    zip(output, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

func prefilled(_ count: Int) -> [Float] { [Float](repeating: kernelGradientPrefill, count: count) }

/// Distinct values spaced 0.01 apart in random order, so a small perturbation never changes a
/// max-pool's argmax.
func distinctValues(_ count: Int, random: inout KernelTestRandom) -> [Float] {
    var values = (0..<count).map { Float($0) * 0.01 - Float(count) * 0.005 }
    for i in stride(from: count - 1, to: 0, by: -1) { values.swapAt(i, random.index(i + 1)) }
    return values
}

/// An all-reduce between threads in one process, standing in for MPI in synchronised-BN tests.
final class ThreadSumReducer: CrossReplicaReducer, @unchecked Sendable {
    let replicaCount: Int
    private let condition = NSCondition()
    private var accumulator: [Float] = []
    private var result: [Float] = []
    private var arrived = 0
    private var generation = 0

    init(replicaCount: Int) { self.replicaCount = replicaCount }

    func sumInPlace(_ values: UnsafeMutableBufferPointer<Float>) {
        condition.lock()
        defer { condition.unlock() }
        if arrived == 0 { accumulator = [Float](repeating: 0, count: values.count) }
        for i in 0..<values.count { accumulator[i] += values[i] }
        arrived += 1
        let myGeneration = generation
        if arrived == replicaCount {
            result = accumulator
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == myGeneration { condition.wait() }
        }
        for i in 0..<values.count { values[i] = result[i] }
    }
}

/// One training-mode BN2d+ReLU forward and backward, as one replica runs it.
struct SynchronisedBatchNormRun: @unchecked Sendable {
    struct Result {
        var output: [Float], runningMean: [Float], runningVariance: [Float]
        var inputGradient: [Float], weightGradient: [Float], biasGradient: [Float]
    }

    var channels: Int
    var weight: [Float]
    var bias: [Float]

    func run(_ x: [Float], _ dy: [Float], reducer: CrossReplicaReducer?) -> Result {
        let count = x.count / channels
        let zeros = [Float](repeating: 0, count: channels)
        var result = Result(output: [Float](repeating: 0, count: x.count), runningMean: zeros,
                            runningVariance: [Float](repeating: 1, count: channels),
                            inputGradient: [Float](repeating: 0, count: x.count), weightGradient: zeros, biasGradient: zeros)
        var savedMean = zeros, savedInverse = zeros
        BatchNorm2d.forwardTraining(input: x, output: &result.output, weight: weight, bias: bias,
                                    runningMean: &result.runningMean, runningVariance: &result.runningVariance,
                                    savedMean: &savedMean, savedInverseStandardDeviation: &savedInverse,
                                    channels: channels, count: count, relu: true, reducer: reducer)
        BatchNorm2d.backward(outputGradient: dy, input: x, weight: weight, bias: bias, savedMean: savedMean,
                             savedInverseStandardDeviation: savedInverse, inputGradient: &result.inputGradient,
                             weightGradient: &result.weightGradient, biasGradient: &result.biasGradient,
                             channels: channels, count: count, relu: true, reducer: reducer)
        return result
    }
}

/// The replicas' results, written from their threads.
final class SynchronisedBatchNormResults: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var results: [SynchronisedBatchNormRun.Result?] = [nil, nil]

    func store(_ replica: Int, _ result: SynchronisedBatchNormRun.Result) {
        lock.lock()
        results[replica] = result
        lock.unlock()
    }
}

final class KernelGradientTests: XCTestCase {
    // MARK: Convolution

    func checkConvolutionGradients(_ g: ConvolutionGeometry, bias: Bool, seed: UInt64) {
        var random = KernelTestRandom(seed: seed)
        let input = random.array(g.inputCount)
        let weight = random.array(g.weightCount)
        let biasValues = random.array(g.outputChannels)
        let projection = random.array(g.outputCount)
        var workspace = [Float](repeating: .nan, count: max(1, g.workspaceCount))
        func loss(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var output = [Float](repeating: 0, count: g.outputCount)
            Convolution.forward(input: x, weight: w, bias: bias ? b : nil, output: &output, geometry: g, workspace: &workspace)
            return weightedSum(output, projection)
        }
        var inputGradient = prefilled(g.inputCount), weightGradient = prefilled(g.weightCount)
        var biasGradient = prefilled(g.outputChannels)
        biasGradient.withUnsafeMutableBufferPointer { biasPointer in
            Convolution.backward(outputGradient: projection, input: input, weight: weight,
                                 inputGradient: &inputGradient, weightGradient: &weightGradient,
                                 biasGradient: bias ? biasPointer.baseAddress : nil, geometry: g, workspace: &workspace)
        }
        checkGradient("conv input \(g)", values: input, analytic: inputGradient) { loss($0, weight, biasValues) }
        checkGradient("conv weight \(g)", values: weight, analytic: weightGradient) { loss(input, $0, biasValues) }
        if bias {
            checkGradient("conv bias \(g)", values: biasValues, analytic: biasGradient) { loss(input, weight, $0) }
        } else {
            XCTAssertEqual(biasGradient, prefilled(g.outputChannels), "nil bias gradient must stay untouched")
        }
        // Only the input gradient requested: the same values, and nothing else computed.
        var inputOnly = prefilled(g.inputCount)
        Convolution.backward(outputGradient: projection, input: input, weight: weight, inputGradient: &inputOnly,
                             weightGradient: nil, biasGradient: nil, geometry: g, workspace: &workspace)
        XCTAssertEqual(inputOnly, inputGradient)
    }

    func testConvolutionGradients() {
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 3, outputChannels: 4, kernelSize: 3, stride: 1, padding: 1,
                                                      batch: 2, inputHeight: 5, inputWidth: 6), bias: false, seed: 1)
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 2, outputChannels: 3, kernelSize: 3, stride: 2, padding: 1,
                                                      batch: 2, inputHeight: 7, inputWidth: 6), bias: true, seed: 2)
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 5, outputChannels: 3, kernelSize: 1,
                                                      batch: 3, inputHeight: 3, inputWidth: 4), bias: true, seed: 3)
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 3, outputChannels: 2, kernelSize: 1, stride: 2,
                                                      batch: 2, inputHeight: 5, inputWidth: 5), bias: false, seed: 4)
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 2, outputChannels: 3, kernelSize: 7, stride: 2, padding: 3,
                                                      batch: 2, inputHeight: 9, inputWidth: 8), bias: true, seed: 5)
        // Direct path with partial channel blocks on both sides and work split over threads.
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 6, outputChannels: 5, kernelSize: 3, stride: 1, padding: 1,
                                                      batch: 4, inputHeight: 16, inputWidth: 9), bias: false, seed: 6)
        // Direct path on the polyphase split: stride 2 with partial channel blocks at odd sizes,
        // unpadded, and a stride of 3.
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 7, outputChannels: 8, kernelSize: 3, stride: 2, padding: 1,
                                                      batch: 3, inputHeight: 11, inputWidth: 10), bias: true, seed: 8)
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 3, outputChannels: 4, kernelSize: 3, stride: 2, padding: 0,
                                                      batch: 2, inputHeight: 8, inputWidth: 7), bias: false, seed: 9)
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 2, outputChannels: 3, kernelSize: 5, stride: 3, padding: 2,
                                                      batch: 2, inputHeight: 10, inputWidth: 9), bias: false, seed: 10)
        // im2col path at strides 1 and 2.
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 2, outputChannels: 66, kernelSize: 3, stride: 1, padding: 1,
                                                      batch: 2, inputHeight: 4, inputWidth: 5), bias: true, seed: 7)
        checkConvolutionGradients(ConvolutionGeometry(inputChannels: 2, outputChannels: 65, kernelSize: 3, stride: 2, padding: 1,
                                                      batch: 2, inputHeight: 5, inputWidth: 4), bias: false, seed: 11)
    }

    // MARK: Batch normalisation

    func checkBatchNormGradients(relu: Bool, oneDimensional: Bool, seed: UInt64) {
        var random = KernelTestRandom(seed: seed)
        let channels = 3, count = oneDimensional ? 7 : 2 * 3 * 4
        let input = random.array(channels * count, scale: 2, offset: 0.5)
        let weight = random.array(channels, scale: 0.5, offset: 1)
        let bias = random.array(channels, scale: 0.5)
        let projection = random.array(channels * count)
        var savedMean = [Float](repeating: 0, count: channels), savedInverse = [Float](repeating: 0, count: channels)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var output = [Float](repeating: 0, count: x.count)
            if oneDimensional {
                BatchNorm1d.forwardTraining(input: x, output: &output, weight: w, bias: b, runningMean: nil, runningVariance: nil,
                                            savedMean: &savedMean, savedInverseStandardDeviation: &savedInverse,
                                            batch: count, features: channels, relu: relu)
            } else {
                BatchNorm2d.forwardTraining(input: x, output: &output, weight: w, bias: b, runningMean: nil, runningVariance: nil,
                                            savedMean: &savedMean, savedInverseStandardDeviation: &savedInverse,
                                            channels: channels, count: count, relu: relu)
            }
            return output
        }
        _ = forward(input, weight, bias)
        if relu {
            // Finite differences across the ReLU kink are meaningless: the data must keep every
            // pre-activation well away from 0.
            var nearest = Float.infinity
            for c in 0..<channels {
                for m in 0..<count {
                    let x = input[oneDimensional ? m * channels + c : c * count + m]
                    nearest = min(nearest, abs((x - savedMean[c]) * savedInverse[c] * weight[c] + bias[c]))
                }
            }
            XCTAssertGreaterThan(nearest, 0.01, "test data too close to the ReLU kink; choose another seed")
        }
        var inputGradient = prefilled(input.count), weightGradient = prefilled(channels), biasGradient = prefilled(channels)
        if oneDimensional {
            BatchNorm1d.backward(outputGradient: projection, input: input, weight: weight, bias: bias, savedMean: savedMean,
                                 savedInverseStandardDeviation: savedInverse, inputGradient: &inputGradient,
                                 weightGradient: &weightGradient, biasGradient: &biasGradient,
                                 batch: count, features: channels, relu: relu)
        } else {
            BatchNorm2d.backward(outputGradient: projection, input: input, weight: weight, bias: bias, savedMean: savedMean,
                                 savedInverseStandardDeviation: savedInverse, inputGradient: &inputGradient,
                                 weightGradient: &weightGradient, biasGradient: &biasGradient,
                                 channels: channels, count: count, relu: relu)
        }
        let name = "BN\(oneDimensional ? "1d" : "2d") relu \(relu)"
        checkGradient("\(name) input", values: input, analytic: inputGradient, samples: 40, step: 1e-3, tolerance: 1e-2) {
            weightedSum(forward($0, weight, bias), projection)
        }
        checkGradient("\(name) weight", values: weight, analytic: weightGradient, step: 1e-3, tolerance: 1e-2) {
            weightedSum(forward(input, $0, bias), projection)
        }
        checkGradient("\(name) bias", values: bias, analytic: biasGradient, step: 1e-3, tolerance: 1e-2) {
            weightedSum(forward(input, weight, $0), projection)
        }
    }

    func testBatchNormGradients() {
        checkBatchNormGradients(relu: false, oneDimensional: false, seed: 11)
        checkBatchNormGradients(relu: true, oneDimensional: false, seed: 15)
        checkBatchNormGradients(relu: false, oneDimensional: true, seed: 13)
        checkBatchNormGradients(relu: true, oneDimensional: true, seed: 14)
    }

    /// Synchronised BN over two replicas with different batch sizes equals plain BN over the
    /// concatenated batch: outputs, running statistics, input gradients, and (summed over
    /// replicas, as the gradient all-reduce does) parameter gradients.
    func testSynchronisedBatchNormMatchesConcatenatedBatch() {
        var random = KernelTestRandom(seed: 17)
        let channels = 4, counts = [6, 10]
        let run = SynchronisedBatchNormRun(channels: channels, weight: random.array(channels, scale: 0.5, offset: 1),
                                           bias: random.array(channels))
        let parts = counts.map { random.array(channels * $0, scale: 2, offset: 1) }
        let gradients = counts.map { random.array(channels * $0) }
        func concatenate(_ arrays: [[Float]]) -> [Float] {
            var result: [Float] = []
            for c in 0..<channels {
                for r in 0..<arrays.count {
                    let count = arrays[r].count / channels
                    result += arrays[r][(c * count)..<((c + 1) * count)]
                }
            }
            return result
        }
        let whole = run.run(concatenate(parts), concatenate(gradients), reducer: nil)
        let reducer = ThreadSumReducer(replicaCount: 2)
        let replicas = SynchronisedBatchNormResults()
        let group = DispatchGroup()
        for r in 0..<2 {
            group.enter()
            let input = parts[r], gradient = gradients[r]
            Thread {
                replicas.store(r, run.run(input, gradient, reducer: reducer))
                group.leave()
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        guard let first = replicas.results[0], let second = replicas.results[1] else { return XCTFail("a replica did not finish") }
        let tolerance = 1e-5
        assertClose(concatenate([first.output, second.output]), whole.output.map(Double.init), tolerance: tolerance, "output")
        assertClose(concatenate([first.inputGradient, second.inputGradient]), whole.inputGradient.map(Double.init),
                    tolerance: tolerance, "input gradient")
        for replica in [first, second] {
            assertClose(replica.runningMean, whole.runningMean.map(Double.init), tolerance: tolerance, "running mean")
            assertClose(replica.runningVariance, whole.runningVariance.map(Double.init), tolerance: tolerance, "running variance")
        }
        assertClose(zip(first.weightGradient, second.weightGradient).map(+), whole.weightGradient.map(Double.init),
                    tolerance: tolerance, "weight gradient")
        assertClose(zip(first.biasGradient, second.biasGradient).map(+), whole.biasGradient.map(Double.init),
                    tolerance: tolerance, "bias gradient")
    }

    // MARK: Element-wise and pooling

    func testReLUAndGradientRescaleGradients() {
        var random = KernelTestRandom(seed: 21)
        let input = random.array(50).map { $0 < 0 ? $0 - 0.05 : $0 + 0.05 }
        let projection = random.array(50)
        var output = [Float](repeating: 0, count: 50)
        ReLU.forward(input: input, output: &output, count: 50)
        var gradient = prefilled(50)
        ReLU.backward(outputGradient: projection, output: output, inputGradient: &gradient, count: 50)
        checkGradient("relu", values: input, analytic: gradient, samples: 50) { x in
            var y = [Float](repeating: 0, count: 50)
            ReLU.forward(input: x, output: &y, count: 50)
            return weightedSum(y, projection)
        }
        // R(x; 1/3) is the identity forward, so the loss downstream of it is the plain projection;
        // its backward must still give a third of that loss's gradient.
        var rescaled = projection
        GradientEquilibrium.rescaleInPlace(&rescaled, count: 50, factor: 1.0 / 3)
        checkGradient("gradient rescale (loss scaled by 1/3 downstream)", values: input,
                      analytic: rescaled.map { $0 + kernelGradientPrefill }) { x in
            weightedSum(x, projection) / 3
        }
    }

    func testPoolingGradients() {
        var random = KernelTestRandom(seed: 31)
        let maxGeometry = PoolingGeometry(channels: 2, batch: 2, inputHeight: 7, inputWidth: 6, kernelSize: 3, stride: 2, padding: 1)
        let maxInput = distinctValues(maxGeometry.inputCount, random: &random)
        let maxProjection = random.array(maxGeometry.outputCount)
        var indices = [Int32](repeating: 0, count: maxGeometry.outputCount)
        func maxLoss(_ x: [Float]) -> Double {
            var y = [Float](repeating: 0, count: maxGeometry.outputCount)
            MaxPool.forward(input: x, output: &y, indices: &indices, geometry: maxGeometry)
            return weightedSum(y, maxProjection)
        }
        _ = maxLoss(maxInput)
        var maxGradient = prefilled(maxGeometry.inputCount)
        MaxPool.backward(outputGradient: maxProjection, indices: indices, inputGradient: &maxGradient, geometry: maxGeometry)
        checkGradient("max pool", values: maxInput, analytic: maxGradient, samples: 200, step: 1e-3, loss: maxLoss)

        for (kernel, stride) in [(2, 2), (3, 2)] {
            let g = PoolingGeometry(channels: 2, batch: 3, inputHeight: 5, inputWidth: 6, kernelSize: kernel, stride: stride)
            let input = random.array(g.inputCount)
            let projection = random.array(g.outputCount)
            var gradient = prefilled(g.inputCount)
            AveragePool.backward(outputGradient: projection, inputGradient: &gradient, geometry: g)
            checkGradient("average pool \(kernel)/\(stride)", values: input, analytic: gradient, samples: 200) { x in
                var y = [Float](repeating: 0, count: g.outputCount)
                AveragePool.forward(input: x, output: &y, geometry: g)
                return weightedSum(y, projection)
            }
        }
    }

    // MARK: Linear and losses

    func testLinearGradients() {
        for layout in [LinearInputLayout.rowMajor, .featureMajor] {
            var random = KernelTestRandom(seed: 41)
            let batch = 3, inputs = 5, outputs = 4
            let input = random.array(batch * inputs), weight = random.array(outputs * inputs), bias = random.array(outputs)
            let projection = random.array(batch * outputs)
            func loss(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
                var y = [Float](repeating: 0, count: batch * outputs)
                Linear.forward(input: x, weight: w, bias: b, output: &y, batch: batch, inputFeatures: inputs,
                               outputFeatures: outputs, inputLayout: layout)
                return weightedSum(y, projection)
            }
            var inputGradient = prefilled(input.count), weightGradient = prefilled(weight.count), biasGradient = prefilled(outputs)
            Linear.backward(outputGradient: projection, input: input, weight: weight, inputGradient: &inputGradient,
                            weightGradient: &weightGradient, biasGradient: &biasGradient, batch: batch,
                            inputFeatures: inputs, outputFeatures: outputs, inputLayout: layout)
            checkGradient("linear \(layout) input", values: input, analytic: inputGradient) { loss($0, weight, bias) }
            checkGradient("linear \(layout) weight", values: weight, analytic: weightGradient) { loss(input, $0, bias) }
            checkGradient("linear \(layout) bias", values: bias, analytic: biasGradient) { loss(input, weight, $0) }
        }
    }

    func testSoftmaxGradients() {
        var random = KernelTestRandom(seed: 51)
        let rows = 3, columns = 5, temperature: Float = 2.5
        let input = random.array(rows * columns, scale: 2), projection = random.array(rows * columns)
        for logarithmic in [false, true] {
            func forward(_ x: [Float]) -> [Float] {
                var y = [Float](repeating: 0, count: x.count)
                if logarithmic {
                    LogSoftmax.forward(input: x, output: &y, rows: rows, columns: columns, temperature: temperature)
                } else {
                    Softmax.forward(input: x, output: &y, rows: rows, columns: columns, temperature: temperature)
                }
                return y
            }
            let output = forward(input)
            var gradient = prefilled(input.count)
            if logarithmic {
                LogSoftmax.backward(outputGradient: projection, output: output, inputGradient: &gradient,
                                    rows: rows, columns: columns, temperature: temperature)
            } else {
                Softmax.backward(outputGradient: projection, output: output, inputGradient: &gradient,
                                 rows: rows, columns: columns, temperature: temperature)
            }
            checkGradient(logarithmic ? "log-softmax" : "softmax", values: input, analytic: gradient, step: 1e-3) {
                weightedSum(forward($0), projection)
            }
        }
    }

    func testCrossEntropyGradient() {
        var random = KernelTestRandom(seed: 61)
        let batch = 4, classes = 6
        let logits = random.array(batch * classes, scale: 3)
        let labels: [Int32] = [0, 5, 2, 2]
        var gradient = prefilled(logits.count)
        CrossEntropy.backward(logits: logits, labels: labels, logitsGradient: &gradient, batch: batch, classes: classes, scale: 0.7)
        checkGradient("cross-entropy", values: logits, analytic: gradient, step: 1e-3) {
            0.7 * CrossEntropy.forward(logits: $0, labels: labels, batch: batch, classes: classes)
        }
    }

    func testKLDivergenceGradients() {
        var random = KernelTestRandom(seed: 71)
        let batch = 3, classes = 5, temperature: Float = 3
        let student = random.array(batch * classes, scale: 4), teacher = random.array(batch * classes, scale: 4)
        for reduction in KLDivergence.Reduction.allCases {
            // The OFA weighting gamma * T^2 as the scale.
            let scale: Float = 0.5 * temperature * temperature
            var gradient = prefilled(student.count)
            KLDivergence.backward(studentLogits: student, teacherLogits: teacher, studentGradient: &gradient,
                                  batch: batch, classes: classes, temperature: temperature, reduction: reduction, scale: scale)
            checkGradient("KL \(reduction)", values: student, analytic: gradient, step: 1e-3) {
                Double(scale) * KLDivergence.forward(studentLogits: $0, teacherLogits: teacher, batch: batch, classes: classes,
                                                     temperature: temperature, reduction: reduction)
            }
        }
    }
}
