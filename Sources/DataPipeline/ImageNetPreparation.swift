import Dispatch
import Foundation
import Storage

/// `disttrain prepare imagenet`: copies an ImageNet tree (`train/<wnid>/*.JPEG`,
/// `val/<wnid>/*.JPEG`, torchvision `ImageFolder` layout) into HDF5 shards
/// `OUT/{train,val}/SHARD-00000.h5`, … holding the original JPEG bytes (`/jpeg`), labels
/// (`/labels`, the index of the wnid in the sorted class list) and the class list
/// (attribute `classes`, JSON).
///
/// Files are taken class by class in name order and cut into shards of `shardSize` source
/// files, so shard k always covers the same files and a rerun keeps every shard already
/// complete (a shard is written under a temporary name and renamed once closed and synced).
/// Files that are not decodable JPEGs are skipped and listed, in the summary and in the shard's
/// `skippedFiles` attribute. Shards are written in parallel by `workers` threads.
public struct ImageNetPreparation: Sendable {
    public struct SkippedFile: Codable, Equatable, Sendable {
        public let path: String
        public let reason: String
    }

    public struct Progress: Sendable {
        public let split: String
        public let filesDone: Int
        public let filesTotal: Int
        public let skipped: Int
    }

    public struct SplitSummary: Sendable {
        public let split: String
        public let classes: Int
        public let imagesStored: Int
        public let skipped: [SkippedFile]
        public let shardsWritten: Int
        public let shardsKept: Int
    }

    public let source: String
    public let output: String
    public let shardSize: Int
    public let workers: Int

    public init(source: String, output: String, shardSize: Int = 1024, workers: Int) {
        precondition(shardSize > 0)
        self.source = source
        self.output = output
        self.shardSize = shardSize
        self.workers = max(1, workers)
    }

    /// Prepares `train` then `val`. `progress` and `skippedFile` are called from worker threads,
    /// one call at a time.
    public func run(progress: @escaping @Sendable (Progress) -> Void,
                    skippedFile: @escaping @Sendable (SkippedFile) -> Void) throws -> [SplitSummary] {
        guard DataFile.isDirectory(source) else { throw DataError.sourceNotFound(path: source) }
        let classes = try Self.classFolders(in: source + "/train")
        // Both trees are listed before anything is written, so a layout error costs no time.
        let splits = try ["train", "val"].map { ($0, try Self.listFiles(split: "\(source)/\($0)", classes: classes)) }
        return try splits.map { split, files in
            try prepare(split: split, files: files, classes: classes, progress: progress, skippedFile: skippedFile)
        }
    }

    /// The class folders of `directory`, sorted (the label of a class is its position).
    static func classFolders(in directory: String) throws -> [String] {
        guard DataFile.isDirectory(directory) else { throw DataError.missingDirectory(path: directory) }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { name in
            !name.hasPrefix(".") && DataFile.isDirectory("\(directory)/\(name)")
        }
        guard !names.isEmpty else { throw DataError.noClassFolders(directory: directory) }
        return names.sorted()
    }

