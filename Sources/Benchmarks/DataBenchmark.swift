import DataPipeline
import Foundation

/// Throughput of the ImageNet path on one image size (`DataBenchmark.imageNetJPEG`).
public struct JPEGPipelineBenchmarkResult: CustomStringConvertible, Sendable {
    /// One pass of `JPEGRenderer` over the training shards on the calling thread.
    public struct RendererRate: Sendable {
        /// Training augmentation (RandomResizedCrop + flip); false: evaluation (Resize + CenterCrop).
        public var augmented: Bool
        public var reducesInDCTDomain: Bool
        public var imagesPerCPUSecond: Double
    }

    /// One epoch of training batches through `BatchStream`.
    public struct StreamRate: Sendable {
        public var workers: Int
        public var imagesPerSecond: Double
    }

    public var width: Int
    public var height: Int
    /// JPEG files in the source tree (training and validation).
    public var sourceImages: Int
    public var averageBytes: Int
    public var prepareWorkers: Int
    /// Source files per wall-clock second of `prepare` (listing, check decode, shard writing).
    public var prepareFilesPerSecond: Double
    /// Shard files `prepare` wrote, both splits.
    public var shardsWritten: Int
    /// Images the training and validation shards hold, as `ShardImages` reads them back.
    public var storedTrainingImages: Int
    public var storedValidationImages: Int
    /// Full-size decodes of the source JPEGs per CPU second of the calling thread.
    public var decodeImagesPerCPUSecond: Double
    public var renderers: [RendererRate]
    public var batchSize: Int
    public var streams: [StreamRate]

    public var description: String {
        var lines = ["ImageNet-style JPEGs \(width)x\(height): \(sourceImages) images, \(averageBytes) bytes on average"]
        lines.append(String(format: "  prepare (%d workers, check = 1/8-scale decode): %.0f files/s (wall clock), %d shards",
                            prepareWorkers, prepareFilesPerSecond, shardsWritten))
        lines.append(String(format: "  decode only, full size: %.0f images per CPU second", decodeImagesPerCPUSecond))
        for rate in renderers {
            let mode = rate.augmented ? "train RandomResizedCrop+flip" : "eval Resize256+CenterCrop224"
            let decode = rate.reducesInDCTDomain ? "with DCT-domain reduction" : "full-size decode"
            lines.append(String(format: "  %@, %@, shard read+decode+resample+normalise: %.0f images per CPU second",
                                mode, decode, rate.imagesPerCPUSecond))
        }
        for stream in streams {
            lines.append(String(format: "  BatchStream, training batches of %d, %d worker(s): %.0f images/s (wall clock)",
                                batchSize, stream.workers, stream.imagesPerSecond))
        }
        return lines.joined(separator: "\n")
    }
}

/// Throughput of the Fashion-MNIST loader (`DataBenchmark.fashionMNISTLoader`).
public struct LoaderBenchmarkResult: CustomStringConvertible, Sendable {
    /// Images read at opening: training source and test split.
    public var imagesOpened: Int
    /// Wall-clock seconds to read (gunzip, parse) both splits.
    public var openSeconds: Double
    public var batchSize: Int
    public var workers: Int
    /// Images in one training epoch of this rank.
    public var epochImages: Int
    /// Wall-clock seconds to draw that epoch with nothing else running.
    public var epochSeconds: Double
    public var imagesPerSecond: Double { Double(epochImages) / epochSeconds }
    /// The simulated trainer's time per batch.
    public var computeSecondsPerBatch: Double
    public var simulatedBatches: Int
    /// Time the simulated trainer waited for data over `simulatedBatches` (the first batch included).
    public var dataWaitSeconds: Double
    public var stepsPerEpoch: Int

    public var description: String {
        let waitPerBatch = dataWaitSeconds / Double(max(1, simulatedBatches))
        return [
            String(format: "Fashion-MNIST open (gunzip + parse %d images): %.2f s", imagesOpened, openSeconds),
            String(format: "Fashion-MNIST training batches of %d, %d worker(s), no compute: %.0f images/s (epoch of %d in %.2f s)",
                   batchSize, workers, imagesPerSecond, epochImages, epochSeconds),
            String(format: "with %.0f ms of compute per batch: %.4f s waiting for data over %d batches (%.2f ms/batch; first batch included), about %.2f s per %d-step epoch",
                   computeSecondsPerBatch * 1000, dataWaitSeconds, simulatedBatches, waitPerBatch * 1000,
                   waitPerBatch * Double(stepsPerEpoch), stepsPerEpoch),
        ].joined(separator: "\n")
    }
}

