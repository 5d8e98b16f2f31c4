/// The CIFAR-10 and CIFAR-100 binary versions (Krizhevsky 2009): fixed-size records of label
/// byte(s) then 3072 pixel bytes, 1024 red, 1024 green, 1024 blue, each 32x32 row-major.
/// CIFAR-10 records have one label byte; CIFAR-100 records have the coarse then the fine label.
enum CIFARFile {
    static let imageBytes = 3 * 32 * 32

    /// Parses the records of one file, appending pixels and labels; `labelOffset` picks the
    /// label byte (CIFAR-100's fine label is byte 1) and `labelBytes` is the labels per record.
    static func parse(_ bytes: [UInt8], path: String, labelBytes: Int, labelOffset: Int, classCount: Int,
                      pixels: inout [UInt8], labels: inout [Int32]) throws {
        let recordSize = labelBytes + imageBytes
        let recordCount = bytes.count / recordSize
        guard bytes.count % recordSize == 0 else {
            throw DataError.truncatedFile(path: path, record: recordCount,
                                          expectedBytes: (recordCount + 1) * recordSize, actualBytes: bytes.count)
        }
        pixels.reserveCapacity(pixels.count + recordCount * imageBytes)
        for record in 0..<recordCount {
            let start = record * recordSize
            let label = Int(bytes[start + labelOffset])
            guard label < classCount else {
                throw DataError.labelOutOfRange(path: path, record: record, label: label, classCount: classCount)
            }
            labels.append(Int32(label))
            pixels.append(contentsOf: bytes[start + labelBytes..<start + recordSize])
        }
    }

    /// Loads CIFAR-10 (`classCount` 10: data_batch_1…5.bin / test_batch.bin) or CIFAR-100
    /// (`classCount` 100: train.bin / test.bin, fine labels) from `root` or the archive's folder in it.
    static func loadSplit(root: String, classCount: Int, training: Bool) throws -> PixelImages {
        let isCIFAR100 = classCount == 100
        let folder = isCIFAR100 ? "cifar-100-binary" : "cifar-10-batches-bin"
        let names = isCIFAR100
            ? [training ? "train.bin" : "test.bin"]
            : (training ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"])
        var pixels = [UInt8]()
        var labels = [Int32]()
        for name in names {
            let path = try DataFile.firstExisting(["\(root)/\(name)", "\(root)/\(folder)/\(name)"], what: name)
            try parse(try DataFile.read(path), path: path, labelBytes: isCIFAR100 ? 2 : 1,
                      labelOffset: isCIFAR100 ? 1 : 0, classCount: classCount, pixels: &pixels, labels: &labels)
        }
        return PixelImages(pixels: pixels, labels: labels, channels: 3, height: 32, width: 32, classCount: classCount)
    }
}
