import Foundation
import Storage

/// A data set split stored as HDF5 shards `SHARD-00000.h5`, `SHARD-00001.h5`, … in one
/// directory, each holding `/labels [n] int32` and either `/jpeg` (variable-length uint8: the
/// original JPEG files) or `/pixels [n, H, W, C] uint8`, with the class list as the JSON
/// attribute `classes`. Samples are numbered across shards in file-name order.
///
/// Labels are read at opening; images are read one at a time. Shard files are opened on
/// demand and at most `openFileLimit` stay open, so a thousand shards fit within the
/// process's file-descriptor limit. Safe to use from several threads (Storage serialises HDF5).
// Unchecked: the open-file cache is guarded by a lock and HDF5 calls are serialised by Storage.
public final class ShardImages: @unchecked Sendable {
    enum Content: Equatable {
        case jpeg
        /// Interleaved pixels of one fixed size.
        case pixels(height: Int, width: Int, channels: Int)
    }

    static let openFileLimit = 64

    let directory: String
    let shardPaths: [String]
    public let classes: [String]
    public let labels: [Int32]
    let content: Content
    /// Sample index of each shard's first record, plus the total at the end.
    private let shardStarts: [Int]
    private var openDatasets: [Int: (dataset: HDF5Dataset, lastUse: Int)] = [:]
    private var useCounter = 0
    private let lock = NSLock()

    public var count: Int { labels.count }

    /// The shard files in `directory`, in name order.
    static func shardFiles(in directory: String) throws -> [String] {
        guard DataFile.isDirectory(directory) else { throw DataError.noShards(directory: directory) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("SHARD-") && $0.hasSuffix(".h5") }.sorted().map { "\(directory)/\($0)" }
    }

    /// Opens every shard of `directory` to read its labels and class list; `limit` keeps only
    /// the first samples.
    public init(directory: String, limit: Int? = nil) throws {
        let paths = try Self.shardFiles(in: directory)
        guard !paths.isEmpty else { throw DataError.noShards(directory: directory) }
        var classes: [String]? = nil
        var content: Content? = nil
        var labels = [Int32]()
        var starts = [Int]()
        var usedPaths = [String]()
        for path in paths {
            if let limit, labels.count >= limit { break }
            let file = try HDF5File.open(path)
            defer { try? file.close() }
            let root = try file.root
            guard try root.exists("labels") else { throw DataError.shardMissingDataset(path: path, dataset: "labels") }
            guard try root.hasAttribute("classes") else { throw DataError.shardMissingAttribute(path: path, attribute: "classes") }
            let shardClasses = try Self.decodeClasses(try root.readStringAttribute("classes"), path: path)
            if let classes, classes != shardClasses {
                throw DataError.shardClassesDiffer(path: path, firstShard: usedPaths[0])
            }
            classes = shardClasses
            let shardLabels = try root.read("labels", as: Int32.self).values
            for (record, label) in shardLabels.enumerated() where label < 0 || Int(label) >= shardClasses.count {
                throw DataError.labelOutOfRange(path: path, record: record, label: Int(label), classCount: shardClasses.count)
            }
            let shardContent: Content
            let imageCount: Int
            if try root.exists("jpeg") {
                shardContent = .jpeg
                imageCount = try root.dataset("jpeg").shape.first ?? 0
            } else if try root.exists("pixels") {
                let shape = try root.dataset("pixels").shape
                // Image sides as JPEG allows them: a damaged shape cannot ask for a huge buffer per sample.
                guard shape.count == 4, shape[3] == 1 || shape[3] == 3, (1...65_535).contains(shape[1]),
                      (1...65_535).contains(shape[2]) else {
                    throw DataError.shapeMismatch(path: path, found: shape, expected: "pixels [n, H, W, C] with C = 1 or 3 and H, W in 1...65535")
                }
                shardContent = .pixels(height: shape[1], width: shape[2], channels: shape[3])
                imageCount = shape[0]
            } else {
                throw DataError.shardMissingDataset(path: path, dataset: "jpeg or pixels")
            }
            guard imageCount == shardLabels.count else {
                throw DataError.countMismatch(imagesPath: path, images: imageCount, labelsPath: path, labels: shardLabels.count)
            }
            if let content, content != shardContent {
                throw DataError.shapeMismatch(path: path, found: [], expected: "the same image storage as \(usedPaths[0])")
            }
            content = shardContent
            starts.append(labels.count)
            labels.append(contentsOf: shardLabels)
            usedPaths.append(path)
        }
        if let limit, labels.count > limit { labels.removeLast(labels.count - limit) }
        starts.append(labels.count)
        self.directory = directory
        self.shardPaths = usedPaths
        self.classes = classes ?? []
        self.labels = labels
        self.content = content ?? .jpeg
        self.shardStarts = starts
    }

