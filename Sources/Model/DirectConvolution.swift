/// Direct convolution for stride-1 convolutions with few output channels (MSDNet's CIFAR 3x3
/// layers produce 6 or 12 channels), where an im2col matrix of `Cin*k*k` rows feeding an SGEMM
/// with only `Cout` rows is memory-bound.
///
/// The input is copied once into a zero-padded buffer `P[ci, n, Hp, Wp]`. Within one padded
/// plane, output position `(oy, ox)` maps to `q = oy*Wp + ox` and kernel tap `(ky, kx)` to the
/// offset `ky*Wp + kx`, so every output is `Y[co][q] = sum_{ci, tap} W[co, ci, tap] * P[ci][q + tap]`:
/// contiguous vector loads with no bounds checks (the `Wp - Wo` columns of `q` past each row are
/// computed and discarded). Four output channels share every loaded input vector.
///
/// Backward uses the same kernel: the input gradient is the correlation of the zero-padded output
/// gradient with the spatially flipped, channel-transposed weights; the weight gradient is a dot
/// product of the output gradient with the shifted padded input.
enum DirectConvolution {
    /// Output channels computed together from each loaded input vector.
    static let blockWidth = 4
    /// Floats per vector.
    static let vectorWidth = FloatVector.scalarCount
    /// Scratch slots (threads) the workspace is sized for.
    static let maximumSlots = 4
    /// Convolutions with at most this many output channels take the direct path: the measured
    /// crossover with im2col + OpenBLAS SGEMM (at 24 output channels SGEMM was as fast or faster).
    static let maximumOutputChannels = 16

    /// Floats readable past the last padded plane: a vector starting at the last position
    /// `q < length` plus the largest tap offset ends at most this far beyond it.
    static let slack = 2 * vectorWidth

    static func roundedUp(_ count: Int) -> Int { (count + vectorWidth - 1) / vectorWidth * vectorWidth }

    static func isApplicable(_ g: ConvolutionGeometry) -> Bool {
        g.stride == 1 && g.kernelSize > 1 && g.padding < g.kernelSize && g.outputChannels <= maximumOutputChannels
    }

    /// Sizes and workspace layout of one geometry.
    struct Layout {
        let geometry: ConvolutionGeometry
        var taps: Int { geometry.kernelSize * geometry.kernelSize }
        var paddedHeight: Int { geometry.inputHeight + 2 * geometry.padding }
        var paddedWidth: Int { geometry.inputWidth + 2 * geometry.padding }
        var paddedPlane: Int { paddedHeight * paddedWidth }
        /// Forward positions `q` per image: up to the last valid output, rounded up to whole
        /// vectors (the extra positions read at most `slack` floats past the last plane).
        var length: Int { roundedUp((geometry.outputHeight - 1) * paddedWidth + geometry.outputWidth) }
        var paddedInputCount: Int { geometry.inputChannels * geometry.batch * paddedPlane + slack }
        var outputBlocks: Int { (geometry.outputChannels + blockWidth - 1) / blockWidth }
        var inputBlocks: Int { (geometry.inputChannels + blockWidth - 1) / blockWidth }

        /// Padding of the output gradient for the input-gradient correlation.
        var gradientPadding: Int { geometry.kernelSize - 1 - geometry.padding }
        var gradientHeight: Int { geometry.outputHeight + 2 * gradientPadding }
        var gradientWidth: Int { geometry.outputWidth + 2 * gradientPadding }
        var gradientPlane: Int { gradientHeight * gradientWidth }
        var gradientLength: Int { roundedUp((geometry.inputHeight - 1) * gradientWidth + geometry.inputWidth) }
        var paddedGradientCount: Int { geometry.outputChannels * geometry.batch * gradientPlane + slack }

        /// Packed weights hold each weight repeated across a whole vector, so the inner loop
        /// multiplies by a plain vector load instead of a broadcast.
        var forwardPackedCount: Int { outputBlocks * blockWidth * geometry.inputChannels * taps * vectorWidth }
        var backwardPackedCount: Int { inputBlocks * blockWidth * geometry.outputChannels * taps * vectorWidth }
        /// The output gradient in padded-width rows `D[co, n][oy*Wp + ox]`, zero at every other
        /// position `q < length`.
        var rowGradientCount: Int { geometry.outputChannels * geometry.batch * length }
        var partialWeightCount: Int { outputBlocks * blockWidth * geometry.inputChannels * taps }

