@testable import DataPipeline
@testable import DistTrain
import XCTest

final class DataJPEGTests: XCTestCase {
    /// A smooth RGB test picture (JPEG keeps it within a few levels): red rises left to right,
    /// green top to bottom, blue is a diagonal wave.
    static func picture(width: Int, height: Int, phase: Int = 0) -> [UInt8] {
        var pixels = [UInt8]()
        pixels.reserveCapacity(width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                pixels.append(UInt8(20 + 200 * x / max(1, width - 1)))
                pixels.append(UInt8(30 + 180 * y / max(1, height - 1)))
                pixels.append(UInt8(128 + Int(60 * sin(Double(x + y + phase) / 9))))
            }
        }
        return pixels
    }

    func testEncodedPictureDecodesCloseToTheOriginal() throws {
        let original = Self.picture(width: 80, height: 60)
        let jpeg = try JPEGEncoder.encode(pixels: original, width: 80, height: 60, channels: 3, quality: 95)
        let decoder = JPEGDecoder()
        let header = try jpeg.withUnsafeBufferPointer { try decoder.header($0) }
        XCTAssertEqual(header, JPEGDecoder.Header(width: 80, height: 60, isCMYK: false))
        let image = try jpeg.withUnsafeBufferPointer { try decoder.decode($0) }
        XCTAssertEqual([image.width, image.height], [80, 60])
        var totalError = 0
        for index in 0..<original.count { totalError += abs(Int(image.pixels[index]) - Int(original[index])) }
        XCTAssertLessThan(Double(totalError) / Double(original.count), 3.0)
    }

    func testGreyscaleDecodesToEqualChannels() throws {
        let grey: [UInt8] = (0..<32 * 16).map { UInt8($0 % 32 * 8) }
        let jpeg = try JPEGEncoder.encode(pixels: grey, width: 32, height: 16, channels: 1, quality: 100)
        let decoder = JPEGDecoder()  // owns the pixels `image` points to
        let image = try jpeg.withUnsafeBufferPointer { try decoder.decode($0) }
        for pixel in 0..<32 * 16 {
            XCTAssertEqual(image.pixels[3 * pixel], image.pixels[3 * pixel + 1])
            XCTAssertEqual(image.pixels[3 * pixel], image.pixels[3 * pixel + 2])
            XCTAssertLessThanOrEqual(abs(Int(image.pixels[3 * pixel]) - Int(grey[pixel])), 3)
        }
        withExtendedLifetime(decoder) {}
    }

    func testDCTReductionDecodesSmallerImages() throws {
        let jpeg = try JPEGEncoder.encode(pixels: Self.picture(width: 400, height: 300), width: 400, height: 300, channels: 3)
        let decoder = JPEGDecoder()
        let header = try jpeg.withUnsafeBufferPointer { try decoder.header($0) }
        XCTAssertEqual(JPEGDecoder.reductions.first, .init(numerator: 1, denominator: 8))
        XCTAssertEqual(JPEGDecoder.reductions.last, .init(numerator: 1, denominator: 1))
        XCTAssertEqual(JPEGDecoder.reductions.count, 4)
        // At least 140 rows from 300: 1/2 gives 150, 1/4 only 75. At least 256 rows: full size.
        XCTAssertEqual(JPEGDecoder.reduction(for: header, minimumWidth: 100, minimumHeight: 140), .init(numerator: 1, denominator: 2))
        XCTAssertEqual(JPEGDecoder.reduction(for: header, minimumWidth: 100, minimumHeight: 256), .init(numerator: 1, denominator: 1))
        XCTAssertEqual(JPEGDecoder.reduction(for: header, minimumWidth: 50, minimumHeight: 37), .init(numerator: 1, denominator: 8))
        let half = try jpeg.withUnsafeBufferPointer { try decoder.decode($0, header: header, reduction: .init(numerator: 1, denominator: 2)) }
        XCTAssertEqual([half.width, half.height], [200, 150])
        // A half-size decode approximates the picture sampled at the centres of 2×2 blocks.
        let original = Self.picture(width: 400, height: 300)
        let (x, y) = (101, 40)
        let average = (0..<4).map { Int(original[((2 * y + $0 / 2) * 400 + 2 * x + $0 % 2) * 3]) }.reduce(0, +) / 4
        XCTAssertLessThanOrEqual(abs(Int(half.pixels[(y * 200 + x) * 3]) - average), 4)
    }

    func testCorruptStreamsAreDefects() throws {
        let jpeg = try JPEGEncoder.encode(pixels: Self.picture(width: 64, height: 64), width: 64, height: 64, channels: 3)
        let decoder = JPEGDecoder()
        XCTAssertNil(ImageNetPreparation.defect(of: jpeg, decoder: decoder))
        XCTAssertEqual(ImageNetPreparation.defect(of: Array("GIF89a not a jpeg".utf8), decoder: decoder),
                       "not a JPEG file (starts with 47 49 46 38)")
        XCTAssertEqual(ImageNetPreparation.defect(of: Array(jpeg.prefix(jpeg.count / 2)), decoder: decoder),
                       "truncated (no end-of-image marker)")
        // Header destroyed (SOF marker overwritten) but start and end markers intact.
        var broken = jpeg
        for index in 2..<min(600, broken.count - 2) { broken[index] = 0x00 }
        XCTAssertNotNil(ImageNetPreparation.defect(of: broken, decoder: decoder))
        XCTAssertThrowsError(try broken.withUnsafeBufferPointer { try decoder.header($0) })
    }
}