    static func decodeClasses(_ json: String, path: String) throws -> [String] {
        guard let data = json.data(using: .utf8), let names = try? JSONDecoder().decode([String].self, from: data) else {
            throw DataError.shapeMismatch(path: path, found: [], expected: "attribute classes: a JSON array of class names")
        }
        return names
    }

    /// The shard and record of `sample`.
    func location(of sample: Int) -> (shard: Int, record: Int) {
        var low = 0
        var high = shardStarts.count - 2
        while low < high {
            let middle = (low + high + 1) / 2
            if shardStarts[middle] <= sample { low = middle } else { high = middle - 1 }
        }
        return (low, sample - shardStarts[low])
    }

    /// The images dataset of `shard`, opening the file when it is not open (letting go of the
    /// least recently used one when `openFileLimit` are).
    private func imageDataset(shard: Int) throws -> HDF5Dataset {
        lock.lock()
        defer { lock.unlock() }
        useCounter += 1
        if let entry = openDatasets[shard] {
            openDatasets[shard] = (entry.dataset, useCounter)
            return entry.dataset
        }
        if openDatasets.count >= Self.openFileLimit,
           let oldest = openDatasets.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            // Dropped, not closed: a worker may still be reading it; the file closes with its last reference.
            openDatasets[oldest.key] = nil
        }
        let dataset = try HDF5File.open(shardPaths[shard]).root.dataset(content == .jpeg ? "jpeg" : "pixels")
        openDatasets[shard] = (dataset, useCounter)
        return dataset
    }

    /// The JPEG file of `sample`, with where it came from for error messages.
    func jpeg(_ sample: Int) throws -> (bytes: [UInt8], path: String, record: Int) {
        let (shard, record) = location(of: sample)
        let bytes = try imageDataset(shard: shard).readByteArrays(record..<record + 1)
        return (bytes[0], shardPaths[shard], record)
    }

    /// The interleaved pixels of `sample` into `buffer` (height · width · channels bytes).
    func pixels(_ sample: Int, into buffer: UnsafeMutableBufferPointer<UInt8>) throws {
        let (shard, record) = location(of: sample)
        try imageDataset(shard: shard).readRows(record..<record + 1, into: buffer)
    }
}

/// The ImageNet pipeline over shards: decode (JPEG, at a DCT reduction where the image is
/// shrunk anyway), then `RandomResizedCrop(S)` + horizontal flip in training or
/// `Resize(S·256/224)` + `CenterCrop(S)` in evaluation, as one bilinear resampling, normalised.
public final class JPEGRenderer: SampleRenderer, Sendable {
    final class Scratch {
        let decoder = JPEGDecoder()
        let resampler = BilinearResampler()
        var pixels: [UInt8] = []
    }

    let shards: ShardImages
    public let outputSize: Int
    let normalization: Normalization
    /// Decode at a reduced DCT scale when the resampling shrinks the image (false: always full size).
    let reducesInDCTDomain: Bool

