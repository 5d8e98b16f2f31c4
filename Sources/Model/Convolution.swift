/// The shape of one 2-D convolution over a whole batch: square kernel, equal stride and zero
/// padding on both axes, no dilation, no groups (all that MSDNet uses).
public struct ConvolutionGeometry: Equatable, Sendable {
    public var inputChannels: Int
    public var outputChannels: Int
    public var kernelSize: Int
    public var stride: Int
    public var padding: Int
    public var batch: Int
    public var inputHeight: Int
    public var inputWidth: Int

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: Int = 0, batch: Int, inputHeight: Int, inputWidth: Int) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.batch = batch
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
    }

    /// `(H + 2p - k) / s + 1`, rounded down as PyTorch does.
    public var outputHeight: Int { (inputHeight + 2 * padding - kernelSize) / stride + 1 }
    /// `(W + 2p - k) / s + 1`, rounded down as PyTorch does.
    public var outputWidth: Int { (inputWidth + 2 * padding - kernelSize) / stride + 1 }

    /// A 1x1, stride-1, unpadded convolution: the channel-major input `[Cin, N*H*W]` already is
    /// the SGEMM operand, so no im2col copy is made.
    public var isPointwise: Bool { kernelSize == 1 && stride == 1 && padding == 0 }

    /// Rows of the im2col matrix: `Cin * k * k` (the SGEMM inner dimension).
    public var columnRows: Int { inputChannels * kernelSize * kernelSize }
    /// Columns of the im2col matrix and of the output: `N * Ho * Wo`.
    public var outputPositions: Int { batch * outputHeight * outputWidth }

    /// Floats of input `[Cin, N, H, W]`.
    public var inputCount: Int { inputChannels * batch * inputHeight * inputWidth }
    /// Floats of output `[Cout, N, Ho, Wo]`.
    public var outputCount: Int { outputChannels * outputPositions }
    /// Floats of weight `[Cout, Cin, k, k]` (PyTorch layout).
    public var weightCount: Int { outputChannels * columnRows }

    /// Floats of scratch that `Convolution.forward` and `Convolution.backward` need: the padded
    /// copies of the direct path for a stride-1 convolution with few output channels, else the
    /// im2col matrix `[Cin*k*k, N*Ho*Wo]` (none for a pointwise convolution) followed by the
    /// per-thread partials of a `NarrowWeightGradient`.
    public var workspaceCount: Int {
        if DirectConvolution.isApplicable(self) { return DirectConvolution.Layout(geometry: self).workspaceCount }
        let narrow = NarrowWeightGradient.isApplicable(self) ? NarrowWeightGradient.partialCount(self) : 0
        return (isPointwise ? 0 : columnRows * outputPositions) + narrow
    }

    /// Multiply-accumulates of the forward pass (the reference FLOP counter's convention).
    public var multiplyAccumulates: Int { outputCount * columnRows }
}

