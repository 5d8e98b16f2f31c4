import CTurboJPEG

/// Why libjpeg-turbo rejected an image.
struct JPEGError: Error, CustomStringConvertible {
    let description: String
}

/// libjpeg-turbo's TurboJPEG (2.1 API) decoder with DCT-domain downscaling: a JPEG decoded at
/// scale 1/2, 1/4 or 1/8 skips most of the inverse DCT and colour conversion work, so an image
/// that is shrunk anyway decodes at the smallest such scale that still leaves at least one
/// decoded pixel per output pixel.
///
/// Owns its handle and pixel buffer (grown on demand, then reused); one instance per thread.
public final class JPEGDecoder {
    struct Header: Equatable {
        var width: Int
        var height: Int
        var isCMYK: Bool
    }

    /// Interleaved RGB pixels, valid until the next `decode`.
    /// Decoded pixels, borrowed from the decoder's buffer: valid while the decoder lives and
    /// until its next `decode`.
    public struct Image {
        public var pixels: UnsafePointer<UInt8>
        public var width: Int
        public var height: Int
    }

    struct ScalingFactor: Equatable {
        var numerator: Int
        var denominator: Int

        var factor: Double { Double(numerator) / Double(denominator) }

        /// TurboJPEG's TJSCALED: the decoded size, rounded up.
        func scaled(_ size: Int) -> Int { (size * numerator + denominator - 1) / denominator }
    }

    /// The reductions worth decoding at, smallest first: 1/8, 1/4, 1/2 and 1. libjpeg-turbo
    /// has SIMD inverse DCTs only for these; its other scales (3/8, 5/8, 3/4, 7/8) run plain C
    /// and decode a 500×375 image more slowly than full size does (measured: 1/2 ≈ 1.9×,
    /// 3/4 ≈ 0.7× the full-size rate).
    static let reductions: [ScalingFactor] = {
        var count: Int32 = 0
        guard let factors = tjGetScalingFactors(&count) else { return [ScalingFactor(numerator: 1, denominator: 1)] }
        return (0..<Int(count))
            .map { ScalingFactor(numerator: Int(factors[$0].num), denominator: Int(factors[$0].denom)) }
            .filter { $0.numerator == 1 && [1, 2, 4, 8].contains($0.denominator) }
            .sorted { $0.denominator > $1.denominator }
    }()

    private let handle: tjhandle
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int

    public init() {
        guard let handle = tjInitDecompress() else { fatalError("tjInitDecompress failed: \(String(cString: tjGetErrorStr2(nil)))") }
        self.handle = handle
        capacity = 1 << 20
        buffer = .allocate(capacity: capacity)
    }

    deinit {
        tjDestroy(handle)
        buffer.deallocate()
    }

    private var lastError: JPEGError { JPEGError(description: String(cString: tjGetErrorStr2(handle))) }

    /// True when the last failure was only a warning (the image was still decoded).
    private var lastFailureIsWarning: Bool { tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) }

    /// The largest image decoded (2^27, 134 million pixels).
    static let maximumPixels = 1 << 27

    func header(_ jpeg: UnsafeBufferPointer<UInt8>) throws -> Header {
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, jpeg.baseAddress, UInt(jpeg.count), &width, &height, &subsampling, &colorspace) == 0,
              width > 0, height > 0 else { throw lastError }
        // A damaged header can claim up to 65535 x 65535 pixels (17 GB decoded): refused before
        // allocating, far above any photograph a data set holds.
        guard Int(width) * Int(height) <= Self.maximumPixels else {
            throw JPEGError(description: "the header claims \(width) x \(height) pixels, more than \(Self.maximumPixels)")
        }
        let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        return Header(width: Int(width), height: Int(height), isCMYK: isCMYK)
    }

    /// The smallest reduction that keeps the decoded image at least `minimumWidth` × `minimumHeight`.
    static func reduction(for header: Header, minimumWidth: Double, minimumHeight: Double) -> ScalingFactor {
        reductions.first {
            Double($0.scaled(header.width)) >= minimumWidth && Double($0.scaled(header.height)) >= minimumHeight
        } ?? ScalingFactor(numerator: 1, denominator: 1)
    }

    /// Decodes to RGB at `reduction`. Warnings (such as extraneous bytes between markers) do
    /// not fail the decode: libjpeg still produced the whole image.
    func decode(_ jpeg: UnsafeBufferPointer<UInt8>, header: Header, reduction: ScalingFactor) throws -> Image {
        let width = reduction.scaled(header.width)
        let height = reduction.scaled(header.height)
        let pixelBytes = header.isCMYK ? 4 : 3
        let needed = width * height * pixelBytes
        if needed > capacity {
            buffer.deallocate()
            capacity = needed
            buffer = .allocate(capacity: capacity)
        }
        let format = header.isCMYK ? TJPF_CMYK : TJPF_RGB
        if tjDecompress2(handle, jpeg.baseAddress, UInt(jpeg.count), buffer, Int32(width), 0, Int32(height),
                         Int32(format.rawValue), 0) != 0 && !lastFailureIsWarning {
            throw lastError
        }
        if header.isCMYK {
            // Adobe CMYK JPEGs store inverted inks: R = C·K / 255 on the stored values.
            for pixel in 0..<width * height {
                let key = UInt32(buffer[4 * pixel + 3])
                for channel in 0..<3 {
                    buffer[3 * pixel + channel] = UInt8((UInt32(buffer[4 * pixel + channel]) * key + 127) / 255)
                }
            }
        }
        return Image(pixels: UnsafePointer(buffer), width: width, height: height)
    }

    public func decode(_ jpeg: UnsafeBufferPointer<UInt8>) throws -> Image {
        try decode(jpeg, header: try header(jpeg), reduction: ScalingFactor(numerator: 1, denominator: 1))
    }
}

/// TurboJPEG compression, for building test images and benchmark trees (`prepare` never re-encodes).
public enum JPEGEncoder {
    /// Encodes row-major 8-bit pixels (1 channel: greyscale, 3: RGB, 4:2:0 chroma subsampling).
    public static func encode(pixels: [UInt8], width: Int, height: Int, channels: Int, quality: Int = 90) throws -> [UInt8] {
        precondition(channels == 1 || channels == 3)
        precondition(pixels.count == width * height * channels)
        guard let handle = tjInitCompress() else { throw JPEGError(description: String(cString: tjGetErrorStr2(nil))) }
        defer { tjDestroy(handle) }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let format = channels == 1 ? TJPF_GRAY : TJPF_RGB
        let subsampling = channels == 1 ? TJSAMP_GRAY : TJSAMP_420
        let status = pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(width), 0, Int32(height), Int32(format.rawValue), &output, &size,
                        Int32(subsampling.rawValue), Int32(quality), 0)
        }
        defer { tjFree(output) }
        guard status == 0, let output else { throw JPEGError(description: String(cString: tjGetErrorStr2(handle))) }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }
}
