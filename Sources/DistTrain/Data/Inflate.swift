/// Why a DEFLATE or gzip stream could not be decompressed.
public enum InflateError: Error, CustomStringConvertible, Equatable {
    /// The stream ended before its last block did.
    case truncated
    case notGzip(firstBytes: [UInt8])
    case unsupportedCompressionMethod(UInt8)
    case invalidBlockType
    case storedLengthMismatch
    case invalidCodeLengths
    case invalidSymbol
    case distanceBeforeStart(distance: Int, produced: Int)
    case checksumMismatch(expected: UInt32, computed: UInt32)
    case sizeMismatch(expected: UInt32, produced: Int)

    public var description: String {
        switch self {
        case .truncated: return "compressed data ends before the last block"
        case .notGzip(let bytes): return "not a gzip file (starts with \(bytes.map { String($0, radix: 16) }), expected 1f 8b)"
        case .unsupportedCompressionMethod(let method): return "gzip compression method \(method), only 8 (deflate) exists"
        case .invalidBlockType: return "deflate block type 3 is reserved"
        case .storedLengthMismatch: return "stored block length does not match its complement"
        case .invalidCodeLengths: return "invalid Huffman code lengths"
        case .invalidSymbol: return "bits that match no Huffman code"
        case .distanceBeforeStart(let distance, let produced):
            return "back-reference distance \(distance) reaches before the start of the output (\(produced) bytes)"
        case .checksumMismatch(let expected, let computed):
            return "CRC-32 mismatch: trailer says \(String(expected, radix: 16)), data gives \(String(computed, radix: 16))"
        case .sizeMismatch(let expected, let produced):
            return "size mismatch: trailer says \(expected) bytes (mod 2^32), produced \(produced)"
        }
    }
}

/// DEFLATE (RFC 1951) and gzip (RFC 1952) decompression.
///
/// Foundation on Linux has no gzip, and the IDX files of MNIST and Fashion-MNIST ship
/// gzipped. Huffman codes are decoded with one lookup table per code, indexed by the next
/// `maximum code length` input bits (deflate packs codes most-significant bit first into a
/// least-significant-bit-first stream, so table indices are the bit-reversed codes).
public enum Inflate {
    /// Decompresses a gzip file: every member, each checked against its CRC-32 and size.
    public static func gunzip(_ data: [UInt8]) throws -> [UInt8] {
        var output = OutputBuffer(capacity: max(1024, data.count * 4))
        defer { output.deallocate() }
        try data.withUnsafeBufferPointer { input in
            var offset = 0
            repeat {
                let start = try gzipHeaderEnd(input, from: offset)
                let producedBefore = output.count
                var reader = BitReader(input, from: start)
                try inflateBlocks(&reader, into: &output)
                var trailer = reader.byteAlignedPosition
                guard trailer + 8 <= input.count else { throw InflateError.truncated }
                let expectedCRC = littleEndian32(input, trailer)
                let expectedSize = littleEndian32(input, trailer + 4)
                trailer += 8
                let produced = output.count - producedBefore
                let computedCRC = CRC32.checksum(UnsafeBufferPointer(start: output.base + producedBefore, count: produced))
                guard computedCRC == expectedCRC else {
                    throw InflateError.checksumMismatch(expected: expectedCRC, computed: computedCRC)
                }
                guard UInt32(truncatingIfNeeded: produced) == expectedSize else {
                    throw InflateError.sizeMismatch(expected: expectedSize, produced: produced)
                }
                offset = trailer
                // Some writers pad a gzip file with zeros after the last member.
                while offset < input.count && input[offset] == 0 { offset += 1 }
            } while offset < input.count
        }
        return output.array()
    }

    /// Decompresses a raw DEFLATE stream (no zlib or gzip wrapper).
    public static func inflate(_ data: [UInt8]) throws -> [UInt8] {
        var output = OutputBuffer(capacity: max(1024, data.count * 4))
        defer { output.deallocate() }
        try data.withUnsafeBufferPointer { input in
            var reader = BitReader(input, from: 0)
            try inflateBlocks(&reader, into: &output)
        }
        return output.array()
    }