/// 2-D convolution (PyTorch `nn.Conv2d` semantics: cross-correlation, zero padding) on
/// channel-major activations:
/// `Y[co, n, oy, ox] = b[co] + sum_{ci, ky, kx} W[co, ci, ky, kx] * X[ci, n, oy*s - p + ky, ox*s - p + kx]`
/// (X is 0 outside the image).
///
/// Three algorithms, chosen from the geometry alone: a pointwise convolution is one SGEMM on the
/// activation as it is; a stride-1 convolution with at most 24 output channels runs
/// `DirectConvolution`; every other one is im2col plus one SGEMM over the whole batch,
/// `Y[Cout, N*Ho*Wo] = W[Cout, Cin*k*k] x cols[Cin*k*k, N*Ho*Wo]`. The weight gradient of a
/// pointwise or im2col convolution with at most 24 output channels runs `NarrowWeightGradient`.
public enum Convolution {
    /// Computes the convolution of `input` `[Cin, N, H, W]` with `weight` `[Cout, Cin, k, k]`
    /// plus the optional `bias` `[Cout]`, OVERWRITING `output` `[Cout, N, Ho, Wo]`.
    /// `workspace` holds `geometry.workspaceCount` floats (may be nil when that is 0); `kernels`
    /// run the direct path.
    public static func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                               geometry: ConvolutionGeometry,
                               workspace: UnsafeMutablePointer<Float>?, kernels: ComputeKernels = .selected) {
        let positions = geometry.outputPositions
        let rows = geometry.columnRows
        if DirectConvolution.isApplicable(geometry) {
            guard let workspace else { preconditionFailure("Convolution.forward needs a workspace of \(geometry.workspaceCount) floats") }
            DirectConvolution.forward(input: input, weight: weight, bias: bias, output: output, geometry: geometry,
                                      workspace: workspace, kernels: kernels)
            return
        }
        let columns: UnsafePointer<Float>
        if geometry.isPointwise {
            columns = input
        } else {
            guard let workspace else { preconditionFailure("Convolution.forward needs a workspace of \(geometry.workspaceCount) floats") }
            ImageColumns.imageToColumns(input, columns: workspace, geometry: geometry)
            columns = UnsafePointer(workspace)
        }
        var beta: Float = 0
        if let bias {
            for channel in 0..<geometry.outputChannels {
                output.advanced(by: channel * positions).update(repeating: bias[channel], count: positions)
            }
            beta = 1
        }
        MatrixMultiply.multiply(transposeA: false, transposeB: false,
                                rows: geometry.outputChannels, columns: positions, inner: rows,
                                a: weight, leadingA: rows, b: columns, leadingB: positions,
                                beta: beta, c: output, leadingC: positions)
    }

    /// Backward of `forward`, ACCUMULATING into every non-nil gradient:
    /// `dW += dY x cols^T`, `db += sum over (n, oy, ox) of dY`, `dX += col2im(W^T x dY)`.
    /// `workspace` holds `geometry.workspaceCount` floats (may be nil when that is 0); its
    /// contents on entry do not matter. `kernels` run the direct path and the narrow weight gradient.
    public static func backward(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>,
                                inputGradient: UnsafeMutablePointer<Float>?,
                                weightGradient: UnsafeMutablePointer<Float>?,
                                biasGradient: UnsafeMutablePointer<Float>?,
                                geometry: ConvolutionGeometry,
                                workspace: UnsafeMutablePointer<Float>?, kernels: ComputeKernels = .selected) {
        let positions = geometry.outputPositions
        let rows = geometry.columnRows
        let outputChannels = geometry.outputChannels
        if let biasGradient {
            for channel in 0..<outputChannels {
                biasGradient[channel] = Float(Double(biasGradient[channel])
                    + VectorReduction.sum(outputGradient.advanced(by: channel * positions), count: positions))
            }
        }
        if geometry.isPointwise {
            if let weightGradient {
                accumulateWeightGradient(outputGradient: outputGradient, columns: input, weightGradient: weightGradient,
                                         geometry: geometry, partials: workspace, kernels: kernels)
            }
            if let inputGradient {
                MatrixMultiply.multiply(transposeA: true, transposeB: false,
                                        rows: rows, columns: positions, inner: outputChannels,
                                        a: weight, leadingA: rows, b: outputGradient, leadingB: positions,
                                        beta: 1, c: inputGradient, leadingC: positions)
            }
            return
        }
        guard weightGradient != nil || inputGradient != nil else { return }
        guard let workspace else { preconditionFailure("Convolution.backward needs a workspace of \(geometry.workspaceCount) floats") }
        if DirectConvolution.isApplicable(geometry) {
            if let weightGradient {
                DirectConvolution.weightGradient(outputGradient: outputGradient, input: input, weightGradient: weightGradient,
                                                 geometry: geometry, workspace: workspace, kernels: kernels)
            }
            if let inputGradient {
                DirectConvolution.inputGradient(outputGradient: outputGradient, weight: weight, inputGradient: inputGradient,
                                                geometry: geometry, workspace: workspace, kernels: kernels)
            }
            return
        }
        if let weightGradient {
            ImageColumns.imageToColumns(input, columns: workspace, geometry: geometry)
            accumulateWeightGradient(outputGradient: outputGradient, columns: workspace, weightGradient: weightGradient,
                                     geometry: geometry, partials: workspace + rows * positions, kernels: kernels)
        }
        if let inputGradient {
            MatrixMultiply.multiply(transposeA: true, transposeB: false,
                                    rows: rows, columns: positions, inner: outputChannels,
                                    a: weight, leadingA: rows, b: outputGradient, leadingB: positions,
                                    beta: 0, c: workspace, leadingC: positions)
            ImageColumns.columnsToImage(workspace, accumulatingInto: inputGradient, geometry: geometry)
        }
    }

    /// `dW += dY x columnsᵀ` (`dY` `[Cout, P]`, columns `[Cin·k·k, P]`): the two-thread split of
    /// the long sum over positions where few output channels leave SGEMM nothing to share
    /// (`partials` holds its per-thread sums), else one SGEMM.
    private static func accumulateWeightGradient(outputGradient: UnsafePointer<Float>, columns: UnsafePointer<Float>,
                                                 weightGradient: UnsafeMutablePointer<Float>,
                                                 geometry: ConvolutionGeometry, partials: UnsafeMutablePointer<Float>?,
                                                 kernels: ComputeKernels) {
        let outputChannels = geometry.outputChannels, rows = geometry.columnRows, positions = geometry.outputPositions
        if NarrowWeightGradient.isApplicable(geometry) {
            guard let partials else { preconditionFailure("Convolution.backward needs a workspace of \(geometry.workspaceCount) floats") }
            NarrowWeightGradient.accumulate(outputGradient: outputGradient, columns: columns, weightGradient: weightGradient,
                                            outputChannels: outputChannels, rows: rows, positions: positions,
                                            partials: partials, kernels: kernels)
        } else {
            MatrixMultiply.multiply(transposeA: false, transposeB: true,
                                    rows: outputChannels, columns: rows, inner: positions,
                                    a: outputGradient, leadingA: positions, b: columns, leadingB: positions,
                                    beta: 1, c: weightGradient, leadingC: rows)
        }
    }
}

