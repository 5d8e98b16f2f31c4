/// The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a 4-byte big-endian magic number
/// `0x0000 TT DD` (TT = 0x08 for unsigned bytes, DD = number of dimensions), DD big-endian
/// 32-bit sizes, then the values in row-major order.
public enum IDXFile {
    struct Contents {
        var dimensions: [Int]
        var values: [UInt8]
    }

    /// Parses an unsigned-byte IDX file of `dimensionCount` dimensions; `path` names it in errors.
    static func parse(_ bytes: [UInt8], path: String, dimensionCount: Int) throws -> Contents {
        let expectedMagic = UInt32(0x0800 | dimensionCount)
        let headerSize = 4 + 4 * dimensionCount
        func bigEndian32(_ offset: Int) -> UInt32 {
            bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
        guard bytes.count >= 4 else {
            throw DataError.truncatedFile(path: path, record: nil, expectedBytes: headerSize, actualBytes: bytes.count)
        }
        let magic = bigEndian32(0)
        guard magic == expectedMagic else { throw DataError.badMagic(path: path, found: magic, expected: expectedMagic) }
        guard bytes.count >= headerSize else {
            throw DataError.truncatedFile(path: path, record: nil, expectedBytes: headerSize, actualBytes: bytes.count)
        }
        let dimensions = (0..<dimensionCount).map { Int(bigEndian32(4 + 4 * $0)) }
        // The header's sizes are checked against the file before anything is allocated; three
        // 32-bit sizes can multiply past Int.max, which then reads as "more than the file".
        func product(_ sizes: ArraySlice<Int>) -> Int {
            sizes.reduce(1) { total, size in
                let (result, overflow) = total.multipliedReportingOverflow(by: size)
                return overflow ? .max : result
            }
        }
        let recordSize = product(dimensions.dropFirst())
        let (expectedBytes, overflow) = headerSize.addingReportingOverflow(product(dimensions[...]))
        guard !overflow, bytes.count >= expectedBytes else {
            let completeRecords = (bytes.count - headerSize) / max(1, recordSize)
            throw DataError.truncatedFile(path: path, record: completeRecords,
                                          expectedBytes: overflow ? .max : expectedBytes, actualBytes: bytes.count)
        }
        return Contents(dimensions: dimensions, values: Array(bytes[headerSize..<expectedBytes]))
    }

    /// Loads one split of an MNIST-style data set from `root` (or `root/raw`, torchvision's
    /// layout): `train-…` or `t10k-…` images and labels, gzipped or not.
    public static func loadSplit(root: String, training: Bool, classCount: Int) throws -> PixelImages {
        let prefix = training ? "train" : "t10k"
        func locate(_ name: String) throws -> String {
            let candidates = [root, root + "/raw"].flatMap { ["\($0)/\(name).gz", "\($0)/\(name)"] }
            return try DataFile.firstExisting(candidates, what: name)
        }
        let imagesPath = try locate("\(prefix)-images-idx3-ubyte")
        let labelsPath = try locate("\(prefix)-labels-idx1-ubyte")
        let images = try parse(try DataFile.read(imagesPath), path: imagesPath, dimensionCount: 3)
        let labels = try parse(try DataFile.read(labelsPath), path: labelsPath, dimensionCount: 1)
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DataError.countMismatch(imagesPath: imagesPath, images: images.dimensions[0],
                                          labelsPath: labelsPath, labels: labels.dimensions[0])
        }
        var labelValues = [Int32]()
        labelValues.reserveCapacity(labels.values.count)
        for (record, label) in labels.values.enumerated() {
            guard Int(label) < classCount else {
                throw DataError.labelOutOfRange(path: labelsPath, record: record, label: Int(label), classCount: classCount)
            }
            labelValues.append(Int32(label))
        }
        return PixelImages(pixels: images.values, labels: labelValues, channels: 1,
                           height: images.dimensions[1], width: images.dimensions[2], classCount: classCount)
    }
}
