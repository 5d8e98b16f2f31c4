import ArgumentParser
import Benchmarks
import Communication
import DataPipeline
import DistTrain
import Foundation
import Model

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training and evaluation throughput (images/s) of the run's network, with a per-operator breakdown.",
        discussion: """
            Times phase-I and phase-II training steps and evaluation passes through every exit on \
            random images at the per-rank batch size, each with its heap allocations per step. With \
            --json, the last line is one JSON object: trainImagesPerSecond, phase2ImagesPerSecond, \
            evalImagesPerSecond, forwardMultiplyAddsPerImage, achievedGFLOPs (phase I, 2 FLOP per \
            multiply-add, backward = 2 forwards), sgemmGFLOPs (measured in the same run), \
            peakResidentBytes, allocationsPerStep, phase2AllocationsPerStep, kernelPath, \
            configuration, batchSize, threads, imageShards. \
            With --data, measures only the data pipeline instead: the Fashion-MNIST loader (batches of \
            --batch-size, alone and behind a simulated trainer at 1,000 images/s) and ImageNet-style JPEG \
            decoding (Fashion-MNIST images scaled up to 256x256 and 500x375, packed by `prepare` into \
            shards in a temporary directory that is removed afterwards). With --all-reduce, run under \
            `mpirun -n P`: times the gradient all-reduce on P ranks at sizes from 256 floats up to the \
            network's phase-I parameter count (the median of --steps calls per size), as the trainer \
            issues it (non-blocking and polled unless distributed.stallTimeout is 0). With --overlap, \
            also under mpirun: times phase-I steps of --batch-size images per rank (default: \
            phase1.batchSize split over the ranks) with no all-reduce, with one all-reduce after the \
            backward pass, and with buckets of distributed.bucketBytes all-reduced during it, round-robin, \
            and prints the fraction of the all-reduce time the overlap hides.
            """
    )

    @Argument(help: ArgumentHelp("The JSON run file whose model and batch size are measured.", valueName: "config"))
    var configurationPath: String

    @Option(help: "Timed training steps per phase (after 2 warm-up steps).")
    var steps = 20

    @Option(help: "Per-rank batch size to measure (default: phase1.batchSize).")
    var batchSize: Int?

    @Option(help: "Compute threads: one image shard each when the batch gives each 16 images, else they split each operator (default: threadsPerRank, else all cores).")
    var threads: Int?

    @Flag(help: "Also time each operator on MSDNet-typical shapes (GFLOP/s).")
    var kernels = false

    @Flag(help: "End with one line of JSON (the figures without the per-operator breakdown).")
    var json = false

    @Flag(help: "Measure the data pipeline instead of the network: Fashion-MNIST loader and ImageNet-style JPEG decoding, on the Fashion-MNIST in the run file's data.root (data.dataset must be fashion-mnist).")
    var data = false

    @Flag(help: "Time the gradient all-reduce across the ranks of this mpirun job instead of the network.")
    var allReduce = false

    @Flag(help: "Time phase-I steps across the ranks of this mpirun job with the gradient all-reduce after the backward pass and overlapped with it.")
    var overlap = false

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps).") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize).") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads).") }
        if data && kernels { throw ValidationError("--data measures only the data pipeline; drop --kernels or --data.") }
        if allReduce && (data || kernels) { throw ValidationError("--all-reduce measures only the all-reduce; drop --data and --kernels.") }
        if overlap && (data || kernels || allReduce) {
            throw ValidationError("--overlap measures only the overlap; drop --data, --kernels and --all-reduce.")
        }
        if json && (data || allReduce || overlap) { throw ValidationError("--json reports the network's figures; drop --data, --all-reduce and --overlap.") }
    }

    func run() throws {
        if allReduce { return try runAllReduceBenchmark() }
        if overlap { return try runOverlapBenchmark() }
        let configuration = try RunFile.load(configurationPath, worldSize: 1, requireDataRoot: false)
        ComputeThreads.set(threads ?? configuration.threadsPerRank ?? ProcessInfo.processInfo.activeProcessorCount)
        let batch = batchSize ?? configuration.phase1.batchSize
        if data { return try runDataBenchmark(fashionMNIST: configuration.data, batch: batch) }
        do {
            try configuration.validateMemory(batchSize: batch, option: "--batch-size", file: configurationPath)
        } catch let error as ConfigurationError {
            // One line, as for a rejected run file, but the status of a bad command line.
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode.validationFailure
        }
        let imageShards = ImageShards.count(threads: ComputeThreads.count, maximumBatchSize: batch)
        print("\(configuration.name): batch \(batch), \(ComputeThreads.count) thread(s), \(imageShards) image shard(s), "
              + "\(KernelPath.selected.rawValue) kernels, \(steps) steps per phase")
        var results: [TrainingBenchmark.Phase: TrainingBenchmarkResult] = [:]
        for phase in [TrainingBenchmark.Phase.one, .two, .evaluation] {
            let result = try TrainingBenchmark.run(configuration: configuration.model, batchSize: batch, steps: steps,
                                                   phase: phase, gradientEquilibrium: configuration.gradientEquilibrium,
                                                   seed: configuration.seed, breakdown: !json)
            let title = [TrainingBenchmark.Phase.one: "phase I", .two: "phase II", .evaluation: "evaluation, every exit"][phase]!
            print("\(title): " + String(format: "%.1f images/s", result.imagesPerSecond))
            print(result)
            results[phase] = result
        }
        if kernels {
            for measurement in KernelBenchmark.run(batch: batch) { print(measurement) }
        }
        if json {
            let sgemm = KernelBenchmark.sgemm()
            let costs = CostCounter.exitCosts(try MSDNetArchitecture(configuration.model))
            let report = BenchmarkReport(configuration: configuration.name, batchSize: batch, threads: ComputeThreads.count,
                                         imageShards: imageShards, kernelPath: KernelPath.selected.rawValue, phase1: results[.one]!, phase2: results[.two]!,
                                         evaluation: results[.evaluation]!, forwardMultiplyAddsPerImage: costs.last?.multiplyAdds ?? 0,
                                         sgemmGFLOPs: sgemm.gigaflopsPerSecond ?? 0,
                                         peakResidentBytes: ProcessMemory.peakResidentBytes() ?? 0)
            print(report.json)
        }
    }

    /// All-reduce times on this job's ranks, printed by rank 0.
    private func runAllReduceBenchmark() throws {
        let communicator = try Communicator.world()
        // Only the model matters here, so the global batch need not split across these ranks.
        let configuration = try RunFile.load(configurationPath, worldSize: 1, requireDataRoot: false)
        try communicator.watchForStalls(timeout: configuration.distributed.stallTimeout)
        let gradient = CostCounter.exitCosts(try MSDNetArchitecture(configuration.model)).last?.parameters ?? 0
        let measurements = try AllReduceBenchmark.run(communicator: communicator,
                                                      sizes: AllReduceBenchmark.sizes(upTo: max(gradient, 256)), repetitions: steps)
        guard communicator.isRoot else { return }
        let path = communicator.stallWatch == nil ? "blocking" : "non-blocking, polled by the stall watch"
        print("\(configuration.name): phase-I gradient \(gradient) floats, \(communicator.size) rank(s), \(path), median of \(steps) calls")
        for measurement in measurements { print(measurement) }
    }

    /// Step times with the all-reduce after and during the backward pass, printed by rank 0.
    private func runOverlapBenchmark() throws {
        let communicator = try Communicator.world()
        // One rank has no all-reduce to hide: a figure from it would be made up.
        guard communicator.size > 1 else {
            throw ValidationError("--overlap times the all-reduce across ranks; run it under mpirun -n P with P >= 2.")
        }
        let configuration = try RunFile.load(configurationPath, worldSize: 1, requireDataRoot: false)
        try communicator.watchForStalls(timeout: configuration.distributed.stallTimeout)
        ComputeThreads.set(threads ?? configuration.resolvedThreadsPerRank)
        let bucketBytes = configuration.distributed.bucketBytes > 0
            ? configuration.distributed.bucketBytes : DistributedConfiguration().bucketBytes
        let result = try AllReduceOverlapBenchmark.run(
            communicator: communicator, configuration: configuration.model,
            batchSize: batchSize ?? max(1, configuration.phase1.batchSize / communicator.size), steps: steps,
            bucketBytes: bucketBytes, gradientEquilibrium: configuration.gradientEquilibrium, seed: configuration.seed)
        guard communicator.isRoot else { return }
        print("\(configuration.name): \(ComputeThreads.count) thread(s) per rank")
        print(result)
    }

    /// The data pipeline figures; a failure (Fashion-MNIST missing, say) is one line on standard error.
    private func runDataBenchmark(fashionMNIST data: DataConfiguration, batch: Int) throws {
        try failingWithOneLine {
            guard data.dataset == .fashionMNIST else {
                throw ConfigurationError.invalidValue(
                    file: configurationPath, keyPath: "data.dataset",
                    expected: "\"fashion-mnist\" (bench --data measures on Fashion-MNIST images)", got: "\"\(data.dataset.rawValue)\"")
            }
            // A trainer at 1,000 images/s, faster than this project's CPU training, spends 1 ms per image.
            print(try DataBenchmark.fashionMNISTLoader(root: data.root, batchSize: batch,
                                                       computeSecondsPerBatch: 0.001 * Double(batch)))
            // 256x256 as ImageNet pipelines are often quoted; 500x375 is ImageNet's most common size, where the DCT reduction matters.
            for (width, height) in [(256, 256), (500, 375)] {
                print(try DataBenchmark.imageNetJPEG(fashionMNISTRoot: data.root, width: width, height: height, batchSize: batch))
            }
        }
    }
}
