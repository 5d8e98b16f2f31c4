import Foundation
import Model

/// Times the kernels on MSDNet-typical shapes (CIFAR, batch 64 by default) so that the
/// per-operator cost is measured rather than guessed. `disttrain bench` prints the result.
public enum KernelBenchmark {
    /// One operator's timing: the best of the repetitions, and the arithmetic rate where the
    /// operator's work is counted in floating-point operations (2 per multiply-add).
    public struct Measurement: Sendable, CustomStringConvertible {
        public var name: String
        public var milliseconds: Double
        public var gigaflopsPerSecond: Double?

        public var description: String {
            let padded = name.count < 64 ? name + String(repeating: " ", count: 64 - name.count) : name
            let rate = gigaflopsPerSecond.map { String(format: "  %7.1f GFLOP/s", $0) } ?? ""
            return padded + String(format: " %9.3f ms", milliseconds) + rate
        }
    }

    /// `body` run `repetitions` times after one warm-up call: the fastest.
    static func measure(_ name: String, flops: Double? = nil, repetitions: Int, _ body: () -> Void) -> Measurement {
        body()
        var best = Double.infinity
        for _ in 0..<max(1, repetitions) {
            let start = ContinuousClock.now
            body()
            let elapsed = ContinuousClock.now - start
            best = min(best, Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15)
        }
        return Measurement(name: name, milliseconds: best, gigaflopsPerSecond: flops.map { $0 / (best * 1e-3) / 1e9 })
    }

    /// The ceiling every convolution is measured against: a square single-precision matrix
    /// product through `MatrixMultiply` (OpenBLAS split over the compute threads).
    public static func sgemm(side: Int = 1024, repetitions: Int = 5) -> Measurement {
        var generator = BenchmarkData(seed: 1)
        let a = generator.buffer(side * side), b = generator.buffer(side * side), c = generator.buffer(side * side)
        defer { for pointer in [a, b, c] { pointer.deallocate() } }
        return measure("SGEMM \(side)x\(side)x\(side)", flops: 2 * Double(side * side * side), repetitions: repetitions) {
            MatrixMultiply.multiply(transposeA: false, transposeB: false, rows: side, columns: side, inner: side,
                                    a: a, leadingA: side, b: b, leadingB: side, beta: 0, c: c, leadingC: side)
        }
    }

