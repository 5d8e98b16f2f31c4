import DataPipeline
import Evaluation
import Foundation
import Model
import Storage

/// `disttrain predict`: classifies image files (JPEG or PNG) or the samples of a data shard with
/// a trained run, leaving each one at the first exit whose confidence reaches the threshold of
/// budget p (the thresholds are chosen on the run's validation hold-out, from `logits.h5`, as
/// the budgeted evaluation chooses them). Inputs are preprocessed exactly as evaluation does:
///
/// - small data sets (MNIST, Fashion-MNIST, CIFAR): the file must have the data set's image size
///   (28×28, 32×32); it is decoded to the data set's channels (gray: 0.299 R + 0.587 G + 0.114 B)
///   and goes through the evaluation's centred canvas and normalisation (`PixelRenderer`);
/// - ImageNet: the file goes through the evaluation's resize, centre crop and normalisation of
///   shards (`JPEGRenderer`), via a one-file shard in a temporary directory: JPEG bytes as stored
///   by `prepare imagenet`, PNG as decoded pixels.
public final class Predictor {
    /// One input's outcome: a class, or why it could not be classified.
    public struct Outcome: Sendable {
        public var item: String
        public var decision: EarlyExitInference.Decision?
        /// The label stored with a shard sample.
        public var label: Int?
        public var className: String?
        public var failure: String?
    }

    public let checkpointPath: String
    public let thresholds: [Float]
    public let exitMADDs: [Double]
    private let configuration: RunConfiguration
    private let network: TrainableNetwork
    private let inference: EarlyExitInference
    private let normalization: Normalization
    private let batchSize: Int

    /// Restores the newest checkpoint of the run (or `checkpoint`) and the thresholds of `budget`.
    public init(configuration: RunConfiguration, checkpoint: String?, budget: Double) throws {
        self.configuration = configuration
        let runDirectory = configuration.resolvedRunDirectory
        guard let path = checkpoint ?? CheckpointDirectory(runDirectory: runDirectory).files().first else {
            throw PredictionError.noCheckpoint(runDirectory: runDirectory)
        }
        checkpointPath = path
        batchSize = max(1, min(configuration.evaluation.batchSize, 256))
        let metadata = try Checkpoint.metadata(at: path)
        let backbone = try MSDNet(configuration: configuration.model, gradientEquilibrium: configuration.gradientEquilibrium,
                                  maximumBatchSize: batchSize)
        network = metadata.phase == 2
            ? IMTANetwork(backbone: backbone, distillation: OneForAllDistillation(temperature: 1, gamma: 0),
                          detachCollaboration: configuration.isc.detach, seed: 0)
            : backbone
        _ = try Checkpoint.restore(from: path, model: network.stateTensors, momentum: [])
        inference = EarlyExitInference(network: network)
        exitMADDs = CostCounter.exitCosts(backbone.architecture).map { Double($0.multiplyAdds) }
        normalization = Normalization.of(configuration.data.dataset)

        let logitsPath = (runDirectory as NSString).appendingPathComponent("logits.h5")
        guard FileManager.default.fileExists(atPath: logitsPath) else { throw PredictionError.noLogits(path: logitsPath) }
        let validation = try ExitLogits.read(from: logitsPath).validation
        guard validation.sampleCount > 0 else { throw PredictionError.noHoldout(path: logitsPath) }
        guard validation.exitCount == network.exitCount else {
            throw PredictionError.logitsOfAnotherNetwork(path: logitsPath, exits: validation.exitCount, expected: network.exitCount)
        }
        thresholds = BudgetedEvaluation.thresholds(
            validation: validation, proportions: BudgetedEvaluation.exitProportions(p: budget, exitCount: network.exitCount))
    }

    /// Classifies every input of `paths`; one outcome per image file, one per shard sample, and
    /// one failure for an input that cannot be read (the others still run).
    public func predict(paths: [String]) -> [Outcome] {
        let channels = configuration.model.inputChannels, size = configuration.model.inputSize
        let imageFloats = channels * size * size
        var outcomes: [Outcome] = []
        var pending: [(outcome: Int, image: [Float])] = []
        func flush() {
            guard !pending.isEmpty else { return }
            // Channel-major [C, n, S, S], as the data loader batches.
            let n = pending.count
            var batch = [Float](repeating: 0, count: n * imageFloats)
            for (row, entry) in pending.enumerated() {
                for channel in 0..<channels {
                    let source = channel * size * size, destination = (channel * n + row) * size * size
                    batch[destination..<(destination + size * size)] = entry.image[source..<(source + size * size)]
                }
            }
            let decisions = batch.withUnsafeBufferPointer {
                inference.classify(images: $0.baseAddress!, count: n, thresholds: thresholds)
            }
            for (entry, decision) in zip(pending, decisions) { outcomes[entry.outcome].decision = decision }
            pending.removeAll()
        }
        for path in paths {
            do {
                for (item, image, label, className, failure) in try render(path) {
                    outcomes.append(Outcome(item: item, decision: nil, label: label, className: className, failure: failure))
                    if let image {
                        pending.append((outcomes.count - 1, image))
                        if pending.count == batchSize { flush() }
                    }
                }
            } catch {
                outcomes.append(Outcome(item: path, decision: nil, label: nil, className: nil, failure: "\(error)"))
            }
        }
        flush()
        return outcomes
    }

