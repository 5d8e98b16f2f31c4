import ArgumentParser
import Foundation
import DistTrain
import Model

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training throughput (images/s) of the run's network, with a per-operator breakdown."
    )

    @Argument(help: ArgumentHelp("The JSON run file whose model and batch size are measured.", valueName: "config"))
    var configurationPath: String

    @Option(help: "Timed training steps per phase (after 2 warm-up steps).")
    var steps = 20

    @Option(help: "Per-rank batch size to measure (default: phase1.batchSize).")
    var batchSize: Int?

    @Option(help: "Threads for OpenBLAS and element-wise loops (default: threadsPerRank, else all cores).")
    var threads: Int?

    @Flag(help: "Also time each operator on MSDNet-typical shapes (GFLOP/s).")
    var kernels = false

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps).") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize).") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads).") }
    }

    func run() throws {
        let configuration = try RunFile.load(configurationPath, worldSize: 1, requireDataRoot: false)
        ComputeThreads.set(threads ?? configuration.threadsPerRank ?? ProcessInfo.processInfo.activeProcessorCount)
        let batch = batchSize ?? configuration.phase1.batchSize
        print("\(configuration.name): batch \(batch), \(ComputeThreads.count) thread(s), \(steps) steps per phase")
        for phase in [TrainingBenchmark.Phase.one, .two] {
            let result = try TrainingBenchmark.run(configuration: configuration.model, batchSize: batch, steps: steps,
                                                   phase: phase, gradientEquilibrium: configuration.gradientEquilibrium,
                                                   seed: configuration.seed)
            print("phase \(phase == .one ? "I" : "II"): " + String(format: "%.1f images/s", result.imagesPerSecond))
            print(result)
        }
        if kernels {
            for measurement in KernelBenchmark.run(batch: batch) { print(measurement) }
        }
    }
}
