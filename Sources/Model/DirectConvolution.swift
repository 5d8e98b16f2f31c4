/// Direct convolution for stride-1 convolutions with few output channels (MSDNet's CIFAR 3x3
/// layers produce 6 or 12 channels), where an im2col matrix of `Cin*k*k` rows feeding an SGEMM
/// with only `Cout` rows is memory-bound.
///
/// The input is copied once into a zero-padded buffer `P[ci, n, Hp, Wp]`. Within one padded
/// plane, output position `(oy, ox)` maps to `q = oy*Wp + ox` and kernel tap `(ky, kx)` to the
/// offset `ky*Wp + kx`, so every output is `Y[co][q] = sum_{ci, tap} W[co, ci, tap] * P[ci][q + tap]`:
/// contiguous vector loads with no bounds checks (the `Wp - Wo` columns of `q` past each row are
/// computed and discarded). The inner kernels (`correlate`, `dotProducts3x3`) are C, one copy per
/// instruction set (`ComputeKernels`): six output channels times two vectors of positions are
/// accumulated at once, twelve independent fused multiply-adds per loaded pair of input vectors.
///
/// Backward uses the same kernel: the input gradient is the correlation of the zero-padded output
/// gradient with the spatially flipped, channel-transposed weights; the weight gradient is a dot
/// product of the output gradient with the shifted padded input, run over several images' planes
/// at once.
public enum DirectConvolution {
    /// Rows (output channels forward, input channels for the input gradient) computed together.
    static let blockWidth = 6
    /// Positions per inner step of `correlate` on the widest path: two AVX-512 vectors. Scratch
    /// rows are this many positions long, so every path's (shorter) step fits.
    static let stepWidth = 32
    /// Output channels per weight-gradient group: with three taps of one kernel row that is
    /// nine accumulators.
    static let gradientGroupWidth = 3
    /// Positions of one weight-gradient pass: the output-gradient rows and input planes it reads
    /// stay in the first-level caches.
    static let gradientChunkPositions = 2048
    /// Scratch slots (threads) the workspace is sized for.
    static let maximumSlots = 4
    /// Convolutions with at most this many output channels take the direct path: at 24 (MSDNet
    /// CIFAR's widest 3x3 layer, 96->24 at 8x8) it measured about twice as fast as im2col +
    /// OpenBLAS SGEMM.
    static let maximumOutputChannels = 24

    /// Floats readable past the last padded plane: a step starting at the last position
    /// `q < length` plus the largest tap offset ends at most this far beyond it.
    static let slack = 2 * stepWidth

    static func roundedUp(_ count: Int) -> Int { (count + stepWidth - 1) / stepWidth * stepWidth }

    public static func isApplicable(_ g: ConvolutionGeometry) -> Bool {
        g.stride == 1 && g.kernelSize > 1 && g.padding < g.kernelSize && g.outputChannels <= maximumOutputChannels
    }

    /// Sizes and workspace layout of one geometry.
    struct Layout {
        let geometry: ConvolutionGeometry
        var taps: Int { geometry.kernelSize * geometry.kernelSize }
        var paddedHeight: Int { geometry.inputHeight + 2 * geometry.padding }
        var paddedWidth: Int { geometry.inputWidth + 2 * geometry.padding }
        var paddedPlane: Int { paddedHeight * paddedWidth }
        /// Positions `q` per padded plane up to and including the last valid output.
        var validLength: Int { (geometry.outputHeight - 1) * paddedWidth + geometry.outputWidth }
        /// Scratch floats per forward row: `validLength` rounded up to whole steps (a path computes
        /// the positions up to its own step, reading at most `slack` floats past the last plane).
        var length: Int { roundedUp(validLength) }
        var paddedInputCount: Int { geometry.inputChannels * geometry.batch * paddedPlane + slack }
        var outputBlocks: Int { (geometry.outputChannels + blockWidth - 1) / blockWidth }
        var inputBlocks: Int { (geometry.inputChannels + blockWidth - 1) / blockWidth }

        /// Padding of the output gradient for the input-gradient correlation.
        var gradientPadding: Int { geometry.kernelSize - 1 - geometry.padding }
        var gradientHeight: Int { geometry.outputHeight + 2 * gradientPadding }
        var gradientWidth: Int { geometry.outputWidth + 2 * gradientPadding }
        var gradientPlane: Int { gradientHeight * gradientWidth }
        var gradientValidLength: Int { (geometry.inputHeight - 1) * gradientWidth + geometry.inputWidth }
        var gradientLength: Int { roundedUp(gradientValidLength) }
        var paddedGradientCount: Int { geometry.outputChannels * geometry.batch * gradientPlane + slack }