    /// An input: its name, the network's input `[C, S, S]` (nil when it does not decode), the
    /// stored label and class name of a shard sample, and why it failed.
    typealias RenderedInput = (item: String, image: [Float]?, label: Int?, className: String?, failure: String?)

    /// Each image of `path` rendered; throws when the file as a whole cannot be used.
    private func render(_ path: String) throws -> [RenderedInput] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PredictionError.unreadable(path: path, reason: readableReason(error))
        }
        let bytes = [UInt8](data)
        if bytes.starts(with: [0x89, 0x48, 0x44, 0x46]) {
            return try renderShard(path)
        }
        let isJPEG = bytes.starts(with: [0xFF, 0xD8, 0xFF])
        guard isJPEG || PNGDecoder.isPNG(bytes) else { throw PredictionError.notAnImage(path: path) }
        if configuration.data.dataset == .imagenet {
            return [(path, try renderThroughShard(path: path, bytes: bytes, isJPEG: isJPEG), nil, nil, nil)]
        }
        let channels = configuration.model.inputChannels
        let decoded: (pixels: [UInt8], width: Int, height: Int)
        do {
            if isJPEG {
                let decoder = JPEGDecoder()
                let image = try bytes.withUnsafeBufferPointer { try decoder.decode($0) }
                let rgb = Array(UnsafeBufferPointer(start: image.pixels, count: image.width * image.height * 3))
                decoded = (channels == 3 ? rgb : Self.gray(rgb), image.width, image.height)
            } else {
                decoded = try PNGDecoder.decode(bytes, channels: channels)
            }
        } catch {
            throw PredictionError.undecodable(path: path, reason: "\(error)")
        }
        let native = configuration.data.dataset == .cifar10 || configuration.data.dataset == .cifar100 ? 32 : 28
        guard decoded.width == native && decoded.height == native else {
            throw PredictionError.wrongSize(path: path, width: decoded.width, height: decoded.height, expected: native,
                                            dataset: configuration.data.dataset.rawValue)
        }
        // Interleaved [H, W, C] to the data set's [C, H, W].
        let plane = native * native
        var planar = [UInt8](repeating: 0, count: channels * plane)
        for pixel in 0..<plane {
            for channel in 0..<channels { planar[channel * plane + pixel] = decoded.pixels[pixel * channels + channel] }
        }
        let images = PixelImages(pixels: planar, labels: [0], channels: channels, height: native, width: native, classCount: 1)
        return [(path, try Self.render(PixelRenderer(images: images, outputSize: configuration.model.inputSize,
                                                     normalization: normalization), sample: 0), nil, nil, nil)]
    }

    /// Luma of interleaved RGB as libjpeg computes gray: (299 R + 587 G + 114 B) / 1000, rounded.
    static func gray(_ rgb: [UInt8]) -> [UInt8] {
        stride(from: 0, to: rgb.count, by: 3).map { (index: Int) -> UInt8 in
            let red = 299 * Int(rgb[index]), green = 587 * Int(rgb[index + 1]), blue = 114 * Int(rgb[index + 2])
            return UInt8((red + green + blue + 500) / 1000)
        }
    }

    static func render(_ renderer: SampleRenderer, sample: Int) throws -> [Float] {
        let size = renderer.outputSize
        var image = [Float](repeating: 0, count: renderer.channels * size * size)
        try image.withUnsafeMutableBufferPointer {
            try renderer.render(sample: sample, random: nil, scratch: renderer.makeScratch(), destination: $0.baseAddress!,
                                channelStride: size * size)
        }
        return image
    }

    /// Every sample of a shard file (`prepare imagenet`'s format), rendered as evaluation renders shards.
    private func renderShard(_ path: String) throws -> [RenderedInput] {
        // Any HDF5 file starts as a shard does (logits.h5, a checkpoint): a shard has labels.
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        guard try file.root.exists("labels") else { throw PredictionError.notAShard(path: path) }
        guard configuration.data.dataset == .imagenet else {
            throw PredictionError.shardForSmallDataset(path: path, dataset: configuration.data.dataset.rawValue)
        }
        return try withShardDirectory { directory in
            let absolute = (path as NSString).isAbsolutePath ? path : FileManager.default.currentDirectoryPath + "/" + path
            try FileManager.default.createSymbolicLink(atPath: directory + "/SHARD-00000.h5", withDestinationPath: absolute)
            let shards = try ShardImages(directory: directory)
            let renderer = JPEGRenderer(shards: shards, outputSize: configuration.model.inputSize, normalization: normalization)
            return (0..<shards.count).map { sample in
                let label = Int(shards.labels[sample])
                let name = label < shards.classes.count ? shards.classes[label] : nil
                do {
                    return ("\(path)[\(sample)]", try Self.render(renderer, sample: sample), label, name, nil)
                } catch {
                    return ("\(path)[\(sample)]", nil, label, name, "\(error)")
                }
            }
        }
    }

    /// One image file as a one-sample shard: JPEG bytes as stored, PNG as decoded RGB pixels.
    private func renderThroughShard(path: String, bytes: [UInt8], isJPEG: Bool) throws -> [Float] {
        try withShardDirectory { directory in
            let file = try HDF5File.create(directory + "/SHARD-00000.h5")
            let root = try file.root
            try root.createDataset("labels", values: [Int32(0)], shape: [1])
            if isJPEG {
                try root.createByteArrayDataset("jpeg", byteArrays: [bytes])
            } else {
                let decoded: (pixels: [UInt8], width: Int, height: Int)
                do { decoded = try PNGDecoder.decode(bytes, channels: 3) } catch {
                    throw PredictionError.undecodable(path: path, reason: "\(error)")
                }
                try root.createDataset("pixels", values: decoded.pixels, shape: [1, decoded.height, decoded.width, 3])
            }
            try root.writeAttribute("classes", "[\"input\"]")
            try file.close()
            let renderer = JPEGRenderer(shards: try ShardImages(directory: directory), outputSize: configuration.model.inputSize,
                                        normalization: normalization)
            do { return try Self.render(renderer, sample: 0) } catch {
                throw PredictionError.undecodable(path: path, reason: "\(error)")
            }
        }
    }

    private func withShardDirectory<Result>(_ body: (String) throws -> Result) throws -> Result {
        let directory = NSTemporaryDirectory() + "disttrain-predict-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try body(directory)
    }
}

