/// The small-image pipeline of the reference (CIFAR; Fashion-MNIST and MNIST likewise):
/// the H×W image is centred on an S×S canvas of zeros (Fashion-MNIST: 28×28 in 32×32),
/// then, in training, torchvision's `RandomCrop(S, padding: p)` and `RandomHorizontalFlip()`,
/// then per-channel normalisation.
///
/// With the crop's top-left corner (t, l) in the canvas padded by p zeros (t, l ∈ 0…2p) and
/// the flip applied after the crop, output pixel (y, x) is image pixel
/// (t + y − p − oy, l + x' − p − ox), x' = S − 1 − x when flipped, o = (S − H) / 2 the
/// canvas offset; pixels outside the image are zeros before normalisation.
/// Evaluation uses t = l = p and no flip.
struct PaddedCrop: Sendable {
    struct Choice: Equatable {
        var top: Int
        var left: Int
        var flip: Bool
    }

    let outputSize: Int
    let padding: Int
    let normalization: Normalization

    var centred: Choice { Choice(top: padding, left: padding, flip: false) }

    /// Draws the crop corner then the flip, in that order, from `random`.
    func randomChoice(_ random: inout SampleRandom) -> Choice {
        let top = random.nextInt(in: 0, 2 * padding)
        let left = random.nextInt(in: 0, 2 * padding)
        return Choice(top: top, left: left, flip: random.nextDouble() < 0.5)
    }

    /// Writes the normalised S×S crop of `image` (channel-major `[C, H, W]` 8-bit pixels) to
    /// `destination`, channel c starting at `destination + c * channelStride`.
    func apply(image: UnsafePointer<UInt8>, channels: Int, height: Int, width: Int, choice: Choice,
               destination: UnsafeMutablePointer<Float>, channelStride: Int) {
        let size = outputSize
        let rowShift = choice.top - padding - (size - height) / 2
        let columnShift = choice.left - padding - (size - width) / 2
        for channel in 0..<channels {
            let (scale, offset) = normalization.affine(channel: channel)
            let plane = image + channel * height * width
            let output = destination + channel * channelStride
            for y in 0..<size {
                let row = output + y * size
                let sourceRow = y + rowShift
                guard sourceRow >= 0 && sourceRow < height else {
                    row.update(repeating: offset, count: size)
                    continue
                }
                let source = plane + sourceRow * width
                for x in 0..<size {
                    let sourceColumn = (choice.flip ? size - 1 - x : x) + columnShift
                    row[x] = sourceColumn >= 0 && sourceColumn < width ? Float(source[sourceColumn]) * scale + offset : offset
                }
            }
        }
    }
}