/// The im2col copy and its adjoint col2im for `Convolution`.
public enum ImageColumns {
    /// For one kernel column `kx`, the output columns `ox` whose input column
    /// `ox*s - p + kx` lies inside the image: `first..<end` (empty when none).
    @inline(__always)
    static func validRange(kernelOffset: Int, size: Int, outputSize: Int, stride: Int, padding: Int) -> Range<Int> {
        // ox*s - p + k >= 0  <=>  ox >= ceil((p - k) / s); ox*s - p + k <= size - 1.
        let low = padding - kernelOffset
        let first = low <= 0 ? 0 : (low + stride - 1) / stride
        let high = size - 1 + padding - kernelOffset
        let last = high < 0 ? -1 : min(outputSize - 1, high / stride)
        return first <= last ? first..<(last + 1) : 0..<0
    }

    /// `columns[(ci, ky, kx), (n, oy, ox)] = input[ci, n, oy*s - p + ky, ox*s - p + kx]`, 0 outside.
    public static func imageToColumns(_ input: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>,
                               geometry g: ConvolutionGeometry) {
        let k = g.kernelSize, s = g.stride, p = g.padding
        let height = g.inputHeight, width = g.inputWidth
        let outputHeight = g.outputHeight, outputWidth = g.outputWidth
        let plane = height * width
        let outputPlane = outputHeight * outputWidth
        let positions = g.outputPositions
        ComputeThreads.parallelFor(g.columnRows, costPerItem: positions) { rowRange in
            for row in rowRange {
                let kx = row % k
                let ky = (row / k) % k
                let channel = row / (k * k)
                let columnsRange = validRange(kernelOffset: kx, size: width, outputSize: outputWidth, stride: s, padding: p)
                let rowsRange = validRange(kernelOffset: ky, size: height, outputSize: outputHeight, stride: s, padding: p)
                let destinationRow = columns.advanced(by: row * positions)
                for image in 0..<g.batch {
                    let source = input.advanced(by: (channel * g.batch + image) * plane)
                    let destination = destinationRow.advanced(by: image * outputPlane)
                    for oy in 0..<outputHeight {
                        let line = destination.advanced(by: oy * outputWidth)
                        guard rowsRange.contains(oy) else {
                            line.update(repeating: 0, count: outputWidth)
                            continue
                        }
                        let sourceLine = source.advanced(by: (oy * s - p + ky) * width - p + kx)
                        for ox in 0..<columnsRange.lowerBound { line[ox] = 0 }
                        if s == 1 {
                            line.advanced(by: columnsRange.lowerBound)
                                .update(from: sourceLine.advanced(by: columnsRange.lowerBound), count: columnsRange.count)
                        } else {
                            for ox in columnsRange { line[ox] = sourceLine[ox * s] }
                        }
                        for ox in columnsRange.upperBound..<outputWidth { line[ox] = 0 }
                    }
                }
            }
        }
    }

    /// The adjoint of `imageToColumns`: `image[ci, n, iy, ix] += columns[...]` summed over every
    /// column entry that was copied from `(ci, n, iy, ix)`.
    public static func columnsToImage(_ columns: UnsafePointer<Float>, accumulatingInto image: UnsafeMutablePointer<Float>,
                               geometry g: ConvolutionGeometry) {
        let k = g.kernelSize, s = g.stride, p = g.padding
        let height = g.inputHeight, width = g.inputWidth
        let outputHeight = g.outputHeight, outputWidth = g.outputWidth
        let plane = height * width
        let outputPlane = outputHeight * outputWidth
        let positions = g.outputPositions
        // Rows of one input channel all write into that channel's planes, so the parallel split
        // is over channels.
        ComputeThreads.parallelFor(g.inputChannels, costPerItem: k * k * positions) { channelRange in
            for channel in channelRange {
                for ky in 0..<k {
                    let rowsRange = validRange(kernelOffset: ky, size: height, outputSize: outputHeight, stride: s, padding: p)
                    for kx in 0..<k {
                        let columnsRange = validRange(kernelOffset: kx, size: width, outputSize: outputWidth, stride: s, padding: p)
                        let sourceRow = columns.advanced(by: ((channel * k + ky) * k + kx) * positions)
                        for imageIndex in 0..<g.batch {
                            let destination = image.advanced(by: (channel * g.batch + imageIndex) * plane)
                            let source = sourceRow.advanced(by: imageIndex * outputPlane)
                            for oy in rowsRange {
                                let line = source.advanced(by: oy * outputWidth)
                                let destinationLine = destination.advanced(by: (oy * s - p + ky) * width - p + kx)
                                if s == 1 {
                                    for ox in columnsRange { destinationLine[ox] += line[ox] }
                                } else {
                                    for ox in columnsRange { destinationLine[ox * s] += line[ox] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