    /// Runs every operator `repetitions` times after one warm-up call and reports the fastest.
    public static func run(batch: Int = 64, repetitions: Int = 5) -> [Measurement] {
        var measurements = [sgemm(repetitions: repetitions)]
        func time(_ name: String, flops: Double? = nil, _ body: () -> Void) {
            measurements.append(measure(name, flops: flops, repetitions: repetitions, body))
        }
        var generator = BenchmarkData(seed: 2)

        // The brief's reference shapes, then MSDNet CIFAR layers (growth 6, bottleneck widths
        // 6 to 48, the widest direct layer, the stride-2 down-sampling path and a classifier
        // convolution).
        let convolutions = [
            ConvolutionGeometry(inputChannels: 32, outputChannels: 32, kernelSize: 3, stride: 1, padding: 1,
                                batch: batch, inputHeight: 32, inputWidth: 32),
            ConvolutionGeometry(inputChannels: 64, outputChannels: 32, kernelSize: 1,
                                batch: batch, inputHeight: 16, inputWidth: 16),
            ConvolutionGeometry(inputChannels: 6, outputChannels: 6, kernelSize: 3, stride: 1, padding: 1,
                                batch: batch, inputHeight: 32, inputWidth: 32),
            ConvolutionGeometry(inputChannels: 12, outputChannels: 6, kernelSize: 3, stride: 1, padding: 1,
                                batch: batch, inputHeight: 16, inputWidth: 16),
            ConvolutionGeometry(inputChannels: 48, outputChannels: 12, kernelSize: 3, stride: 1, padding: 1,
                                batch: batch, inputHeight: 8, inputWidth: 8),
            ConvolutionGeometry(inputChannels: 6, outputChannels: 6, kernelSize: 3, stride: 2, padding: 1,
                                batch: batch, inputHeight: 32, inputWidth: 32),
            ConvolutionGeometry(inputChannels: 96, outputChannels: 24, kernelSize: 3, stride: 1, padding: 1,
                                batch: batch, inputHeight: 8, inputWidth: 8),
            ConvolutionGeometry(inputChannels: 24, outputChannels: 12, kernelSize: 3, stride: 2, padding: 1,
                                batch: batch, inputHeight: 16, inputWidth: 16),
            ConvolutionGeometry(inputChannels: 64, outputChannels: 6, kernelSize: 1,
                                batch: batch, inputHeight: 32, inputWidth: 32),
            ConvolutionGeometry(inputChannels: 200, outputChannels: 48, kernelSize: 1,
                                batch: batch, inputHeight: 8, inputWidth: 8),
            ConvolutionGeometry(inputChannels: 384, outputChannels: 128, kernelSize: 3, stride: 2, padding: 1,
                                batch: batch, inputHeight: 8, inputWidth: 8),
        ]
        for g in convolutions {
            let input = generator.buffer(g.inputCount), weight = generator.buffer(g.weightCount)
            let output = generator.buffer(g.outputCount), workspace = generator.buffer(max(1, g.workspaceCount))
            let inputGradient = generator.buffer(g.inputCount), weightGradient = generator.buffer(g.weightCount)
            let flops = 2 * Double(g.multiplyAccumulates)
            let algorithm = g.isPointwise ? "sgemm" : DirectConvolution.isApplicable(g) ? "direct" : "im2col+sgemm"
            let shape = "\(g.kernelSize)x\(g.kernelSize)/\(g.stride) \(g.inputChannels)->\(g.outputChannels) at \(g.inputHeight)x\(g.inputWidth) \(algorithm)"
            time("conv \(shape) forward", flops: flops) {
                Convolution.forward(input: input, weight: weight, bias: nil, output: output, geometry: g, workspace: workspace)
            }
            time("conv \(shape) backward (input+weight)", flops: 2 * flops) {
                Convolution.backward(outputGradient: output, input: input, weight: weight, inputGradient: inputGradient,
                                     weightGradient: weightGradient, biasGradient: nil, geometry: g, workspace: workspace)
            }
            if !g.isPointwise && !DirectConvolution.isApplicable(g) {
                time("  im2col \(shape)") { ImageColumns.imageToColumns(input, columns: workspace, geometry: g) }
                time("  col2im \(shape)") { ImageColumns.columnsToImage(workspace, accumulatingInto: inputGradient, geometry: g) }
            }
            for pointer in [input, weight, output, workspace, inputGradient, weightGradient] { pointer.deallocate() }
        }

        let channels = 64, count = batch * 32 * 32
        let x = generator.buffer(channels * count), y = generator.buffer(channels * count)
        let dy = generator.buffer(channels * count), dx = generator.buffer(channels * count)
        let gamma = generator.buffer(channels), beta = generator.buffer(channels)
        let runningMean = generator.buffer(channels), runningVariance = generator.buffer(channels)
        let savedMean = generator.buffer(channels), savedInverse = generator.buffer(channels)
        let dGamma = generator.buffer(channels), dBeta = generator.buffer(channels)
        for c in 0..<channels { runningVariance[c] = 1 }
        let shape = "[\(channels), \(count)]"
        time("BN+ReLU training forward \(shape)") {
            BatchNorm2d.forwardTraining(input: x, output: y, weight: gamma, bias: beta, runningMean: runningMean,
                                        runningVariance: runningVariance, savedMean: savedMean,
                                        savedInverseStandardDeviation: savedInverse, channels: channels, count: count, relu: true)
        }
        time("BN+ReLU backward \(shape)") {
            BatchNorm2d.backward(outputGradient: dy, input: x, weight: gamma, bias: beta, savedMean: savedMean,
                                 savedInverseStandardDeviation: savedInverse, inputGradient: dx, weightGradient: dGamma,
                                 biasGradient: dBeta, channels: channels, count: count, relu: true)
        }
        time("BN+ReLU inference forward \(shape)") {
            BatchNorm2d.forwardInference(input: x, output: y, weight: gamma, bias: beta, runningMean: runningMean,
                                         runningVariance: runningVariance, channels: channels, count: count, relu: true)
        }
        time("ReLU forward \(shape)") { ReLU.forward(input: x, output: y, count: channels * count) }
        time("ReLU backward \(shape)") { ReLU.backward(outputGradient: dy, output: y, inputGradient: dx, count: channels * count) }
        time("gradient rescale backward \(shape)") {
            GradientEquilibrium.rescaleInPlace(dx, count: channels * count, factor: 0.5)
        }

        let pool = PoolingGeometry(channels: 64, batch: batch, inputHeight: 56, inputWidth: 56, kernelSize: 3, stride: 2, padding: 1)
        let poolInput = generator.buffer(pool.inputCount), poolInputGradient = generator.buffer(pool.inputCount)
        let poolOutput = generator.buffer(pool.outputCount)
        let indices = UnsafeMutablePointer<Int32>.allocate(capacity: pool.outputCount)
        time("max pool 3x3/2 pad 1, 64 ch at 56x56 forward") {
            MaxPool.forward(input: poolInput, output: poolOutput, indices: indices, geometry: pool)
        }
        time("max pool 3x3/2 pad 1, 64 ch at 56x56 backward") {
            MaxPool.backward(outputGradient: poolOutput, indices: indices, inputGradient: poolInputGradient, geometry: pool)
        }
        for pointer in [poolInput, poolInputGradient, poolOutput] { pointer.deallocate() }
        let average = PoolingGeometry(channels: 128, batch: batch, inputHeight: 2, inputWidth: 2, kernelSize: 2)
        time("avg pool 2x2, 128 ch at 2x2 forward") { AveragePool.forward(input: x, output: y, geometry: average) }

        let features = 128, classes = 100
        let linearWeight = generator.buffer(classes * features), linearBias = generator.buffer(classes)
        time("linear \(features)->\(classes) forward", flops: 2 * Double(batch * features * classes)) {
            Linear.forward(input: x, weight: linearWeight, bias: linearBias, output: y, batch: batch, inputFeatures: features,
                           outputFeatures: classes, inputLayout: .featureMajor)
        }
        let labels = UnsafeMutablePointer<Int32>.allocate(capacity: batch)
        for n in 0..<batch { labels[n] = Int32(n % classes) }
        time("cross-entropy forward+backward [\(batch), \(classes)]") {
            _ = CrossEntropy.forward(logits: x, labels: labels, batch: batch, classes: classes)
            CrossEntropy.backward(logits: x, labels: labels, logitsGradient: dx, batch: batch, classes: classes)
        }
        time("KL divergence forward+backward [\(batch), \(classes)]") {
            _ = KLDivergence.forward(studentLogits: x, teacherLogits: dy, batch: batch, classes: classes, temperature: 4)
            KLDivergence.backward(studentLogits: x, teacherLogits: dy, studentGradient: dx, batch: batch, classes: classes,
                                  temperature: 4)
        }
        for pointer in [x, y, dy, dx, gamma, beta, runningMean, runningVariance, savedMean, savedInverse, dGamma, dBeta,
                        linearWeight, linearBias] {
            pointer.deallocate()
        }
        indices.deallocate()
        labels.deallocate()
        return measurements
    }
}

/// Allocates benchmark buffers filled with small deterministic values (the timings do not
/// depend on them, but NaNs or denormals would distort them).
private struct BenchmarkData {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        for i in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            pointer[i] = Float(state >> 40) / Float(1 << 24) - 0.5
        }
        return pointer
    }
}
