/// Direct convolution for convolutions with few output channels (MSDNet's 3x3 layers produce 6 to
/// 64 channels), where an im2col matrix of `Cin*k*k` rows feeding an SGEMM with only `Cout` rows
/// spends more time copying and packing than multiplying.
///
/// The input is copied once into a zero-padded buffer. For stride 1 that is `P[ci, n, Hp, Wp]`:
/// within one padded plane, output position `(oy, ox)` maps to `q = oy*Wp + ox` and kernel tap
/// `(ky, kx)` to the offset `ky*Wp + kx`, so every output is
/// `Y[co][q] = sum_{ci, tap} W[co, ci, tap] * P[ci][q + tap]`: contiguous vector loads with no
/// bounds checks (the `Wp - Wo` columns of `q` past each row are computed and discarded).
/// A stride-`s` convolution becomes the same correlation on the polyphase split of the padded
/// input, `P[ci, a*s + b, n, i, j] = padded[ci, n, s*i + a, s*j + b]` (planes of
/// `ceil(Hp/s) x ceil(Wp/s)`): tap `(ky, kx)` reads phase `(ky mod s, kx mod s)` at offset
/// `(ky/s)*Wph + kx/s`, so the strided loads become contiguous ones too.
///
/// The inner kernels (`correlate`, `dotProducts3x3`) are C, one copy per instruction set
/// (`ComputeKernels`): six output channels times two vectors of positions are accumulated at once,
/// twelve independent fused multiply-adds per loaded pair of input vectors.
///
/// Backward uses the same kernels: the weight gradient is a dot product of the output gradient
/// with the shifted (polyphase) padded input, run over several images' planes at once; the input
/// gradient is the correlation of the zero-padded output gradient with the spatially flipped,
/// channel-transposed weights, for stride `s` once per input phase `(a, b)` with the taps
/// `ky = a + s*m`, `kx = b + s*l` that reach it.
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
    static let maximumOutputChannels = 64

    /// Floats readable past the last padded plane: a step starting at the last position
    /// `q < length` plus the largest tap offset ends at most this far beyond it.
    static let slack = 2 * stepWidth

    static func roundedUp(_ count: Int) -> Int { (count + stepWidth - 1) / stepWidth * stepWidth }

    public static func isApplicable(_ g: ConvolutionGeometry) -> Bool {
        g.kernelSize > 1 && g.padding < g.kernelSize && g.stride <= g.kernelSize && g.outputChannels <= maximumOutputChannels
    }

    /// Sizes and workspace layout of one geometry.
    struct Layout {
        let geometry: ConvolutionGeometry
        var taps: Int { geometry.kernelSize * geometry.kernelSize }
        var stride: Int { geometry.stride }
        var paddedHeight: Int { geometry.inputHeight + 2 * geometry.padding }
        var paddedWidth: Int { geometry.inputWidth + 2 * geometry.padding }
        /// Phases of the polyphase split (`s*s`; 1 for stride 1).
        var phases: Int { stride * stride }
        /// Rows and columns of one phase plane: `ceil(Hp / s)`, `ceil(Wp / s)`.
        var phaseHeight: Int { (paddedHeight + stride - 1) / stride }
        var phaseWidth: Int { (paddedWidth + stride - 1) / stride }
        /// Floats of one image's plane in one phase: the distance between images in `q`.
        var plane: Int { phaseHeight * phaseWidth }
        /// Floats between input channels of the padded input `P[ci, phase, n, i, j]`.
        var channelStride: Int { phases * geometry.batch * plane }
        /// Offset of kernel tap `(ky, kx)` from output position `q` in the padded input.
        func tapOffset(_ ky: Int, _ kx: Int) -> Int {
            ((ky % stride) * stride + kx % stride) * geometry.batch * plane + (ky / stride) * phaseWidth + kx / stride
        }
        /// Positions `q` per plane up to and including the last valid output.
        var validLength: Int { (geometry.outputHeight - 1) * phaseWidth + geometry.outputWidth }
        /// Scratch floats per forward row: `validLength` rounded up to whole steps (a path computes
        /// the positions up to its own step, reading at most `slack` floats past the last plane).
        var length: Int { roundedUp(validLength) }
        var paddedInputCount: Int { geometry.inputChannels * channelStride + slack }
        var outputBlocks: Int { (geometry.outputChannels + blockWidth - 1) / blockWidth }
        var inputBlocks: Int { (geometry.inputChannels + blockWidth - 1) / blockWidth }

        /// The output gradient's zero border for the input-gradient correlation: stride 1 computes
        /// on the input grid with `k - 1 - p`; stride `s` on each phase grid, where the taps
        /// `m = 0...(k-1)/s` reach back that many rows.
        var gradientPadding: Int { stride == 1 ? geometry.kernelSize - 1 - geometry.padding : (geometry.kernelSize - 1) / stride }
        /// The output rows and columns the input gradient is computed for: the input for stride 1,
        /// one phase plane for stride `s`.
        var gradientTargetHeight: Int { stride == 1 ? geometry.inputHeight : phaseHeight }
        var gradientTargetWidth: Int { stride == 1 ? geometry.inputWidth : phaseWidth }
        var gradientHeight: Int {
            stride == 1 ? geometry.outputHeight + 2 * gradientPadding : max(geometry.outputHeight, phaseHeight) + gradientPadding
        }
        var gradientWidth: Int {
            stride == 1 ? geometry.outputWidth + 2 * gradientPadding : max(geometry.outputWidth, phaseWidth) + gradientPadding
        }
        var gradientPlane: Int { gradientHeight * gradientWidth }
        var gradientValidLength: Int { (gradientTargetHeight - 1) * gradientWidth + gradientTargetWidth }
        var gradientLength: Int { roundedUp(gradientValidLength) }
        var paddedGradientCount: Int { geometry.outputChannels * geometry.batch * gradientPlane + slack }

        /// Packed weights `[block][channel][tap][blockWidth]`: the inner loop reads one block's
        /// weights for a tap from consecutive floats. The input gradient's are grouped by phase,
        /// each phase's taps a contiguous run; over all phases that is every tap once.
        var forwardPackedCount: Int { outputBlocks * blockWidth * geometry.inputChannels * taps }
        var backwardPackedCount: Int { inputBlocks * blockWidth * geometry.outputChannels * taps }
        /// The output gradient on the padded input's grid `D[co, n][oy*Wph + ox]`, zero at every
        /// position that is not an output, so one dot product may span several images.
        var rowGradientCount: Int { geometry.outputChannels * geometry.batch * plane }
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
        padPhases(input, into: padded, layout: layout)
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
        let phaseWidth = layout.phaseWidth, plane = layout.plane, channelStride = layout.channelStride
        let outputHeight = g.outputHeight, outputWidth = g.outputWidth, batch = g.batch
        withUnsafeTemporaryAllocation(of: Int.self, capacity: taps) { offsets in
            for t in 0..<taps { offsets[t] = layout.tapOffset(t / g.kernelSize, t % g.kernelSize) }
            let tapOffsets = UnsafePointer(offsets.baseAddress!)
            ComputeThreads.parallelChunks(batch, maximumChunks: maximumSlots,
                                          costPerItem: length * inputChannels * taps * layout.outputBlocks) { slot, images in
                let rows = scratch + slot * blockWidth * length
                for image in images {
                    for block in 0..<layout.outputBlocks {
                        let rowCount = min(blockWidth, outputChannels - block * blockWidth)
                        kernels.correlate(padded + image * plane, channelStride, inputChannels, tapOffsets, taps,
                                          packed + block * inputChannels * taps * blockWidth,
                                          validLength, rows, length, rowCount)
                        for j in 0..<rowCount {
                            let co = block * blockWidth + j
                            let shift = bias?[co] ?? 0
                            let target = output + (co * batch + image) * outputHeight * outputWidth
                            let source = rows + j * length
                            for oy in 0..<outputHeight {
                                let targetRow = target + oy * outputWidth, sourceRow = source + oy * phaseWidth
                                for ox in 0..<outputWidth { targetRow[ox] = sourceRow[ox] + shift }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Backward

    /// `dW[co, ci, ky, kx] += sum_{n, oy, ox} dY[co, n, oy, ox] * padded[ci, n, s*oy + ky, s*ox + kx]`.
    static func weightGradient(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>,
                               weightGradient: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry,
                               workspace: UnsafeMutablePointer<Float>, kernels: ComputeKernels) {
        let layout = Layout(geometry: g)
        let padded = workspace
        let rowGradient = padded + layout.paddedInputCount
        let partials = rowGradient + layout.rowGradientCount
        padPhases(input, into: padded, layout: layout)
        let outputHeight = g.outputHeight, outputWidth = g.outputWidth, phaseWidth = layout.phaseWidth
        let plane = layout.plane, channelStride = layout.channelStride
        ComputeThreads.parallelFor(g.outputChannels * g.batch, costPerItem: plane) { range in
            for index in range {
                let source = outputGradient + index * outputHeight * outputWidth
                let target = rowGradient + index * plane
                target.update(repeating: 0, count: plane)
                for oy in 0..<outputHeight {
                    (target + oy * phaseWidth).update(from: source + oy * outputWidth, count: outputWidth)
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
                            let source = UnsafePointer(padded + ci * channelStride + first * plane)
                            for ky in 0..<k {
                                var kx = 0
                                while kx < k {
                                    // Taps past the kernel's last column repeat it; their sums are discarded.
                                    func shifted(_ j: Int) -> UnsafePointer<Float> { source + layout.tapOffset(ky, min(kx + j, k - 1)) }
                                    kernels.dotProducts3x3(row(0), row(1), row(2), shifted(0), shifted(1), shifted(2), count, sums)
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
        if g.stride > 1 {
            polyphaseInputGradient(outputGradient: outputGradient, weight: weight, inputGradient: inputGradient,
                                   layout: layout, workspace: workspace, kernels: kernels)
            return
        }
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

    /// The input gradient of a stride-`s` convolution, phase by phase: with `y' = s*i + a` a row of
    /// the padded input, only the taps `ky = a + s*m` reach it, from output row `i - m`, so
    /// `dP[ci, (a, b)][i, j] = sum_{co, m, l} W[co, ci, a + s*m, b + s*l] * G[co][i - m + g][j - l + g]`
    /// with `G` the output gradient behind a zero border of `g = (k-1)/s` rows and columns: one
    /// correlation per phase, each tap `(m, l)` at offset `(g - m)*Wg + (g - l)`. The padded rows
    /// and columns of `dP` are computed and dropped; the rest accumulates into `dX`.
    private static func polyphaseInputGradient(outputGradient: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                               inputGradient: UnsafeMutablePointer<Float>, layout: Layout,
                                               workspace: UnsafeMutablePointer<Float>, kernels: ComputeKernels) {
        let g = layout.geometry
        let padded = workspace
        let packed = padded + layout.paddedGradientCount
        let scratch = packed + layout.backwardPackedCount
        let stride = g.stride, k = g.kernelSize, border = layout.gradientPadding, gradientWidth = layout.gradientWidth
        embed(outputGradient, into: padded, planes: g.outputChannels * g.batch, height: g.outputHeight, width: g.outputWidth,
              top: border, left: border, targetHeight: layout.gradientHeight, targetWidth: gradientWidth)
        let inputChannels = g.inputChannels, outputChannels = g.outputChannels, taps = layout.taps
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * taps + layout.phases + 1) { buffer in
            // Phase (a, b)'s taps (m, l) are entries phaseStart[phase]..<phaseStart[phase + 1] of
            // `offsets` (their offset in G) and `tapIndex` (ky*k + kx).
            let offsets = buffer.baseAddress!, tapIndex = offsets + taps, phaseStart = tapIndex + taps
            var next = 0
            for phase in 0..<layout.phases {
                phaseStart[phase] = next
                let a = phase / stride, b = phase % stride
                for ky in Swift.stride(from: a, to: k, by: stride) {
                    for kx in Swift.stride(from: b, to: k, by: stride) {
                        offsets[next] = (border - (ky - a) / stride) * gradientWidth + (border - (kx - b) / stride)
                        tapIndex[next] = ky * k + kx
                        next += 1
                    }
                }
            }
            phaseStart[layout.phases] = next
            let blocks = layout.inputBlocks
            // Phase weights from tap entry `first` on: `[block][co][phase tap][blockWidth]`.
            func phaseWeights(_ first: Int) -> UnsafeMutablePointer<Float> { packed + blocks * blockWidth * outputChannels * first }
            for phase in 0..<layout.phases {
                let first = phaseStart[phase], phaseTaps = phaseStart[phase + 1] - first
                let base = phaseWeights(first)
                for block in 0..<blocks {
                    for co in 0..<outputChannels {
                        for t in 0..<phaseTaps {
                            for j in 0..<blockWidth {
                                let ci = block * blockWidth + j
                                base[((block * outputChannels + co) * phaseTaps + t) * blockWidth + j] =
                                    ci < inputChannels ? weight[(co * inputChannels + ci) * taps + tapIndex[first + t]] : 0
                            }
                        }
                    }
                }
            }
            let tapOffsets = UnsafePointer(offsets), starts = UnsafePointer(phaseStart)
            let length = layout.gradientLength, validLength = layout.gradientValidLength
            let plane = layout.gradientPlane, batch = g.batch, padding = g.padding
            let height = g.inputHeight, width = g.inputWidth
            let phaseHeight = layout.phaseHeight, phaseWidth = layout.phaseWidth
            ComputeThreads.parallelChunks(batch, maximumChunks: maximumSlots,
                                          costPerItem: length * outputChannels * taps * blocks) { slot, images in
                let rows = scratch + slot * blockWidth * length
                for image in images {
                    for phase in 0..<layout.phases {
                        let first = starts[phase], phaseTaps = starts[phase + 1] - first
                        let a = phase / stride, b = phase % stride
                        // Phase rows i and columns j that are rows and columns of the input.
                        let rowRange = ImageColumns.validRange(kernelOffset: a, size: height, outputSize: phaseHeight,
                                                               stride: stride, padding: padding)
                        let columnRange = ImageColumns.validRange(kernelOffset: b, size: width, outputSize: phaseWidth,
                                                                  stride: stride, padding: padding)
                        if rowRange.isEmpty || columnRange.isEmpty { continue }
                        for block in 0..<blocks {
                            let rowCount = min(blockWidth, inputChannels - block * blockWidth)
                            kernels.correlate(padded + image * plane, batch * plane, outputChannels, tapOffsets + first, phaseTaps,
                                              phaseWeights(first) + block * outputChannels * phaseTaps * blockWidth,
                                              validLength, rows, length, rowCount)
                            for j in 0..<rowCount {
                                let ci = block * blockWidth + j
                                let target = inputGradient + (ci * batch + image) * height * width
                                let source = rows + j * length
                                for i in rowRange {
                                    let targetRow = target + (stride * i + a - padding) * width, sourceRow = source + i * gradientWidth
                                    for column in columnRange { targetRow[stride * column + b - padding] += sourceRow[column] }
                                }
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
        embed(source, into: destination, planes: planes, height: height, width: width, top: padding, left: padding,
              targetHeight: height + 2 * padding, targetWidth: width + 2 * padding)
    }

    /// Copies `planes` planes of `height x width` to row `top`, column `left` of zero planes of
    /// `targetHeight x targetWidth`, followed by `slack` zeros.
    static func embed(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>, planes: Int,
                      height: Int, width: Int, top: Int, left: Int, targetHeight: Int, targetWidth: Int) {
        let targetPlane = targetHeight * targetWidth
        (destination + planes * targetPlane).update(repeating: 0, count: slack)
        ComputeThreads.parallelFor(planes, costPerItem: targetPlane) { range in
            for plane in range {
                let target = destination + plane * targetPlane
                let input = source + plane * height * width
                target.update(repeating: 0, count: top * targetWidth)
                for y in 0..<height {
                    let row = target + (y + top) * targetWidth
                    row.update(repeating: 0, count: left)
                    (row + left).update(from: input + y * width, count: width)
                    (row + left + width).update(repeating: 0, count: targetWidth - left - width)
                }
                (target + (height + top) * targetWidth).update(repeating: 0, count: (targetHeight - height - top) * targetWidth)
            }
        }
    }

    /// Copies the input `[Cin, N, H, W]` into the zero-padded polyphase layout of `layout`
    /// (`P[ci, n, Hp, Wp]` for stride 1), followed by `slack` zeros.
    static func padPhases(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>, layout: Layout) {
        let g = layout.geometry
        guard g.stride > 1 else {
            pad(source, into: destination, planes: g.inputChannels * g.batch, height: g.inputHeight, width: g.inputWidth,
                padding: g.padding)
            return
        }
        let stride = g.stride, padding = g.padding, batch = g.batch, height = g.inputHeight, width = g.inputWidth
        let phases = layout.phases, plane = layout.plane, phaseHeight = layout.phaseHeight, phaseWidth = layout.phaseWidth
        (destination + g.inputChannels * layout.channelStride).update(repeating: 0, count: slack)
        ComputeThreads.parallelFor(g.inputChannels * batch, costPerItem: phases * plane) { range in
            for index in range {
                let channel = index / batch, image = index % batch
                let input = source + index * height * width
                for phase in 0..<phases {
                    let a = phase / stride, b = phase % stride
                    let target = destination + ((channel * phases + phase) * batch + image) * plane
                    // The phase columns j whose input column stride * j + b - padding lies in the row:
                    // the copy has no test per element.
                    let columns = ImageColumns.validRange(kernelOffset: b, size: width, outputSize: phaseWidth, stride: stride,
                                                          padding: padding)
                    for i in 0..<phaseHeight {
                        let row = target + i * phaseWidth
                        let y = stride * i + a - padding
                        guard y >= 0 && y < height && !columns.isEmpty else {
                            row.update(repeating: 0, count: phaseWidth)
                            continue
                        }
                        let inputRow = input + y * width + b - padding
                        row.update(repeating: 0, count: columns.lowerBound)
                        for j in columns { row[j] = inputRow[stride * j] }
                        (row + columns.upperBound).update(repeating: 0, count: phaseWidth - columns.upperBound)
                    }
                }
            }
        }
    }
}