    /// Whether `data` starts with the gzip magic bytes 1f 8b.
    public static func isGzip(_ data: [UInt8]) -> Bool {
        data.count >= 2 && data[0] == 0x1f && data[1] == 0x8b
    }

    // MARK: gzip framing

    private static func littleEndian32(_ input: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt32 {
        UInt32(input[at]) | UInt32(input[at + 1]) << 8 | UInt32(input[at + 2]) << 16 | UInt32(input[at + 3]) << 24
    }

    /// Skips a gzip member header (RFC 1952 section 2.3) and returns where its deflate data starts.
    private static func gzipHeaderEnd(_ input: UnsafeBufferPointer<UInt8>, from start: Int) throws -> Int {
        guard input.count - start >= 10 else {
            throw input.count - start >= 2 && input[start] == 0x1f && input[start + 1] == 0x8b
                ? InflateError.truncated : InflateError.notGzip(firstBytes: Array(input[start..<min(input.count, start + 2)]))
        }
        guard input[start] == 0x1f, input[start + 1] == 0x8b else {
            throw InflateError.notGzip(firstBytes: [input[start], input[start + 1]])
        }
        guard input[start + 2] == 8 else { throw InflateError.unsupportedCompressionMethod(input[start + 2]) }
        let flags = input[start + 3]
        var position = start + 10
        if flags & 0x04 != 0 {  // FEXTRA
            guard position + 2 <= input.count else { throw InflateError.truncated }
            position += 2 + (Int(input[position]) | Int(input[position + 1]) << 8)
        }
        for flag: UInt8 in [0x08, 0x10] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
            while position < input.count && input[position] != 0 { position += 1 }
            position += 1
        }
        if flags & 0x02 != 0 { position += 2 }  // FHCRC
        guard position <= input.count else { throw InflateError.truncated }
        return position
    }

    // MARK: DEFLATE

