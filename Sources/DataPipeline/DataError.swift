/// Why a data set could not be opened or read; every case names the file (and record) at fault.
public enum DataError: Error, CustomStringConvertible {
    case rootNotFound(path: String)
    /// The directory `prepare imagenet` was asked to read does not exist.
    case sourceNotFound(path: String)
    /// A directory the data set's layout requires (such as `train/` of an ImageNet tree) is absent.
    case missingDirectory(path: String)
    /// None of `candidates` exists; `what` says which part of the data set was looked for.
    case missingFile(what: String, candidates: [String])
    case unreadableFile(path: String)
    case compressedFile(path: String, reason: GzipError)
    case badMagic(path: String, found: UInt32, expected: UInt32)
    /// The file ends inside `record` (nil: inside the header).
    case truncatedFile(path: String, record: Int?, expectedBytes: Int, actualBytes: Int)
    case labelOutOfRange(path: String, record: Int, label: Int, classCount: Int)
    case countMismatch(imagesPath: String, images: Int, labelsPath: String, labels: Int)
    case shapeMismatch(path: String, found: [Int], expected: String)
    case shardMissingDataset(path: String, dataset: String)
    case shardMissingAttribute(path: String, attribute: String)
    case shardClassesDiffer(path: String, firstShard: String)
    case noShards(directory: String)
    case emptyClassFolder(path: String)
    case noClassFolders(directory: String)
    /// A class folder of `val` that `train` does not have.
    case unknownClassFolder(path: String)
    case invalidJPEG(path: String, record: Int?, reason: String)
    case holdoutTooLarge(holdout: Int, trainingCount: Int)
    case invalidValidationIndex(index: Int, trainingCount: Int)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .rootNotFound(let path):
            return "data root \(path) does not exist (set data.root to the directory holding the data set)"
        case .sourceNotFound(let path):
            return "source directory \(path) does not exist (expected train/<class>/*.JPEG and val/<class>/*.JPEG in it)"
        case .missingDirectory(let path):
            return "directory \(path) does not exist"
        case .missingFile(let what, let candidates):
            return "\(what) not found; looked for \(candidates.joined(separator: ", "))"
        case .unreadableFile(let path):
            return "cannot read \(path)"
        case .compressedFile(let path, let reason):
            return "\(path): gzip \(reason)"
        case .badMagic(let path, let found, let expected):
            return "\(path): magic number 0x\(String(found, radix: 16)), expected 0x\(String(expected, radix: 16)) (not an IDX file of this kind)"
        case .truncatedFile(let path, let record, let expectedBytes, let actualBytes):
            let place = record.map { "inside record \($0)" } ?? "inside the header"
            return "\(path): truncated \(place): \(actualBytes) bytes, expected \(expectedBytes)"
        case .labelOutOfRange(let path, let record, let label, let classCount):
            return "\(path): record \(record) has label \(label), outside 0..<\(classCount)"
        case .countMismatch(let imagesPath, let images, let labelsPath, let labels):
            return "\(imagesPath) holds \(images) images but \(labelsPath) holds \(labels) labels"
        case .shapeMismatch(let path, let found, let expected):
            return "\(path): shape \(found), expected \(expected)"
        case .shardMissingDataset(let path, let dataset):
            return "shard \(path) has no dataset \(dataset)"
        case .shardMissingAttribute(let path, let attribute):
            return "shard \(path) has no attribute \(attribute)"
        case .shardClassesDiffer(let path, let firstShard):
            return "shard \(path) lists different classes than \(firstShard)"
        case .noShards(let directory):
            return "no SHARD-*.h5 files in \(directory) (write them with `disttrain prepare imagenet --from IMAGENET --out DATA_ROOT`)"
        case .emptyClassFolder(let path):
            return "class folder \(path) holds no .JPEG files"
        case .noClassFolders(let directory):
            return "\(directory) holds no class folders"
        case .unknownClassFolder(let path):
            return "class folder \(path) has no counterpart in train/, so it has no label"
        case .invalidJPEG(let path, let record, let reason):
            let place = record.map { " record \($0)" } ?? ""
            return "\(path)\(place): not a decodable JPEG: \(reason)"
        case .holdoutTooLarge(let holdout, let trainingCount):
            return "data.validationHoldout \(holdout) leaves no training samples out of \(trainingCount)"
        case .invalidValidationIndex(let index, let trainingCount):
            return "validation index \(index) (from the checkpoint) is outside the training set of \(trainingCount) samples"
        case .invalidArgument(let message):
            return message
        }
    }
}
