import Foundation

/// What `disttrain bench CONFIG --json` prints as one JSON object on its last line.
public struct BenchmarkReport: Encodable, Sendable {
    /// The run file's `name`.
    public var configuration: String
    public var batchSize: Int
    public var threads: Int
    /// How many image shards the batch is split into (`ImageShards`; 1: each operator is split
    /// across the threads).
    public var imageShards: Int
    /// The `KernelPath` in use: "portable", "avx2" or "avx512".
    public var kernelPath: String
    /// Phase I (MSDNet + GE) training steps.
    public var trainImagesPerSecond: Double
    /// Phase II (ISC + OFA heads on the frozen backbone) training steps.
    public var phase2ImagesPerSecond: Double
    /// Inference through every exit in evaluation mode, as `eval` runs it.
    public var evalImagesPerSecond: Double
    /// Forward multiply-adds of one image through the whole network, every exit (the reference
    /// counter's convention, as `info` prints them).
    public var forwardMultiplyAddsPerImage: Int
    /// Phase-I arithmetic rate: 2 FLOP per multiply-add, forward plus backward counted as three
    /// forwards.
    public var achievedGFLOPs: Double
    /// A 1024^3 SGEMM through the same compute threads, measured in the same run: the bound.
    public var sgemmGFLOPs: Double
    /// The process's peak resident memory (`VmHWM`), the largest of the phases.
    public var peakResidentBytes: Int
    /// Heap allocations per steady-state phase-I training step.
    public var allocationsPerStep: Double
    /// Heap allocations per steady-state phase-II training step.
    public var phase2AllocationsPerStep: Double

    public init(configuration: String, batchSize: Int, threads: Int, imageShards: Int, kernelPath: String, phase1: TrainingBenchmarkResult,
                phase2: TrainingBenchmarkResult, evaluation: TrainingBenchmarkResult, forwardMultiplyAddsPerImage: Int,
                sgemmGFLOPs: Double, peakResidentBytes: Int) {
        self.configuration = configuration
        self.batchSize = batchSize
        self.threads = threads
        self.imageShards = imageShards
        self.kernelPath = kernelPath
        trainImagesPerSecond = phase1.imagesPerSecond
        phase2ImagesPerSecond = phase2.imagesPerSecond
        evalImagesPerSecond = evaluation.imagesPerSecond
        self.forwardMultiplyAddsPerImage = forwardMultiplyAddsPerImage
        achievedGFLOPs = phase1.imagesPerSecond * Double(forwardMultiplyAddsPerImage) * 2 * 3 / 1e9
        self.sgemmGFLOPs = sgemmGFLOPs
        self.peakResidentBytes = peakResidentBytes
        allocationsPerStep = phase1.allocationsPerStep
        phase2AllocationsPerStep = phase2.allocationsPerStep
    }

    /// One line of JSON, keys sorted.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Every field is a plain number or string: encoding cannot fail.
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}