    public init(shards: ShardImages, outputSize: Int, normalization: Normalization, reducesInDCTDomain: Bool = true) {
        self.shards = shards
        self.outputSize = outputSize
        self.normalization = normalization
        self.reducesInDCTDomain = reducesInDCTDomain
    }

    public var channels: Int { 3 }
    public var count: Int { shards.count }
    public func label(of sample: Int) -> Int32 { shards.labels[sample] }
    public func makeScratch() -> AnyObject? { Scratch() }

    /// Evaluation's resize target for the shorter side: 256 for S = 224.
    var evaluationResize: Int { Int((Double(outputSize) * 256 / 224).rounded()) }

    public func render(sample: Int, random: SampleRandom?, scratch: AnyObject?,
                destination: UnsafeMutablePointer<Float>, channelStride: Int) throws {
        let scratch = scratch as! Scratch
        switch shards.content {
        case .jpeg:
            let (bytes, path, record) = try shards.jpeg(sample)
            try bytes.withUnsafeBufferPointer { jpeg in
                do {
                    let header = try scratch.decoder.header(jpeg)
                    let plan = resamplingPlan(height: header.height, width: header.width, random: random)
                    let reduction = reducesInDCTDomain
                        ? JPEGDecoder.reduction(for: header, minimumWidth: Double(header.width) / plan.horizontal.scale,
                                                minimumHeight: Double(header.height) / plan.vertical.scale)
                        : JPEGDecoder.ScalingFactor(numerator: 1, denominator: 1)
                    let image = try scratch.decoder.decode(jpeg, header: header, reduction: reduction)
                    scratch.resampler.resample(
                        source: image.pixels, rowStride: image.width * 3, channels: 3,
                        vertical: plan.vertical.rescaled(by: reduction.factor, to: image.height),
                        horizontal: plan.horizontal.rescaled(by: reduction.factor, to: image.width),
                        flip: plan.flip, normalization: normalization, destination: destination, channelStride: channelStride)
                } catch let error as JPEGError {
                    throw DataError.invalidJPEG(path: path, record: record, reason: error.description)
                }
            }
        case .pixels(let height, let width, let imageChannels):
            let pixelCount = height * width
            if scratch.pixels.count < pixelCount * 3 { scratch.pixels = [UInt8](repeating: 0, count: pixelCount * 3) }
            let plan = resamplingPlan(height: height, width: width, random: random)
            try scratch.pixels.withUnsafeMutableBufferPointer { buffer in
                try shards.pixels(sample, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<pixelCount * imageChannels]))
                if imageChannels == 1 {
                    // Greyscale feeds all three colour planes; expand in place from the end.
                    for pixel in stride(from: pixelCount - 1, through: 0, by: -1) {
                        let value = buffer[pixel]
                        buffer[3 * pixel] = value
                        buffer[3 * pixel + 1] = value
                        buffer[3 * pixel + 2] = value
                    }
                }
                scratch.resampler.resample(source: buffer.baseAddress!, rowStride: width * 3, channels: 3,
                                           vertical: plan.vertical, horizontal: plan.horizontal, flip: plan.flip,
                                           normalization: normalization, destination: destination, channelStride: channelStride)
            }
        }
    }

    private func resamplingPlan(height: Int, width: Int, random: SampleRandom?)
        -> (vertical: ResampleAxis, horizontal: ResampleAxis, flip: Bool) {
        guard var random else {
            let axes = ImageNetGeometry.resizeThenCentreCropAxes(height: height, width: width,
                                                                 resize: evaluationResize, crop: outputSize)
            return (axes.vertical, axes.horizontal, false)
        }
        let region = ImageNetGeometry.randomResizedCropRegion(height: height, width: width, random: &random)
        let axes = ImageNetGeometry.cropAxes(region, outputSize: outputSize)
        return (axes.vertical, axes.horizontal, random.nextDouble() < 0.5)
    }
}