    private static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                            35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    private static let lengthExtraBits: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                                 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                                              257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
                                              8193, 12289, 16385, 24577]
    private static let distanceExtraBits: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
                                                   7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    /// The order in which a dynamic block lists the code-length code's lengths (RFC 1951 3.2.7).
    private static let codeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    private static func inflateBlocks(_ reader: inout BitReader, into output: inout OutputBuffer) throws {
        var isFinal = false
        while !isFinal {
            isFinal = reader.read(1) == 1
            switch reader.read(2) {
            case 0: try copyStoredBlock(&reader, into: &output)
            case 1:
                try decodeHuffmanBlock(&reader, into: &output,
                                       literals: fixedLiteralTable, distances: fixedDistanceTable)
            case 2:
                let (literals, distances) = try readDynamicTables(&reader)
                try decodeHuffmanBlock(&reader, into: &output, literals: literals, distances: distances)
            default: throw InflateError.invalidBlockType
            }
            guard !reader.isOverrun else { throw InflateError.truncated }
        }
    }

    private static func copyStoredBlock(_ reader: inout BitReader, into output: inout OutputBuffer) throws {
        var position = reader.byteAlignedPosition
        guard position + 4 <= reader.input.count else { throw InflateError.truncated }
        let length = Int(reader.input[position]) | Int(reader.input[position + 1]) << 8
        let complement = Int(reader.input[position + 2]) | Int(reader.input[position + 3]) << 8
        guard length == complement ^ 0xffff else { throw InflateError.storedLengthMismatch }
        position += 4
        guard position + length <= reader.input.count else { throw InflateError.truncated }
        output.append(UnsafeBufferPointer(rebasing: reader.input[position..<position + length]))
        reader = BitReader(reader.input, from: position + length)
    }

    private static let fixedLiteralTable: HuffmanTable = {
        var lengths = [UInt8](repeating: 8, count: 288)
        for symbol in 144..<256 { lengths[symbol] = 9 }
        for symbol in 256..<280 { lengths[symbol] = 7 }
        return try! HuffmanTable(lengths: lengths)
    }()
    private static let fixedDistanceTable: HuffmanTable = try! HuffmanTable(lengths: [UInt8](repeating: 5, count: 30))

    private static func readDynamicTables(_ reader: inout BitReader) throws -> (HuffmanTable, HuffmanTable) {
        let literalCount = Int(reader.read(5)) + 257
        let distanceCount = Int(reader.read(5)) + 1
        let codeLengthCount = Int(reader.read(4)) + 4
        guard literalCount <= 286, distanceCount <= 30 else { throw InflateError.invalidCodeLengths }
        var codeLengthLengths = [UInt8](repeating: 0, count: 19)
        for index in 0..<codeLengthCount {
            codeLengthLengths[codeLengthOrder[index]] = UInt8(reader.read(3))
        }
        let codeLengthTable = try HuffmanTable(lengths: codeLengthLengths)
        var lengths = [UInt8]()
        lengths.reserveCapacity(literalCount + distanceCount)
        while lengths.count < literalCount + distanceCount {
            let symbol = try codeLengthTable.decode(&reader)
            switch symbol {
            case 0..<16: lengths.append(UInt8(symbol))
            case 16:
                guard let previous = lengths.last else { throw InflateError.invalidCodeLengths }
                lengths.append(contentsOf: repeatElement(previous, count: 3 + Int(reader.read(2))))
            case 17: lengths.append(contentsOf: repeatElement(0, count: 3 + Int(reader.read(3))))
            default: lengths.append(contentsOf: repeatElement(0, count: 11 + Int(reader.read(7))))
            }
            guard !reader.isOverrun else { throw InflateError.truncated }
        }
        guard lengths.count == literalCount + distanceCount, lengths[256] != 0 else {
            throw InflateError.invalidCodeLengths
        }
        return (try HuffmanTable(lengths: Array(lengths[0..<literalCount])),
                try HuffmanTable(lengths: Array(lengths[literalCount...])))
    }

    private static func decodeHuffmanBlock(_ reader: inout BitReader, into output: inout OutputBuffer,
                                           literals: HuffmanTable, distances: HuffmanTable) throws {
        while true {
            let symbol = try literals.decode(&reader)
            if symbol < 256 {
                output.append(UInt8(symbol))
                continue
            }
            if symbol == 256 { return }
            let lengthIndex = symbol - 257
            guard lengthIndex < 29 else { throw InflateError.invalidSymbol }
            let length = lengthBase[lengthIndex] + Int(reader.read(lengthExtraBits[lengthIndex]))
            let distanceSymbol = try distances.decode(&reader)
            guard distanceSymbol < 30 else { throw InflateError.invalidSymbol }
            let distance = distanceBase[distanceSymbol] + Int(reader.read(distanceExtraBits[distanceSymbol]))
            guard distance <= output.count else {
                throw InflateError.distanceBeforeStart(distance: distance, produced: output.count)
            }
            guard !reader.isOverrun else { throw InflateError.truncated }
            output.copyMatch(distance: distance, length: length)
        }
    }
}

/// Reads a little-endian bit stream, least significant bit first, 64 bits buffered.
///
/// Past the end it feeds zero bytes and counts them, so a decoder never reads out of bounds
/// and checks `isOverrun` at block boundaries and back-references instead of on every bit.
struct BitReader {
    let input: UnsafeBufferPointer<UInt8>
    private var nextByte: Int
    private var bits: UInt64 = 0
    private var bitCount = 0

    init(_ input: UnsafeBufferPointer<UInt8>, from position: Int) {
        self.input = input
        self.nextByte = position
    }

    /// True once more bits were consumed than the input holds.
    var isOverrun: Bool { nextByte * 8 - bitCount > input.count * 8 }

