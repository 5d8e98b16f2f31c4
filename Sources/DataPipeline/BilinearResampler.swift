/// One axis of a resampling: output pixel i covers source coordinate
/// `origin + (i + 0.5) · scale` (pixel centres at half-integers), and filter taps are clamped
/// to the source rows or columns `lower..<upper`.
public struct ResampleAxis: Equatable {
    var origin: Double
    /// Source pixels per output pixel.
    var scale: Double
    var lower: Int
    var upper: Int
    var outputCount: Int

    public init(origin: Double, scale: Double, lower: Int, upper: Int, outputCount: Int) {
        self.origin = origin
        self.scale = scale
        self.lower = lower
        self.upper = upper
        self.outputCount = outputCount
    }

    /// The same axis on the source shrunk by `factor` to `scaledSize` pixels (a JPEG decoded at
    /// a reduced DCT scale: decoded pixel i covers source pixels [i/factor, (i+1)/factor), the
    /// last one possibly partial).
    func rescaled(by factor: Double, to scaledSize: Int) -> ResampleAxis {
        ResampleAxis(origin: origin * factor, scale: scale * factor,
                     lower: min(scaledSize - 1, Int((Double(lower) * factor).rounded(.down))),
                     upper: max(1, min(scaledSize, Int((Double(upper) * factor).rounded(.up)))),
                     outputCount: outputCount)
    }
}

/// Bilinear resampling as PIL's `Image.resize(…, BILINEAR)` computes it (which torchvision's
/// `Resize` and `RandomResizedCrop` call): a separable triangle filter whose support widens
/// with the downscaling factor, so that shrinking averages every source pixel instead of
/// sampling four.
///
/// For output pixel i with centre c = origin + (i + 0.5)·s and f = max(s, 1), the taps are the
/// source pixels k in [⌊c − f + 0.5⌋, ⌊c + f + 0.5⌋) ∩ [lower, upper) with weights
/// w_k = max(0, 1 − |k + 0.5 − c| / f), divided by their sum. The horizontal pass runs first,
/// as PIL's does; intermediate values stay in floating point (PIL rounds them to 8 bits).
///
/// Holds its tap tables and intermediate buffer, grown on demand and reused, so it makes no
/// allocation once it has seen the largest image; one instance per thread.
public final class BilinearResampler {
    private struct Taps {
        var first: [Int] = []
        var count: [Int] = []
        var weights: [Float] = []
        var stride = 0

        mutating func build(_ axis: ResampleAxis) {
            let support = max(axis.scale, 1)
            stride = Int(support.rounded(.up)) * 2 + 1
            first.removeAll(keepingCapacity: true)
            count.removeAll(keepingCapacity: true)
            weights.removeAll(keepingCapacity: true)
            weights.reserveCapacity(axis.outputCount * stride)
            for output in 0..<axis.outputCount {
                let centre = axis.origin + (Double(output) + 0.5) * axis.scale
                let low = max(Int((centre - support + 0.5).rounded(.down)), axis.lower)
                let high = min(Int((centre + support + 0.5).rounded(.down)), axis.upper)
                let base = weights.count
                var total = 0.0
                for tap in 0..<stride {
                    let weight = low + tap < high ? max(0, 1 - abs(Double(low + tap) + 0.5 - centre) / support) : 0
                    weights.append(Float(weight))
                    total += weight
                }
                if total > 0 {
                    for tap in 0..<stride { weights[base + tap] = Float(Double(weights[base + tap]) / total) }
                }
                first.append(low)
                count.append(max(0, high - low))
            }
        }
    }

    private var rowTaps = Taps()
    private var columnTaps = Taps()
    private var intermediate: [Float] = []

    public init() {}

