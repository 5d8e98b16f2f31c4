/// Turns one sample of a source into a normalised `[C, S, S]` float image, augmented when
/// given a random stream. Called concurrently from the loader's worker threads, each with its
/// own scratch (decoder, resampler buffers) from `makeScratch()`.
public protocol SampleRenderer: AnyObject, Sendable {
    var channels: Int { get }
    var outputSize: Int { get }
    /// Samples in the source.
    var count: Int { get }
    func label(of sample: Int) -> Int32
    func makeScratch() -> AnyObject?
    /// Writes channel c of the image to `destination + c · channelStride`.
    func render(sample: Int, random: SampleRandom?, scratch: AnyObject?,
                destination: UnsafeMutablePointer<Float>, channelStride: Int) throws
}

/// The small-image sources (CIFAR, Fashion-MNIST, MNIST): in-memory pixels through `PaddedCrop`.
public final class PixelRenderer: SampleRenderer {
    let images: PixelImages
    let crop: PaddedCrop

    public init(images: PixelImages, outputSize: Int, normalization: Normalization) {
        self.images = images
        self.crop = PaddedCrop(outputSize: outputSize, padding: 4, normalization: normalization)
    }

    public var channels: Int { images.channels }
    public var outputSize: Int { crop.outputSize }
    public var count: Int { images.count }
    public func label(of sample: Int) -> Int32 { images.labels[sample] }
    public func makeScratch() -> AnyObject? { nil }

    public func render(sample: Int, random: SampleRandom?, scratch: AnyObject?,
                destination: UnsafeMutablePointer<Float>, channelStride: Int) throws {
        var random = random
        let choice = random == nil ? crop.centred : crop.randomChoice(&random!)
        let sampleSize = images.channels * images.height * images.width
        images.pixels.withUnsafeBufferPointer { pixels in
            crop.apply(image: pixels.baseAddress! + sample * sampleSize, channels: images.channels,
                       height: images.height, width: images.width, choice: choice,
                       destination: destination, channelStride: channelStride)
        }
    }
}