    /// The position of the next whole byte, dropping the bits left in the current one.
    var byteAlignedPosition: Int { nextByte - bitCount / 8 }

    @inline(__always) mutating func refill() {
        while bitCount <= 56 {
            let byte: UInt64 = nextByte < input.count ? UInt64(input[nextByte]) : 0
            bits |= byte << UInt64(bitCount)
            nextByte += 1
            bitCount += 8
        }
    }

    @inline(__always) mutating func peek(_ count: Int) -> UInt32 {
        if bitCount < count { refill() }
        return UInt32(truncatingIfNeeded: bits & ((1 << UInt64(count)) - 1))
    }

    @inline(__always) mutating func consume(_ count: Int) {
        bits >>= UInt64(count)
        bitCount -= count
    }

    @inline(__always) mutating func read(_ count: Int) -> UInt32 {
        if count == 0 { return 0 }
        let value = peek(count)
        consume(count)
        return value
    }
}

/// A canonical Huffman code as a lookup table indexed by the next `maximumLength` bits.
struct HuffmanTable {
    /// Entry: symbol << 4 | code length; a length of 0 marks bit patterns no code starts.
    private let entries: [UInt32]
    private let maximumLength: Int

    init(lengths: [UInt8]) throws {
        var countPerLength = [Int](repeating: 0, count: 16)
        for length in lengths { countPerLength[Int(length)] += 1 }
        countPerLength[0] = 0
        let maximumLength = max(1, countPerLength.lastIndex { $0 > 0 } ?? 1)
        // Canonical codes (RFC 1951 3.2.2): the first code of each length, checked not to oversubscribe.
        var nextCode = [Int](repeating: 0, count: 16)
        var code = 0
        for length in 1...15 {
            code = (code + countPerLength[length - 1]) << 1
            nextCode[length] = code
            guard code + countPerLength[length] <= 1 << length else { throw InflateError.invalidCodeLengths }
        }
        var entries = [UInt32](repeating: 0, count: 1 << maximumLength)
        for (symbol, lengthByte) in lengths.enumerated() where lengthByte > 0 {
            let length = Int(lengthByte)
            let code = nextCode[length]
            nextCode[length] += 1
            var reversed = 0
            for bit in 0..<length where code & (1 << bit) != 0 { reversed |= 1 << (length - 1 - bit) }
            var index = reversed
            while index < entries.count {
                entries[index] = UInt32(symbol) << 4 | UInt32(length)
                index += 1 << length
            }
        }
        self.entries = entries
        self.maximumLength = maximumLength
    }

    @inline(__always) func decode(_ reader: inout BitReader) throws -> Int {
        let entry = entries[Int(reader.peek(maximumLength))]
        let length = Int(entry & 15)
        guard length > 0 else { throw InflateError.invalidSymbol }
        reader.consume(length)
        return Int(entry >> 4)
    }
}

/// A growable byte buffer that back-references can copy within.
struct OutputBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    func deallocate() { base.deallocate() }

    func array() -> [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    private mutating func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        let newCapacity = max(capacity * 2, count + extra)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always) mutating func append(_ byte: UInt8) {
        if count == capacity { reserve(1) }
        base[count] = byte
        count += 1
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        reserve(bytes.count)
        if let source = bytes.baseAddress { (base + count).update(from: source, count: bytes.count) }
        count += bytes.count
    }

    /// Appends `length` bytes starting `distance` back; byte by byte, because they may overlap.
    @inline(__always) mutating func copyMatch(distance: Int, length: Int) {
        reserve(length)
        var source = base + count - distance
        var target = base + count
        for _ in 0..<length {
            target.pointee = source.pointee
            source += 1
            target += 1
        }
        count += length
    }
}

/// CRC-32 as gzip uses it (polynomial 0xEDB88320, reflected, initial and final XOR 0xFFFFFFFF).
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index -> UInt32 in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 != 0 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    static func checksum(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
