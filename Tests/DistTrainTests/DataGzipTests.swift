@testable import DataPipeline
@testable import DistTrain
import XCTest

/// gzip streams produced by Python's `gzip.GzipFile(filename="x.txt", compresslevel=L, mtime=0)`.
final class DataGzipTests: XCTestCase {
    static func bytes(hex: String) -> [UInt8] {
        var result = [UInt8]()
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    /// Python: `bytes((i*7+3)%256 for i in range(300))`, level 0: one stored block.
    static let storedGzip = bytes(hex: "1f8b08080000000000ff782e74787400012c01d3fe030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d141b222930373e454c535a61686f767d848b9299a0a7aeb5bcc3cad1d8dfe6edf4fb020910171e252c333a41484f565d646b727980878e959ca3aab1b8bfc6cdd4dbe2e9f0f7fe050c131a21282f363d444b525960676e757c838a91989fa6adb4bbc2c9d0d7dee5ecf3fa01080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3dae1e8eff6fd040b121920272e353c434a51585f666d747b828990979ea5acb3bac1c8cfd6dde4ebf2f900070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9e0e7eef5fc030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d141b222930ce570ede2c010000")
    /// Python: `b"hello hello hello hello, deflate!"`, level 9: one fixed-Huffman block.
    static let fixedGzip = bytes(hex: "1f8b08080000000002ff782e74787400cb48cdc9c957c8402775145252d372124b5215010c432ef121000000")
    /// Python: `b"".join(b"The quick brown fox %d jumps over the lazy dog. " % i for i in range(120))`,
    /// level 9: one dynamic-Huffman block with long back-references.
    static let dynamicGzip = bytes(hex: "1f8b08080000000002ff782e7478740095d8d74d04310045d1565c01720e7d6c038425c3c02e4baa1e0a4048e7fffd1d8dc7bebbdb7d783ddd5d3e848bc3f6f11caeb7cf10c3fde9e9e518b6f7fd21bcfd0e1ecfbfbfc2d5767316767fcc93cdb3cd8bcdabcd9bcdbbcd87cda7cd1732292bba26844d289b9036a16d42dc84ba097913fa66f4cdfadda26f46df8cbe197d33fa66f4cde89bd1b7a06f41dfa20733fa16f42de85bd0b7a06f41df82be157d2bfa56f4adfae745df8abe157d2bfa56f4ade8dbd0b7a16f43df86be4daf56e8dbd0b7a16f43df86be1d7d3bfa76f4ede8dbd1b7ebdd197d3bfa76f4ede83bd077a0ef40df81be037d07fa0e7d1ca1ef40df81be137d27fa4ef49de83bd177a2ef44dfa9af5ff49de8bbd077a1ef42df85be0b7d17fa2ef45de8bb346f70dfd0c011b570444d1c511b47d4c811b57244cd1c513b47d4d01155da53964a73cce29ac5398b7b16072d2e5a9cb4fe6b5a3fdff60e878a160000")

    static var storedText: [UInt8] { (0..<300).map { UInt8(($0 * 7 + 3) % 256) } }
    static var dynamicText: [UInt8] {
        (0..<120).flatMap { Array("The quick brown fox \($0) jumps over the lazy dog. ".utf8) }
    }

    func testStoredBlock() throws {
        XCTAssertEqual(try Gzip.decompress(Self.storedGzip), Self.storedText)
    }

    func testFixedHuffmanBlock() throws {
        XCTAssertEqual(try Gzip.decompress(Self.fixedGzip), Array("hello hello hello hello, deflate!".utf8))
    }

    func testDynamicHuffmanBlock() throws {
        let output = try Gzip.decompress(Self.dynamicGzip)
        XCTAssertEqual(output.count, 5770)
        XCTAssertEqual(output, Self.dynamicText)
    }

    func testConcatenatedMembersDecodeToTheConcatenation() throws {
        XCTAssertEqual(try Gzip.decompress(Self.fixedGzip + Self.storedGzip),
                       Array("hello hello hello hello, deflate!".utf8) + Self.storedText)
    }

    func testTruncatedStreamIsAnError() {
        let truncated = Array(Self.dynamicGzip.prefix(Self.dynamicGzip.count - 30))
        XCTAssertThrowsError(try Gzip.decompress(truncated)) { error in
            guard case .truncated? = error as? GzipError else { return XCTFail("expected truncated, got \(error)") }
        }
    }

    func testCorruptedByteIsDetected() {
        var corrupted = Self.storedGzip
        corrupted[100] ^= 0x40
        XCTAssertThrowsError(try Gzip.decompress(corrupted)) { error in
            XCTAssertEqual(error as? GzipError, .corrupt(reason: "incorrect data check"), "a CRC-32 mismatch")
        }
    }

    func testWrongLengthInTheTrailerIsDetected() {
        var corrupted = Self.fixedGzip
        corrupted[corrupted.count - 4] ^= 0x01
        XCTAssertThrowsError(try Gzip.decompress(corrupted)) { error in
            XCTAssertEqual(error as? GzipError, .corrupt(reason: "incorrect length check"))
        }
    }

    /// A file cut inside the trailer of a real data file (the truncated-download case) is
    /// reported as truncated, without trusting the bytes where the length would be.
    func testFileCutAtEveryLengthIsTruncatedNotACrash() {
        for length in 2..<Self.dynamicGzip.count {
            XCTAssertThrowsError(try Gzip.decompress(Array(Self.dynamicGzip.prefix(length))), "length \(length)") { error in
                guard case .truncated? = error as? GzipError else { return XCTFail("length \(length): \(error)") }
            }
        }
    }

    func testNonGzipInputIsRejected() {
        XCTAssertThrowsError(try Gzip.decompress(Array("plain text file".utf8))) { error in
            guard case .notGzip = error as? GzipError else { return XCTFail("got \(error)") }
        }
    }
}
