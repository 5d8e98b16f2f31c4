import CPNG
import Foundation

/// Decodes PNG files with libpng's simplified API: any bit depth, palette or colour type, to
/// 8-bit gray or RGB (libpng converts colour to gray and composites transparency onto white).
public enum PNGDecoder {
    /// The eight bytes every PNG file starts with.
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public static func isPNG(_ bytes: [UInt8]) -> Bool { bytes.starts(with: signature) }

    /// Pixels `[height, width, channels]` of `bytes`, `channels` 1 (gray) or 3 (RGB).
    public static func decode(_ bytes: [UInt8], channels: Int) throws -> (pixels: [UInt8], width: Int, height: Int) {
        precondition(channels == 1 || channels == 3, "gray or RGB")
        var image = png_image()
        image.version = shim_png_image_version()
        defer { png_image_free(&image) }
        let begun = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard begun != 0 else { throw PNGError(description: message(of: &image)) }
        image.format = channels == 1 ? shim_png_format_gray() : shim_png_format_rgb()
        let width = Int(image.width), height = Int(image.height)
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        var white = png_color(red: 255, green: 255, blue: 255)
        let finished = pixels.withUnsafeMutableBytes {
            png_image_finish_read(&image, &white, $0.baseAddress, Int32(width * channels), nil)
        }
        guard finished != 0, shim_png_image_failed(&image) == 0 else { throw PNGError(description: message(of: &image)) }
        return (pixels, width, height)
    }

    private static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// Why libpng rejected a file.
struct PNGError: Error, CustomStringConvertible {
    let description: String
}