/// Data pipeline throughput for `disttrain bench --data`.
///
/// Rates of work done on the calling thread are images per CPU second of that thread
/// (`CLOCK_THREAD_CPUTIME_ID`), which other processes sharing the machine do not distort;
/// rates of multi-threaded work (`prepare`, `BatchStream`) are per wall-clock second.
public enum DataBenchmark {
    /// The ImageNet path on `trainingImages` + `validationImages` Fashion-MNIST training images
    /// scaled up to `width`×`height` and encoded as JPEG (see `writeJPEGTree`): `prepare` into
    /// shards of `shardSize` files, full-size decoding alone, the training and evaluation
    /// renderers with and without DCT-domain reduction, and training batches of `batchSize`
    /// through `BatchStream` with 1 and 2 workers. Every validation class must occur among the
    /// training images (as `prepare` requires). Files live in a temporary directory, removed on return.
    public static func imageNetJPEG(fashionMNISTRoot: String, width: Int = 256, height: Int = 256,
                                    trainingImages: Int = 1024, validationImages: Int = 256, shardSize: Int = 256,
                                    batchSize: Int = 64) throws -> JPEGPipelineBenchmarkResult {
        precondition(width > 0 && height > 0 && trainingImages > 0 && validationImages > 0 && shardSize > 0 && batchSize > 0)
        try requireFashionMNIST(fashionMNISTRoot)
        let images = try IDXFile.loadSplit(root: fashionMNISTRoot, training: true, classCount: 10)
        guard trainingImages + validationImages <= images.count else {
            throw DataError.invalidArgument("the data benchmark asked for \(trainingImages + validationImages) images; "
                                            + "\(fashionMNISTRoot) holds \(images.count)")
        }
        let directory = NSTemporaryDirectory() + "disttrain-data-benchmark-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = directory + "/source"
        let output = directory + "/shards"
        let jpegs = try writeJPEGTree(images, to: source, training: trainingImages, validation: validationImages,
                                      width: width, height: height)

        let prepareWorkers = 2
        var summaries = [ImageNetPreparation.SplitSummary]()
        let prepareSeconds = try wallSeconds {
            summaries = try ImageNetPreparation(source: source, output: output, shardSize: shardSize, workers: prepareWorkers)
                .run(progress: { _ in }, skippedFile: { _ in })
        }

        let decoder = JPEGDecoder()
        let decodeSeconds = try threadCPUSeconds {
            for jpeg in jpegs { _ = try jpeg.withUnsafeBufferPointer { try decoder.decode($0) } }
        }

        let shards = try ShardImages(directory: output + "/train")
        let validationShards = try ShardImages(directory: output + "/val")
        let outputSize = 224
        let destination = UnsafeMutablePointer<Float>.allocate(capacity: 3 * outputSize * outputSize)
        defer { destination.deallocate() }
        var renderers = [JPEGPipelineBenchmarkResult.RendererRate]()
        for reduces in [true, false] {
            let renderer = JPEGRenderer(shards: shards, outputSize: outputSize, normalization: .of(.imagenet),
                                        reducesInDCTDomain: reduces)
            let scratch = renderer.makeScratch()
            for augmented in [true, false] {
                let elapsed = try threadCPUSeconds {
                    for sample in 0..<shards.count {
                        let random = augmented ? SampleRandom(seed: 1, purpose: .augmentation, epoch: 0, index: sample) : nil
                        try renderer.render(sample: sample, random: random, scratch: scratch,
                                            destination: destination, channelStride: outputSize * outputSize)
                    }
                }
                renderers.append(.init(augmented: augmented, reducesInDCTDomain: reduces,
                                       imagesPerCPUSecond: Double(shards.count) / elapsed))
            }
        }

        let configuration = DataConfiguration(dataset: .imagenet, root: output, validationHoldout: 0,
                                              limitTrain: nil, limitTest: nil, workers: nil)
        var streams = [JPEGPipelineBenchmarkResult.StreamRate]()
        for workers in [1, 2] {
            let data = try TrainingData(configuration: configuration, inputSize: outputSize, seed: 0, workers: workers)
            let stream = data.trainingBatches(epoch: 0, globalBatchSize: batchSize, rank: 0, worldSize: 1, firstStep: 0)
            let elapsed = try wallSeconds { while try stream.next() != nil {} }
            streams.append(.init(workers: workers, imagesPerSecond: Double(stream.sampleCount) / elapsed))
        }

        return JPEGPipelineBenchmarkResult(
            width: width, height: height, sourceImages: jpegs.count,
            averageBytes: jpegs.map(\.count).reduce(0, +) / jpegs.count,
            prepareWorkers: prepareWorkers, prepareFilesPerSecond: Double(jpegs.count) / prepareSeconds,
            shardsWritten: summaries.map(\.shardsWritten).reduce(0, +),
            storedTrainingImages: shards.count, storedValidationImages: validationShards.count,
            decodeImagesPerCPUSecond: Double(jpegs.count) / decodeSeconds, renderers: renderers,
            batchSize: batchSize, streams: streams)
    }

