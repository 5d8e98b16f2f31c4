/// The shape of one 2-D pooling over channel-major activations `[C, N, H, W]`: square window,
/// equal stride and padding on both axes (PyTorch `ceil_mode=False`).
public struct PoolingGeometry: Equatable, Sendable {
    public var channels: Int
    public var batch: Int
    public var inputHeight: Int
    public var inputWidth: Int
    public var kernelSize: Int
    public var stride: Int
    public var padding: Int

    /// `stride` defaults to `kernelSize`, as in PyTorch.
    public init(channels: Int, batch: Int, inputHeight: Int, inputWidth: Int,
                kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        self.channels = channels
        self.batch = batch
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
    }

    /// `(H + 2p - k) / s + 1`, rounded down.
    public var outputHeight: Int { (inputHeight + 2 * padding - kernelSize) / stride + 1 }
    /// `(W + 2p - k) / s + 1`, rounded down.
    public var outputWidth: Int { (inputWidth + 2 * padding - kernelSize) / stride + 1 }
    /// `C * N`: the number of independent image planes.
    public var planes: Int { channels * batch }
    /// Floats of input `[C, N, H, W]`.
    public var inputCount: Int { planes * inputHeight * inputWidth }
    /// Floats of output `[C, N, Ho, Wo]` (and of max-pool's saved indices).
    public var outputCount: Int { planes * outputHeight * outputWidth }
}

/// Max pooling (PyTorch `nn.MaxPool2d(k, s, p)`): padding counts as minus infinity, so a window
/// takes the maximum over its in-image elements; a NaN wins (the last one), as in PyTorch.
public enum MaxPool {
    /// OVERWRITES `output` `[C, N, Ho, Wo]` with the window maxima and `indices` (same count) with
    /// the position `iy * W + ix` of each maximum inside its plane (the first one on ties).
    public static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                               indices: UnsafeMutablePointer<Int32>, geometry g: PoolingGeometry) {
        let height = g.inputHeight, width = g.inputWidth
        let outputHeight = g.outputHeight, outputWidth = g.outputWidth
        let k = g.kernelSize, s = g.stride, p = g.padding
        ComputeThreads.parallelFor(g.planes, costPerItem: outputHeight * outputWidth * k * k) { range in
            for plane in range {
                let source = input + plane * height * width
                let destination = output + plane * outputHeight * outputWidth
                let destinationIndices = indices + plane * outputHeight * outputWidth
                for oy in 0..<outputHeight {
                    let rowStart = max(0, oy * s - p), rowEnd = min(height, oy * s - p + k)
                    for ox in 0..<outputWidth {
                        let columnStart = max(0, ox * s - p), columnEnd = min(width, ox * s - p + k)
                        var best = -Float.infinity
                        var bestIndex = rowStart * width + columnStart
                        for iy in rowStart..<rowEnd {
                            for ix in columnStart..<columnEnd {
                                let value = source[iy * width + ix]
                                if value > best || value.isNaN {
                                    best = value
                                    bestIndex = iy * width + ix
                                }
                            }
                        }
                        destination[oy * outputWidth + ox] = best
                        destinationIndices[oy * outputWidth + ox] = Int32(bestIndex)
                    }
                }
            }
        }
    }

    /// `inputGradient[plane][indices[o]] += outputGradient[o]` (ACCUMULATES).
    public static func backward(outputGradient: UnsafePointer<Float>, indices: UnsafePointer<Int32>,
                                inputGradient: UnsafeMutablePointer<Float>, geometry g: PoolingGeometry) {
        let inputPlane = g.inputHeight * g.inputWidth
        let outputPlane = g.outputHeight * g.outputWidth
        ComputeThreads.parallelFor(g.planes, costPerItem: outputPlane) { range in
            for plane in range {
                let destination = inputGradient + plane * inputPlane
                let source = outputGradient + plane * outputPlane
                let planeIndices = indices + plane * outputPlane
                for o in 0..<outputPlane { destination[Int(planeIndices[o])] += source[o] }
            }
        }
    }
}

/// Average pooling without padding (PyTorch `nn.AvgPool2d(k, s)`, as MSDNet's `AvgPool2d(2)`):
/// each output is the mean of its `k x k` window.
public enum AveragePool {
    /// OVERWRITES `output` `[C, N, Ho, Wo]`. `geometry.padding` must be 0.
    public static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                               geometry g: PoolingGeometry) {
        precondition(g.padding == 0, "AveragePool supports padding 0 only, got \(g.padding)")
        let height = g.inputHeight, width = g.inputWidth
        let outputHeight = g.outputHeight, outputWidth = g.outputWidth
        let k = g.kernelSize, s = g.stride
        let inverseArea = 1 / Float(k * k)
        ComputeThreads.parallelFor(g.planes, costPerItem: outputHeight * outputWidth * k * k) { range in
            for plane in range {
                let source = input + plane * height * width
                let destination = output + plane * outputHeight * outputWidth
                for oy in 0..<outputHeight {
                    for ox in 0..<outputWidth {
                        var total: Float = 0
                        for ky in 0..<k {
                            for kx in 0..<k { total += source[(oy * s + ky) * width + ox * s + kx] }
                        }
                        destination[oy * outputWidth + ox] = total * inverseArea
                    }
                }
            }
        }
    }

    /// `inputGradient[window(o)] += outputGradient[o] / (k * k)` (ACCUMULATES).
    public static func backward(outputGradient: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>,
                                geometry g: PoolingGeometry) {
        precondition(g.padding == 0, "AveragePool supports padding 0 only, got \(g.padding)")
        let height = g.inputHeight, width = g.inputWidth
        let outputHeight = g.outputHeight, outputWidth = g.outputWidth
        let k = g.kernelSize, s = g.stride
        let inverseArea = 1 / Float(k * k)
        ComputeThreads.parallelFor(g.planes, costPerItem: outputHeight * outputWidth * k * k) { range in
            for plane in range {
                let destination = inputGradient + plane * height * width
                let source = outputGradient + plane * outputHeight * outputWidth
                for oy in 0..<outputHeight {
                    for ox in 0..<outputWidth {
                        let share = source[oy * outputWidth + ox] * inverseArea
                        for ky in 0..<k {
                            for kx in 0..<k { destination[(oy * s + ky) * width + ox * s + kx] += share }
                        }
                    }
                }
            }
        }
    }
}