        /// Packed weights `[block][channel][tap][blockWidth]`: the inner loop reads one block's
        /// weights for a tap from consecutive floats.
        var forwardPackedCount: Int { outputBlocks * blockWidth * geometry.inputChannels * taps }
        var backwardPackedCount: Int { inputBlocks * blockWidth * geometry.outputChannels * taps }
        /// The output gradient on the padded input grid `D[co, n][oy*Wp + ox]`, zero at every
        /// position that is not an output, so one dot product may span several images.
        var rowGradientCount: Int { geometry.outputChannels * geometry.batch * paddedPlane }
        var partialWeightCount: Int { geometry.outputChannels * geometry.inputChannels * taps }

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
                        workspace: UnsafeMutablePointer<Float>, kernels: ComputeKernels) {
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
                        packed[((block * inputChannels + ci) * taps + t) * blockWidth + j] =
                            co < outputChannels ? weight[(co * inputChannels + ci) * taps + t] : 0
                    }
                }
            }
        }
        let length = layout.length, validLength = layout.validLength
        let paddedWidth = layout.paddedWidth, plane = layout.paddedPlane
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
                        kernels.correlate(padded + image * plane, batch * plane, inputChannels, tapOffsets, taps,
                                          packed + block * inputChannels * taps * blockWidth,
                                          validLength, rows, length, rowCount)
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
                               workspace: UnsafeMutablePointer<Float>, kernels: ComputeKernels) {
        let layout = Layout(geometry: g)
        let padded = workspace
        let rowGradient = padded + layout.paddedInputCount
        let partials = rowGradient + layout.rowGradientCount
        pad(input, into: padded, planes: g.inputChannels * g.batch, height: g.inputHeight, width: g.inputWidth,
            padding: g.padding)
        let outputHeight = g.outputHeight, outputWidth = g.outputWidth, paddedWidth = layout.paddedWidth
        let plane = layout.paddedPlane
        ComputeThreads.parallelFor(g.outputChannels * g.batch, costPerItem: plane) { range in
            for index in range {
                let source = outputGradient + index * outputHeight * outputWidth
                let target = rowGradient + index * plane
                target.update(repeating: 0, count: plane)
                for oy in 0..<outputHeight {
                    (target + oy * paddedWidth).update(from: source + oy * outputWidth, count: outputWidth)
                }
            }
        }
        let k = g.kernelSize, taps = layout.taps, inputChannels = g.inputChannels, outputChannels = g.outputChannels
        let batch = g.batch, validLength = layout.validLength
        let partialCount = layout.partialWeightCount
        let groups = (outputChannels + gradientGroupWidth - 1) / gradientGroupWidth
        let imagesPerChunk = max(1, gradientChunkPositions / plane)
        partials.update(repeating: 0, count: maximumSlots * partialCount)
        ComputeThreads.parallelChunks(batch, maximumChunks: maximumSlots,
                                      costPerItem: plane * inputChannels * taps * outputChannels) { slot, images in
            let partial = partials + slot * partialCount
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * gradientGroupWidth) { buffer in
                let sums = buffer.baseAddress!
                var first = images.lowerBound
                while first < images.upperBound {
                    let end = min(images.upperBound, first + imagesPerChunk)
                    // From the first image's first position to the last image's last output: every
                    // position in between that is not an output has D = 0.
                    let count = (end - 1 - first) * plane + validLength
                    for group in 0..<groups {
                        let rowCount = min(gradientGroupWidth, outputChannels - group * gradientGroupWidth)
                        // Rows past the last channel repeat a valid row; their sums are discarded.
                        func row(_ j: Int) -> UnsafePointer<Float> {
                            UnsafePointer(rowGradient + ((group * gradientGroupWidth + min(j, rowCount - 1)) * batch + first) * plane)
                        }
                        for ci in 0..<inputChannels {
                            let source = UnsafePointer(padded + (ci * batch + first) * plane)
                            for ky in 0..<k {
                                var kx = 0
                                while kx < k {
                                    let shifted = source + ky * paddedWidth + kx
                                    kernels.dotProducts3x3(row(0), row(1), row(2), shifted, shifted + 1, shifted + 2, count, sums)
                                    for j in 0..<rowCount {
                                        let base = ((group * gradientGroupWidth + j) * inputChannels + ci) * taps + ky * k + kx
                                        partial[base] += sums[3 * j]
                                        if kx + 1 < k { partial[base + 1] += sums[3 * j + 1] }
                                        if kx + 2 < k { partial[base + 2] += sums[3 * j + 2] }
                                    }
                                    kx += 3
                                }
                            }
                        }
                    }
                    first = end
                }
            }
        }
        for slot in 0..<maximumSlots {
            let partial = partials + slot * partialCount
            for i in 0..<partialCount { weightGradient[i] += partial[i] }
        }
    }

    /// `dX += correlate(pad(dY, k - 1 - p), flip(W)^T)`: the adjoint of `forward`.
    static func inputGradient(outputGradient: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              inputGradient: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry,
                              workspace: UnsafeMutablePointer<Float>, kernels: ComputeKernels) {
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
                        packed[((block * outputChannels + co) * taps + t) * blockWidth + j] =
                            ci < inputChannels ? weight[(co * inputChannels + ci) * taps + flipped] : 0
                    }
                }
            }
        }
        let length = layout.gradientLength, validLength = layout.gradientValidLength
        let gradientWidth = layout.gradientWidth, plane = layout.gradientPlane
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
                        kernels.correlate(padded + image * plane, batch * plane, outputChannels, tapOffsets, taps,
                                          packed + block * outputChannels * taps * blockWidth,
                                          validLength, rows, length, rowCount)
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
}