    /// The Fashion-MNIST loader at `root`: opening it, one training epoch of batches of
    /// `batchSize` with no consumer work, then `simulatedBatches` batches of the next epoch
    /// consumed by a trainer that spins for `computeSecondsPerBatch` on each (holding one core
    /// as compute would), measuring how long it waits for data. `trainingLimit` keeps only the
    /// first training images.
    public static func fashionMNISTLoader(root: String, batchSize: Int = 64, workers: Int = 1,
                                          computeSecondsPerBatch: Double = 0.064, simulatedBatches: Int = 150,
                                          validationHoldout: Int = 5000, trainingLimit: Int? = nil) throws -> LoaderBenchmarkResult {
        precondition(batchSize > 0 && workers > 0 && computeSecondsPerBatch >= 0 && simulatedBatches > 0)
        try requireFashionMNIST(root)
        let configuration = DataConfiguration(dataset: .fashionMNIST, root: root, validationHoldout: validationHoldout,
                                              limitTrain: trainingLimit, limitTest: nil, workers: workers)
        var opened: TrainingData?
        let openSeconds = try wallSeconds {
            opened = try TrainingData(configuration: configuration, inputSize: 32, seed: 0, workers: workers)
        }
        let data = opened!
        let stream = data.trainingBatches(epoch: 0, globalBatchSize: batchSize, rank: 0, worldSize: 1, firstStep: 0)
        let epochSeconds = try wallSeconds { while try stream.next() != nil {} }

        let simulated = data.trainingBatches(epoch: 1, globalBatchSize: batchSize, rank: 0, worldSize: 1, firstStep: 0)
        var batches = 0
        while batches < simulatedBatches, try simulated.next() != nil {
            let start = DispatchTime.now().uptimeNanoseconds
            while Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 < computeSecondsPerBatch {}
            batches += 1
        }
        return LoaderBenchmarkResult(
            imagesOpened: data.trainingIndices.count + data.validationIndices.count + data.testCount,
            openSeconds: openSeconds, batchSize: batchSize, workers: workers,
            epochImages: stream.sampleCount, epochSeconds: epochSeconds,
            computeSecondsPerBatch: computeSecondsPerBatch, simulatedBatches: batches,
            dataWaitSeconds: simulated.dataWaitSeconds, stepsPerEpoch: data.trainingStepsPerEpoch(globalBatchSize: batchSize))
    }

    /// An ImageNet-style tree `directory/{train,val}/c<label>/<sample>.JPEG` of the first
    /// `training` + `validation` images, scaled up to `width`×`height` (bilinear), tinted so
    /// that chroma is not flat, encoded by libjpeg-turbo at quality 90 with 4:2:0 subsampling.
    /// Returns the JPEG files in sample order.
    static func writeJPEGTree(_ images: PixelImages, to directory: String, training: Int, validation: Int,
                              width: Int, height: Int) throws -> [[UInt8]] {
        let resampler = BilinearResampler()
        let sampleSize = images.height * images.width
        var upscaled = [Float](repeating: 0, count: width * height)
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        var jpegs = [[UInt8]]()
        for sample in 0..<(training + validation) {
            images.pixels.withUnsafeBufferPointer { pixels in
                resampler.resample(
                    source: pixels.baseAddress! + sample * sampleSize, rowStride: images.width, channels: 1,
                    vertical: ResampleAxis(origin: 0, scale: Double(images.height) / Double(height), lower: 0,
                                           upper: images.height, outputCount: height),
                    horizontal: ResampleAxis(origin: 0, scale: Double(images.width) / Double(width), lower: 0,
                                             upper: images.width, outputCount: width),
                    flip: false, normalization: Normalization(mean: [0], standardDeviation: [1 / 255.0]),
                    destination: &upscaled, channelStride: width * height)
            }
            for pixel in 0..<width * height {
                let grey = max(0, min(255, upscaled[pixel]))
                let (y, x) = (Float(pixel / width) * 255 / Float(height), Float(pixel % width) * 255 / Float(width))
                rgb[3 * pixel] = UInt8(grey * 0.8 + x * 0.2)
                rgb[3 * pixel + 1] = UInt8(grey * 0.9 + y * 0.1)
                rgb[3 * pixel + 2] = UInt8(grey * 0.7 + (255 - x) * 0.3)
            }
            let jpeg = try JPEGEncoder.encode(pixels: rgb, width: width, height: height, channels: 3, quality: 90)
            let folder = "\(directory)/\(sample < training ? "train" : "val")/c\(images.labels[sample])"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(jpeg).write(to: URL(fileURLWithPath: "\(folder)/\(sample).JPEG"))
            jpegs.append(jpeg)
        }
        return jpegs
    }

    private static func requireFashionMNIST(_ root: String) throws {
        guard DataFile.isDirectory(root) else {
            throw DataError.missingFile(what: "Fashion-MNIST (the data benchmark's images; install Debian's dataset-fashion-mnist)",
                                        candidates: [root])
        }
    }

    static func wallSeconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }

    /// CPU time of the calling thread spent in `body`: per-core rates that other processes
    /// sharing the machine do not distort.
    static func threadCPUSeconds(_ body: () throws -> Void) rethrows -> Double {
        var start = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start)
        try body()
        var end = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end)
        return Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9
    }
}