        var forwardCount: Int {
            paddedInputCount + forwardPackedCount + maximumSlots * blockWidth * length
        }
        var weightGradientCount: Int {
            paddedInputCount + rowGradientCount + maximumSlots * partialWeightCount
        }
        var inputGradientCount: Int {
            paddedGradientCount + backwardPackedCount + maximumSlots * blockWidth * gradientLength
        }
        var workspaceCount: Int { max(forwardCount, weightGradientCount, inputGradientCount) }
    }

    // MARK: Forward

    static func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        output: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry,
                        workspace: UnsafeMutablePointer<Float>) {
        let layout = Layout(geometry: g)
        let padded = workspace
        let packed = padded + layout.paddedInputCount
        let scratch = packed + layout.forwardPackedCount
        pad(input, into: padded, planes: g.inputChannels * g.batch, height: g.inputHeight, width: g.inputWidth,
            padding: g.padding)
        let taps = layout.taps, inputChannels = g.inputChannels, outputChannels = g.outputChannels
        for block in 0..<layout.outputBlocks {
            for ci in 0..<inputChannels {
                for t in 0..<taps {
                    for j in 0..<blockWidth {
                        let co = block * blockWidth + j
                        packed.storeVector(FloatVector(repeating: co < outputChannels ? weight[(co * inputChannels + ci) * taps + t] : 0),
                                           at: (((block * inputChannels + ci) * taps + t) * blockWidth + j) * vectorWidth)
                    }
                }
            }
        }
        let length = layout.length, paddedWidth = layout.paddedWidth, plane = layout.paddedPlane
        let outputHeight = g.outputHeight, outputWidth = g.outputWidth, batch = g.batch
        withUnsafeTemporaryAllocation(of: Int.self, capacity: taps) { offsets in
            for t in 0..<taps { offsets[t] = (t / g.kernelSize) * paddedWidth + t % g.kernelSize }
            let tapOffsets = UnsafePointer(offsets.baseAddress!)
            ComputeThreads.parallelChunks(batch, maximumChunks: maximumSlots,
                                          costPerItem: length * inputChannels * taps * layout.outputBlocks) { slot, images in
                let rows = scratch + slot * blockWidth * length
                for image in images {
                    for block in 0..<layout.outputBlocks {
                        let rowCount = min(blockWidth, outputChannels - block * blockWidth)
                        correlate(source: padded + image * plane, channelStride: batch * plane, channels: inputChannels,
                                  taps: tapOffsets, tapCount: taps,
                                  weights: packed + block * inputChannels * taps * blockWidth * vectorWidth,
                                  length: length, destination: rows, destinationStride: length,
                                  rows: rowCount, accumulate: false)
                        for j in 0..<rowCount {
                            let co = block * blockWidth + j
                            let shift = bias?[co] ?? 0
                            let target = output + (co * batch + image) * outputHeight * outputWidth
                            let source = rows + j * length
                            for oy in 0..<outputHeight {
                                let targetRow = target + oy * outputWidth, sourceRow = source + oy * paddedWidth
                                for ox in 0..<outputWidth { targetRow[ox] = sourceRow[ox] + shift }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Backward

    /// `dW[co, ci, ky, kx] += sum_{n, oy, ox} dY[co, n, oy, ox] * P[ci, n, oy + ky, ox + kx]`.
    static func weightGradient(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>,
                               weightGradient: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry,
                               workspace: UnsafeMutablePointer<Float>) {
        let layout = Layout(geometry: g)
        let padded = workspace
        let rowGradient = padded + layout.paddedInputCount
        let partials = rowGradient + layout.rowGradientCount
        pad(input, into: padded, planes: g.inputChannels * g.batch, height: g.inputHeight, width: g.inputWidth,
            padding: g.padding)
        let outputHeight = g.outputHeight, outputWidth = g.outputWidth, paddedWidth = layout.paddedWidth
        let rowPlane = layout.length
        // D: each output row followed by Wp - Wo zeros, matching the padded-width positions q.
        ComputeThreads.parallelFor(g.outputChannels * g.batch, costPerItem: rowPlane) { range in
            for plane in range {
                let source = outputGradient + plane * outputHeight * outputWidth
                let target = rowGradient + plane * rowPlane
                target.update(repeating: 0, count: rowPlane)
                for oy in 0..<outputHeight {
                    (target + oy * paddedWidth).update(from: source + oy * outputWidth, count: outputWidth)
                }
            }
        }
        let taps = layout.taps, inputChannels = g.inputChannels, outputChannels = g.outputChannels
        let length = layout.length, plane = layout.paddedPlane, batch = g.batch
        let partialCount = layout.partialWeightCount
        partials.update(repeating: 0, count: maximumSlots * partialCount)
        withUnsafeTemporaryAllocation(of: Int.self, capacity: taps) { offsets in
            for t in 0..<taps { offsets[t] = (t / g.kernelSize) * paddedWidth + t % g.kernelSize }
            ComputeThreads.parallelChunks(batch, maximumChunks: maximumSlots,
                                          costPerItem: length * inputChannels * taps * layout.outputBlocks) { slot, images in
                let partial = partials + slot * partialCount
                for image in images {
                    for block in 0..<layout.outputBlocks {
                        let rowCount = min(blockWidth, outputChannels - block * blockWidth)
                        // Rows past the last channel repeat a valid row; their sums are discarded.
                        func row(_ j: Int) -> UnsafePointer<Float> {
                            UnsafePointer(rowGradient + ((block * blockWidth + min(j, rowCount - 1)) * batch + image) * rowPlane)
                        }
                        let gradientRows = (row(0), row(1), row(2), row(3))
                        for ci in 0..<inputChannels {
                            let source = UnsafePointer(padded + (ci * batch + image) * plane)
                            for t in 0..<taps {
                                let sums = dotProducts(gradientRows, source + offsets[t], length: length)
                                let base = ((block * blockWidth) * inputChannels + ci) * taps + t
                                let channelStride = inputChannels * taps
                                partial[base] += sums.0
                                partial[base + channelStride] += sums.1
                                partial[base + 2 * channelStride] += sums.2
                                partial[base + 3 * channelStride] += sums.3
                            }
                        }
                    }
                }
            }
        }
        let count = outputChannels * inputChannels * taps
        for slot in 0..<maximumSlots {
            let partial = partials + slot * partialCount
            for i in 0..<count { weightGradient[i] += partial[i] }
        }
    }

    /// `dX += correlate(pad(dY, k - 1 - p), flip(W)^T)`: the adjoint of `forward`.
    static func inputGradient(outputGradient: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              inputGradient: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry,
                              workspace: UnsafeMutablePointer<Float>) {
        let layout = Layout(geometry: g)
        let padded = workspace
        let packed = padded + layout.paddedGradientCount
        let scratch = packed + layout.backwardPackedCount
        pad(outputGradient, into: padded, planes: g.outputChannels * g.batch, height: g.outputHeight,
            width: g.outputWidth, padding: layout.gradientPadding)
        let taps = layout.taps, k = g.kernelSize
        let inputChannels = g.inputChannels, outputChannels = g.outputChannels
        for block in 0..<layout.inputBlocks {
            for co in 0..<outputChannels {
                for t in 0..<taps {
                    let flipped = (k - 1 - t / k) * k + (k - 1 - t % k)
                    for j in 0..<blockWidth {
                        let ci = block * blockWidth + j
                        packed.storeVector(FloatVector(repeating: ci < inputChannels ? weight[(co * inputChannels + ci) * taps + flipped] : 0),
                                           at: (((block * outputChannels + co) * taps + t) * blockWidth + j) * vectorWidth)
                    }
                }
            }
        }
        let length = layout.gradientLength, gradientWidth = layout.gradientWidth, plane = layout.gradientPlane
        let height = g.inputHeight, width = g.inputWidth, batch = g.batch
        withUnsafeTemporaryAllocation(of: Int.self, capacity: taps) { offsets in
            for t in 0..<taps { offsets[t] = (t / k) * gradientWidth + t % k }
            let tapOffsets = UnsafePointer(offsets.baseAddress!)
            ComputeThreads.parallelChunks(batch, maximumChunks: maximumSlots,
                                          costPerItem: length * outputChannels * taps * layout.inputBlocks) { slot, images in
                let rows = scratch + slot * blockWidth * length
                for image in images {
                    for block in 0..<layout.inputBlocks {
                        let rowCount = min(blockWidth, inputChannels - block * blockWidth)
                        correlate(source: padded + image * plane, channelStride: batch * plane, channels: outputChannels,
                                  taps: tapOffsets, tapCount: taps,
                                  weights: packed + block * outputChannels * taps * blockWidth * vectorWidth,
                                  length: length, destination: rows, destinationStride: length,
                                  rows: rowCount, accumulate: false)
                        for j in 0..<rowCount {
                            let ci = block * blockWidth + j
                            let target = inputGradient + (ci * batch + image) * height * width
                            let source = rows + j * length
                            for iy in 0..<height {
                                let targetRow = target + iy * width, sourceRow = source + iy * gradientWidth
                                for ix in 0..<width { targetRow[ix] += sourceRow[ix] }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Inner kernels

    /// Copies `planes` planes of `height x width` into planes of `(height + 2p) x (width + 2p)`
    /// with a zero border, followed by `slack` zeros.
    static func pad(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>, planes: Int,
                    height: Int, width: Int, padding: Int) {
        let paddedWidth = width + 2 * padding, paddedHeight = height + 2 * padding
        (destination + planes * paddedHeight * paddedWidth).update(repeating: 0, count: slack)
        ComputeThreads.parallelFor(planes, costPerItem: paddedHeight * paddedWidth) { range in
            for plane in range {
                let target = destination + plane * paddedHeight * paddedWidth
                let input = source + plane * height * width
                target.update(repeating: 0, count: padding * paddedWidth)
                for y in 0..<height {
                    let row = target + (y + padding) * paddedWidth
                    row.update(repeating: 0, count: padding)
                    (row + padding).update(from: input + y * width, count: width)
                    (row + padding + width).update(repeating: 0, count: padding)
                }
                (target + (height + padding) * paddedWidth).update(repeating: 0, count: padding * paddedWidth)
            }
        }
    }

    @inline(__always)
    static func store(_ value: FloatVector, _ pointer: UnsafeMutablePointer<Float>, accumulate: Bool) {
        pointer.storeVector(accumulate ? value + pointer.loadVector() : value)
    }

    /// `destination[j*stride + q] (+)= sum_{c, t} weights[c][t][j] * source[c*channelStride + q + taps[t]]`,
    /// each weight stored as a whole vector of equal lanes.
    /// for `j < rows`, `q < length` (a multiple of the vector width).
    @inline(__always)
    static func correlate(source: UnsafePointer<Float>, channelStride: Int, channels: Int,
                          taps: UnsafePointer<Int>, tapCount: Int, weights: UnsafePointer<Float>,
                          length: Int, destination: UnsafeMutablePointer<Float>, destinationStride: Int,
                          rows: Int, accumulate: Bool) {
        var q = 0
        while q < length {
            var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
            var w = weights
            var channel = source + q
            for _ in 0..<channels {
                for t in 0..<tapCount {
                    let x = (channel + taps[t]).loadVector()
                    a0 += x * w.loadVector(at: 0)
                    a1 += x * w.loadVector(at: vectorWidth)
                    a2 += x * w.loadVector(at: 2 * vectorWidth)
                    a3 += x * w.loadVector(at: 3 * vectorWidth)
                    w += blockWidth * vectorWidth
                }
                channel += channelStride
            }
            let target = destination + q
            store(a0, target, accumulate: accumulate)
            if rows > 1 { store(a1, target + destinationStride, accumulate: accumulate) }
            if rows > 2 { store(a2, target + 2 * destinationStride, accumulate: accumulate) }
            if rows > 3 { store(a3, target + 3 * destinationStride, accumulate: accumulate) }
            q += vectorWidth
        }
    }

    /// `(sum_q rows.j[q] * x[q])` for the four rows, `q < length` (a multiple of the vector width).
    @inline(__always)
    static func dotProducts(_ rows: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>),
                            _ x: UnsafePointer<Float>, length: Int) -> (Float, Float, Float, Float) {
        var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
        var q = 0
        while q < length {
            let value = x.loadVector(at: q)
            a0 += value * rows.0.loadVector(at: q)
            a1 += value * rows.1.loadVector(at: q)
            a2 += value * rows.2.loadVector(at: q)
            a3 += value * rows.3.loadVector(at: q)
            q += vectorWidth
        }
        return (a0.sum(), a1.sum(), a2.sum(), a3.sum())
    }
}
