/// A labelled image set held in memory as 8-bit pixels, sample-major then channel-major
/// `[count, channels, height, width]` (the layout of the CIFAR binaries; MNIST has one channel).
public final class PixelImages: Sendable {
    public let pixels: [UInt8]
    public let labels: [Int32]
    public let count: Int
    public let channels: Int
    public let height: Int
    public let width: Int
    public let classCount: Int

    public init(pixels: [UInt8], labels: [Int32], channels: Int, height: Int, width: Int, classCount: Int) {
        precondition(pixels.count == labels.count * channels * height * width)
        self.pixels = pixels
        self.labels = labels
        self.count = labels.count
        self.channels = channels
        self.height = height
        self.width = width
        self.classCount = classCount
    }

    /// The first `limit` samples (all of them when `limit` is nil or larger than the set).
    public func prefix(_ limit: Int?) -> PixelImages {
        guard let limit, limit < count else { return self }
        let sampleSize = channels * height * width
        return PixelImages(pixels: Array(pixels[0..<limit * sampleSize]), labels: Array(labels[0..<limit]),
                           channels: channels, height: height, width: width, classCount: classCount)
    }
}