/// Why `predict` cannot run, or cannot classify one input.
public enum PredictionError: Error, CustomStringConvertible {
    case noCheckpoint(runDirectory: String)
    case noLogits(path: String)
    case noHoldout(path: String)
    case logitsOfAnotherNetwork(path: String, exits: Int, expected: Int)
    case unreadable(path: String, reason: String)
    case notAnImage(path: String)
    /// An HDF5 file without the `labels` dataset of `prepare imagenet`'s shards.
    case notAShard(path: String)
    case undecodable(path: String, reason: String)
    case wrongSize(path: String, width: Int, height: Int, expected: Int, dataset: String)
    case shardForSmallDataset(path: String, dataset: String)

    public var description: String {
        switch self {
        case let .noCheckpoint(runDirectory):
            "\(runDirectory)/checkpoints: no checkpoint to predict with (train first, or pass --checkpoint)"
        case let .noLogits(path):
            "\(path): missing; the budget's thresholds are chosen on the validation probabilities it holds (run disttrain eval first)"
        case let .noHoldout(path):
            "\(path): the run has no validation hold-out (data.validationHoldout: 0), so no budget has thresholds"
        case let .logitsOfAnotherNetwork(path, exits, expected):
            "\(path): holds \(exits) exits, the network has \(expected) (run disttrain eval again)"
        case let .unreadable(path, reason): "\(path): cannot read the file: \(reason)"
        case let .notAnImage(path): "\(path): not a JPEG, PNG or HDF5 shard file"
        case let .notAShard(path): "\(path): an HDF5 file but not a data shard (no 'labels' dataset, as prepare imagenet writes)"
        case let .undecodable(path, reason): "\(path): cannot decode the image: \(reason)"
        case let .wrongSize(path, width, height, expected, dataset):
            "\(path): \(width)x\(height) pixels, expected \(expected)x\(expected) as the \(dataset) images"
        case let .shardForSmallDataset(path, dataset):
            "\(path): shards hold ImageNet-style images; this run's data set is \(dataset)"
        }
    }
}
