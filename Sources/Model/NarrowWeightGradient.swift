/// The weight gradient of a convolution with few output channels, from its column matrix (the
/// input itself for a pointwise convolution, the im2col matrix otherwise):
/// `dW[co, r] += sum_p dY[co][p] * columns[r][p]`, a product with tiny `M` (MSDNet's bottlenecks
/// and stride-2 layers at the fine scales have 6 to 24 output channels), small `N` and a huge `K`
/// (`N*H*W` positions), which SGEMM neither splits over threads nor blocks well (measured 2-3x
/// slower than this).
///
/// Three-by-three blocks of dot products (`ComputeKernels.dotProducts3x3`) run over chunks of
/// positions that stay in the first-level caches; each compute thread sums its own share of the
/// positions into its own partial, and the partials are added at the end. The forward pass and
/// the input gradient stay SGEMMs: for them the measured SGEMM was faster than these kernels.
enum NarrowWeightGradient {
    static let maximumSlots = DirectConvolution.maximumSlots
    static let groupWidth = DirectConvolution.gradientGroupWidth
    /// Positions of one pass over a block of rows.
    static let chunkPositions = DirectConvolution.gradientChunkPositions
    /// At most this many output channels: with 48 the CIFAR network's 1x1 backward passes
    /// measured slower than with SGEMM for the 36- and 48-channel ones.
    static let maximumOutputChannels = 24

    /// Whether `Convolution.backward` computes the weight gradient of `g` here (convolutions on
    /// the direct path have their own).
    static func isApplicable(_ g: ConvolutionGeometry) -> Bool {
        g.outputChannels <= maximumOutputChannels && !DirectConvolution.isApplicable(g)
    }

    /// Floats of workspace: one partial weight gradient per thread.
    static func partialCount(_ g: ConvolutionGeometry) -> Int {
        maximumSlots * g.outputChannels * g.columnRows
    }

    /// `dW[co, r] += sum_p dY[co][p] * columns[r][p]` for `co < outputChannels`, `r < rows`,
    /// `p < positions`; `partials` holds `maximumSlots * outputChannels * rows` floats.
    static func accumulate(outputGradient: UnsafePointer<Float>, columns: UnsafePointer<Float>,
                           weightGradient: UnsafeMutablePointer<Float>, outputChannels: Int, rows: Int, positions: Int,
                           partials: UnsafeMutablePointer<Float>, kernels: ComputeKernels) {
        let count = outputChannels * rows
        let outputGroups = (outputChannels + groupWidth - 1) / groupWidth
        let rowGroups = (rows + groupWidth - 1) / groupWidth
        let chunks = (positions + chunkPositions - 1) / chunkPositions
        partials.update(repeating: 0, count: maximumSlots * count)
        ComputeThreads.parallelChunks(chunks, maximumChunks: maximumSlots,
                                      costPerItem: chunkPositions * rows * outputChannels) { slot, chunkRange in
            let partial = partials + slot * count
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * groupWidth) { buffer in
                let sums = buffer.baseAddress!
                for chunk in chunkRange {
                    let start = chunk * chunkPositions
                    let length = min(chunkPositions, positions - start)
                    for rowGroup in 0..<rowGroups {
                        let rowCount = min(groupWidth, rows - rowGroup * groupWidth)
                        // Rows past the last one repeat a valid row; their sums are discarded.
                        func columnRow(_ i: Int) -> UnsafePointer<Float> {
                            columns + (rowGroup * groupWidth + min(i, rowCount - 1)) * positions + start
                        }
                        for outputGroup in 0..<outputGroups {
                            let outputCount = min(groupWidth, outputChannels - outputGroup * groupWidth)
                            func outputRow(_ j: Int) -> UnsafePointer<Float> {
                                outputGradient + (outputGroup * groupWidth + min(j, outputCount - 1)) * positions + start
                            }
                            kernels.dotProducts3x3(outputRow(0), outputRow(1), outputRow(2),
                                                   columnRow(0), columnRow(1), columnRow(2), length, sums)
                            for j in 0..<outputCount {
                                let row = partial + (outputGroup * groupWidth + j) * rows + rowGroup * groupWidth
                                for i in 0..<rowCount { row[i] += sums[3 * j + i] }
                            }
                        }
                    }
                }
            }
        }
        for slot in 0..<maximumSlots {
            let partial = partials + slot * count
            for i in 0..<count { weightGradient[i] += partial[i] }
        }
    }
}
