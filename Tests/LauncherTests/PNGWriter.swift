import Foundation
import XCTest

/// Writes 8-bit PNG files for the tests with python3's zlib (make deps guarantees python3), so
/// that the PNG the decoder reads was written by another implementation.
enum PNGWriter {
    /// `pixels` row-major `[height, width, channels]`, channels 1 (gray) or 3 (RGB).
    static func write(_ pixels: [UInt8], width: Int, height: Int, channels: Int, to url: URL) throws {
        precondition((channels == 1 || channels == 3) && pixels.count == width * height * channels)
        let raw = url.appendingPathExtension("raw")
        try Data(pixels).write(to: raw)
        defer { try? FileManager.default.removeItem(at: raw) }
        let script = """
            import struct, sys, zlib
            raw, out, width, height, channels = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
            data = open(raw, 'rb').read()
            row = width * channels
            def chunk(kind, body):
                return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
            lines = b''.join(b'\\x00' + data[r * row:(r + 1) * row] for r in range(height))
            header = struct.pack('>IIBBBBB', width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
            open(out, 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(lines)) + chunk(b'IEND', b''))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, raw.path, url.path, String(width), String(height), String(channels)]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "python3 could not write \(url.path)")
    }
}