    /// Resamples an interleaved 8-bit image (`[height, width, channels]`, rows `rowStride`
    /// bytes apart) to `vertical.outputCount × horizontal.outputCount`, mirrored left-right when
    /// `flip`, normalised, channel c written at `destination + c · channelStride`.
    public func resample(source: UnsafePointer<UInt8>, rowStride: Int, channels: Int,
                  vertical: ResampleAxis, horizontal: ResampleAxis, flip: Bool,
                  normalization: Normalization, destination: UnsafeMutablePointer<Float>, channelStride: Int) {
        rowTaps.build(vertical)
        columnTaps.build(horizontal)
        let outputHeight = vertical.outputCount
        let outputWidth = horizontal.outputCount
        var firstRow = Int.max
        var lastRow = 0
        for output in 0..<outputHeight {
            firstRow = min(firstRow, rowTaps.first[output])
            lastRow = max(lastRow, rowTaps.first[output] + rowTaps.count[output])
        }
        let rowCount = max(0, lastRow - firstRow)
        let needed = channels * rowCount * outputWidth
        if intermediate.count < needed { intermediate = [Float](repeating: 0, count: needed) }

        // Local copies: the inner loops then touch no class storage (no exclusivity checks).
        let rows = rowTaps
        let columns = columnTaps
        intermediate.withUnsafeMutableBufferPointer { buffer in
            let planes = buffer.baseAddress!
            columns.first.withUnsafeBufferPointer { columnFirst in
            columns.count.withUnsafeBufferPointer { columnCount in
            columns.weights.withUnsafeBufferPointer { columnWeights in
                for row in 0..<rowCount {
                    let sourceRow = source + (firstRow + row) * rowStride
                    for column in 0..<outputWidth {
                        let weights = columnWeights.baseAddress! + column * columns.stride
                        let pixels = sourceRow + columnFirst[column] * channels
                        let tapCount = columnCount[column]
                        if channels == 3 {
                            var red: Float = 0, green: Float = 0, blue: Float = 0
                            for tap in 0..<tapCount {
                                let weight = weights[tap]
                                red += weight * Float(pixels[3 * tap])
                                green += weight * Float(pixels[3 * tap + 1])
                                blue += weight * Float(pixels[3 * tap + 2])
                            }
                            planes[row * outputWidth + column] = red
                            planes[(rowCount + row) * outputWidth + column] = green
                            planes[(2 * rowCount + row) * outputWidth + column] = blue
                        } else {
                            for channel in 0..<channels {
                                var sum: Float = 0
                                for tap in 0..<tapCount { sum += weights[tap] * Float(pixels[tap * channels + channel]) }
                                planes[(channel * rowCount + row) * outputWidth + column] = sum
                            }
                        }
                    }
                }
            }
            }
            }
            rows.first.withUnsafeBufferPointer { rowFirst in
            rows.count.withUnsafeBufferPointer { rowCountPerOutput in
            rows.weights.withUnsafeBufferPointer { rowWeights in
                for channel in 0..<channels {
                    let (scale, offset) = normalization.affine(channel: channel)
                    let plane = planes + channel * rowCount * outputWidth
                    for outputRow in 0..<outputHeight {
                        let target = destination + channel * channelStride + outputRow * outputWidth
                        let weights = rowWeights.baseAddress! + outputRow * rows.stride
                        let first = plane + (rowFirst[outputRow] - firstRow) * outputWidth
                        // The normalisation folds into the weights: Σ (w·scale)·x + offset.
                        let firstWeight = weights[0] * scale
                        for column in 0..<outputWidth { target[column] = firstWeight * first[column] + offset }
                        for tap in 1..<max(1, rowCountPerOutput[outputRow]) {
                            let weight = weights[tap] * scale
                            let sourceRow = first + tap * outputWidth
                            for column in 0..<outputWidth { target[column] += weight * sourceRow[column] }
                        }
                        if flip {
                            var left = 0
                            var right = outputWidth - 1
                            while left < right {
                                let value = target[left]
                                target[left] = target[right]
                                target[right] = value
                                left += 1
                                right -= 1
                            }
                        }
                    }
                }
            }
            }
            }
        }
    }
}
