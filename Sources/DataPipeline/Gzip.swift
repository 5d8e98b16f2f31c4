import CZlib

/// Why a gzip file could not be decompressed.
public enum GzipError: Error, CustomStringConvertible, Equatable {
    /// The file ends before its compressed stream does (a cut-off download or copy).
    case truncated(decompressedBytes: Int)
    /// zlib found data no encoder writes, or a trailer that does not match ("incorrect data
    /// check" is a CRC-32 mismatch, "incorrect length check" a size mismatch).
    case corrupt(reason: String)
    case notGzip(firstBytes: [UInt8])

    public var description: String {
        switch self {
        case let .truncated(decompressedBytes):
            return "truncated: the file ends inside the compressed stream (after \(decompressedBytes) decompressed bytes)"
        case let .corrupt(reason):
            return "corrupt: \(reason)"
        case let .notGzip(bytes):
            return "not a gzip file (starts with \(bytes.map { String($0, radix: 16) }.joined(separator: " ")), expected 1f 8b)"
        }
    }
}

/// Decompressing gzip files (RFC 1952) with zlib, which checks every member's CRC-32 and length.
enum Gzip {
    /// True when `bytes` starts with the gzip magic number 1f 8b.
    static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// The decompressed contents; concatenated members decompress to their concatenation. The
    /// output grows as zlib produces it: the trailer's length field is never trusted for an
    /// allocation, since a cut-off file puts arbitrary bytes there.
    static func decompress(_ bytes: [UInt8]) throws -> [UInt8] {
        guard isGzip(bytes) else { throw GzipError.notGzip(firstBytes: Array(bytes.prefix(4))) }
        var stream = z_stream()
        guard shim_inflate_init_gzip(&stream) == Z_OK else { throw GzipError.corrupt(reason: "zlib could not start") }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: max(1 << 16, min(bytes.count * 4, 1 << 28)))
        var produced = 0
        return try bytes.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!)
            // zlib counts input in 32 bits: larger files are fed in pieces.
            var unfed = input.count
            func feed() {
                let piece = min(unfed, Int(UInt32.max) - Int(stream.avail_in))
                stream.avail_in += UInt32(piece)
                unfed -= piece
            }
            feed()
            while true {
                if stream.avail_in == 0 && unfed > 0 { feed() }
                if produced == output.count { output.append(contentsOf: repeatElement(0, count: output.count)) }
                let available = min(output.count - produced, Int(UInt32.max))
                let status = output.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    stream.next_out = buffer.baseAddress! + produced
                    stream.avail_out = UInt32(available)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    produced += available - Int(stream.avail_out)
                    return status
                }
                switch status {
                case Z_STREAM_END:
                    // Another member may follow (gzip allows concatenation); trailing zeros are padding.
                    let rest = UnsafeBufferPointer(start: stream.next_in, count: Int(stream.avail_in) + unfed)
                    guard rest.contains(where: { $0 != 0 }) else { return Array(output[..<produced]) }
                    guard rest.count >= 2, rest[0] == 0x1F, rest[1] == 0x8B else {
                        throw GzipError.corrupt(reason: "\(rest.count) bytes after the end of the compressed stream")
                    }
                    inflateReset(&stream)
                    unfed += Int(stream.avail_in)
                    stream.avail_in = 0
                    feed()
                case Z_OK:
                    continue
                case Z_BUF_ERROR where stream.avail_in == 0 && unfed == 0:
                    throw GzipError.truncated(decompressedBytes: produced)
                case Z_BUF_ERROR:
                    continue
                default:
                    let reason = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                    throw GzipError.corrupt(reason: reason)
                }
            }
        }
    }
}