    /// Every file of every class folder of `directory` with its label, class by class, in name order.
    static func listFiles(split directory: String, classes: [String]) throws -> [(path: String, label: Int32)] {
        let labels = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, Int32($0)) })
        var files = [(path: String, label: Int32)]()
        for folder in try classFolders(in: directory) {
            let folderPath = "\(directory)/\(folder)"
            guard let label = labels[folder] else { throw DataError.unknownClassFolder(path: folderPath) }
            let names = try FileManager.default.contentsOfDirectory(atPath: folderPath)
                .filter { !$0.hasPrefix(".") }.sorted()
            guard !names.isEmpty else { throw DataError.emptyClassFolder(path: folderPath) }
            files += names.map { ("\(folderPath)/\($0)", label) }
        }
        return files
    }

    /// Why `bytes` cannot be used as a JPEG, or nil when it decodes. The whole entropy-coded
    /// stream is decoded (at 1/8 scale, where libjpeg-turbo skips most of the inverse DCT),
    /// and a file must end in an end-of-image marker, which catches truncation that libjpeg only
    /// warns about.
    static func defect(of bytes: [UInt8], decoder: JPEGDecoder) -> String? {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else {
            return "not a JPEG file (starts with \(bytes.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")))"
        }
        let tail = max(1, bytes.count - 1024)
        guard (tail..<bytes.count).contains(where: { bytes[$0 - 1] == 0xFF && bytes[$0] == 0xD9 }) else {
            return "truncated (no end-of-image marker)"
        }
        return bytes.withUnsafeBufferPointer { jpeg -> String? in
            do {
                let header = try decoder.header(jpeg)
                _ = try decoder.decode(jpeg, header: header, reduction: JPEGDecoder.reductions[0])
                return nil
            } catch {
                return "\(error)"
            }
        }
    }

    /// JSON for the shard attributes, paths written as they are (no `\/`).
    static var jsonEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }

    static func shardName(_ index: Int) -> String { String(format: "SHARD-%05d.h5", index) }

    /// True when `path` is a finished shard of `sourceFiles` files with this class list.
    static func isComplete(_ path: String, sourceFiles: Int, classesJSON: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path), let file = try? HDF5File.open(path) else { return false }
        defer { try? file.close() }
        guard let root = try? file.root,
              (try? root.exists("labels")) == true, (try? root.exists("jpeg")) == true,
              (try? root.readStringAttribute("classes")) == classesJSON,
              (try? root.readAttribute("sourceFiles", as: Int64.self)) == Int64(sourceFiles) else { return false }
        return true
    }

    private func prepare(split: String, files: [(path: String, label: Int32)], classes: [String],
                         progress: @escaping @Sendable (Progress) -> Void,
                         skippedFile: @escaping @Sendable (SkippedFile) -> Void) throws -> SplitSummary {
        let directory = "\(output)/\(split)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let classesJSON = String(decoding: try Self.jsonEncoder.encode(classes), as: UTF8.self)
        let shardCount = (files.count + shardSize - 1) / shardSize
        let tally = PreparationTally(split: split, filesTotal: files.count, shardCount: shardCount,
                                     progress: progress, skippedFile: skippedFile)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let decoder = JPEGDecoder()
            while let shard = tally.claimShard() {
                let range = (shard * shardSize)..<min(files.count, (shard + 1) * shardSize)
                let path = "\(directory)/\(Self.shardName(shard))"
                do {
                    if Self.isComplete(path, sourceFiles: range.count, classesJSON: classesJSON) {
                        let stored = try HDF5File.open(path)
                        defer { try? stored.close() }
                        let root = try stored.root
                        let skipped = try JSONDecoder().decode([SkippedFile].self,
                                                               from: Data(try root.readStringAttribute("skippedFiles").utf8))
                        tally.kept(shard: shard, images: try root.dataset("labels").shape[0], files: range.count, skipped: skipped)
                    } else {
                        try writeShard(path: path, files: Array(files[range]), classesJSON: classesJSON,
                                       decoder: decoder, tally: tally)
                    }
                } catch {
                    tally.fail(error)
                }
            }
        }
        if let error = tally.failure { throw error }
        return tally.summary(classes: classes.count)
    }

    private func writeShard(path: String, files: [(path: String, label: Int32)], classesJSON: String,
                            decoder: JPEGDecoder, tally: PreparationTally) throws {
        var images = [[UInt8]]()
        var labels = [Int32]()
        var skipped = [SkippedFile]()
        for file in files {
            let reason: String?
            if let data = FileManager.default.contents(atPath: file.path) {
                let bytes = [UInt8](data)
                reason = Self.defect(of: bytes, decoder: decoder)
                if reason == nil {
                    images.append(bytes)
                    labels.append(file.label)
                }
            } else {
                reason = "cannot be read"
            }
            let skip = reason.map { SkippedFile(path: file.path, reason: $0) }
            if let skip { skipped.append(skip) }
            tally.fileDone(skipped: skip)
        }
        let partial = path + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        let shard = try HDF5File.create(partial)
        let root = try shard.root
        try root.createDataset("labels", values: labels, shape: [labels.count])
        let jpeg = try root.createByteArrayDataset("jpeg")
        // Appending in slices bounds the extra contiguous copy HDF5's write needs.
        for start in stride(from: 0, to: images.count, by: 128) {
            try jpeg.appendByteArrays(Array(images[start..<min(images.count, start + 128)]))
        }
        try root.writeAttribute("classes", classesJSON)
        try root.writeAttribute("sourceFiles", Int64(files.count))
        try root.writeAttribute("skippedFiles", String(decoding: try Self.jsonEncoder.encode(skipped), as: UTF8.self))
        try shard.flush()
        try shard.close()
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        tally.written(images: images.count)
    }
}

/// The shared counters of one split's preparation, under one lock.
// Unchecked: every mutable counter is read and written under `lock`.
private final class PreparationTally: @unchecked Sendable {
    private let lock = NSLock()
    private let split: String
    private let filesTotal: Int
    private let shardCount: Int
    private let progress: @Sendable (ImageNetPreparation.Progress) -> Void
    private let skippedFile: @Sendable (ImageNetPreparation.SkippedFile) -> Void
    private var nextShard = 0
    private var filesDone = 0
    private var imagesStored = 0
    private var shardsWritten = 0
    private var shardsKept = 0
    private var skipped = [ImageNetPreparation.SkippedFile]()
    private(set) var failure: Error?

    init(split: String, filesTotal: Int, shardCount: Int,
         progress: @escaping @Sendable (ImageNetPreparation.Progress) -> Void,
         skippedFile: @escaping @Sendable (ImageNetPreparation.SkippedFile) -> Void) {
        self.split = split
        self.filesTotal = filesTotal
        self.shardCount = shardCount
        self.progress = progress
        self.skippedFile = skippedFile
    }

    private func locked<Result>(_ body: () -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    /// The next shard to do, or nil when all are claimed or a worker failed.
    func claimShard() -> Int? {
        locked {
            guard failure == nil, nextShard < shardCount else { return nil }
            nextShard += 1
            return nextShard - 1
        }
    }

    private func report() {
        progress(.init(split: split, filesDone: filesDone, filesTotal: filesTotal, skipped: skipped.count))
    }

    func fileDone(skipped file: ImageNetPreparation.SkippedFile?) {
        locked {
            filesDone += 1
            if let file {
                skipped.append(file)
                skippedFile(file)
            }
            report()
        }
    }

    func written(images: Int) {
        locked {
            imagesStored += images
            shardsWritten += 1
        }
    }

    func kept(shard: Int, images: Int, files: Int, skipped kept: [ImageNetPreparation.SkippedFile]) {
        locked {
            imagesStored += images
            shardsKept += 1
            filesDone += files
            skipped += kept
            report()
        }
    }

    func fail(_ error: Error) {
        locked { if failure == nil { failure = error } }
    }

    func summary(classes: Int) -> ImageNetPreparation.SplitSummary {
        locked {
            .init(split: split, classes: classes, imagesStored: imagesStored,
                  skipped: skipped.sorted { $0.path < $1.path }, shardsWritten: shardsWritten, shardsKept: shardsKept)
        }
    }
}
