import Foundation
import Communication
import DistTrain
import Model

/// Phase-I training steps on the ranks of an `mpirun` job (synthetic images, each rank its own),
/// timed three ways, round-robin step by step so that a change of load hits all three alike:
///
/// - compute: forward and backward only, the gradients not averaged;
/// - after backward: then one all-reduce of the whole gradient (`distributed.bucketBytes` 0);
/// - overlapped: buckets all-reduced while the backward pass runs (`GradientBuckets`).
///
/// A step counts as long as its slowest rank took (a barrier starts every step on all ranks
/// together); each figure is the median over the steps. The all-reduce costs a step
/// `after - compute`; the overlap hides the fraction `(after - overlapped) / (after - compute)`.
public enum AllReduceOverlapBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var ranks: Int
        public var batchSize: Int
        public var steps: Int
        public var gradientFloats: Int
        public var bucketBytes: Int
        public var buckets: Int
        /// Buckets started before the backward pass ended, per step.
        public var bucketsStartedDuringBackward: Double
        /// Median seconds per step of each way.
        public var computeSeconds: Double
        public var afterBackwardSeconds: Double
        public var overlappedSeconds: Double

        /// The all-reduce's cost to a step when it follows the backward pass.
        public var allReduceSeconds: Double { afterBackwardSeconds - computeSeconds }
        /// The part of that cost the overlap removes (may fall outside [0, 1] when noise dominates).
        public var hiddenFraction: Double {
            allReduceSeconds > 0 ? (afterBackwardSeconds - overlappedSeconds) / allReduceSeconds : 0
        }

        public var description: String {
            [String(format: "%d rank(s), batch %d per rank, %d floats of gradient, %d buckets of %d bytes (%.1f started during the backward pass), median of %d steps:",
                    ranks, batchSize, gradientFloats, buckets, bucketBytes, bucketsStartedDuringBackward, steps),
             String(format: "  compute only (no all-reduce)        %9.1f ms/step", 1e3 * computeSeconds),
             String(format: "  all-reduce after the backward pass  %9.1f ms/step (all-reduce %+.1f ms)", 1e3 * afterBackwardSeconds,
                    1e3 * allReduceSeconds),
             String(format: "  buckets during the backward pass    %9.1f ms/step (%+.1f ms)", 1e3 * overlappedSeconds,
                    1e3 * (overlappedSeconds - computeSeconds)),
             String(format: "  all-reduce time hidden: %.0f%%", 100 * hiddenFraction)].joined(separator: "\n")
        }
    }

    /// Every rank calls it with the same arguments; every rank gets the same figures.
    public static func run(communicator: Communicator, configuration: MSDNetConfiguration, batchSize: Int, steps: Int,
                           bucketBytes: Int, gradientEquilibrium: Bool = true, seed: UInt64 = 0) throws -> Result {
        precondition(batchSize >= 1 && steps >= 1 && bucketBytes >= 1, "batch size, steps and bucket size must be positive")
        let network = try MSDNet(configuration: configuration, gradientEquilibrium: gradientEquilibrium,
                                 maximumBatchSize: batchSize, seed: seed)
        let arena = network.parameters
        let buckets = GradientBuckets(communicator: communicator, arena: arena, bucketBytes: bucketBytes)
        var generator = SeededGenerator(seed: seed &+ 2 &+ UInt64(communicator.rank))
        let pixels = configuration.inputChannels * batchSize * configuration.inputSize * configuration.inputSize
        let images = (0..<pixels).map { _ in Float(generator.normal()) }
        let labels = (0..<batchSize).map { _ in Int32(generator.next() % UInt64(configuration.classes)) }

        enum Way: CaseIterable { case compute, afterBackward, overlapped }
        var seconds: [Way: [Double]] = [:]
        try images.withUnsafeBufferPointer { images in
            try labels.withUnsafeBufferPointer { labels in
                // One untimed warm-up step of each way.
                for step in 0...steps {
                    for way in Way.allCases {
                        network.gradientReadyObserver = way == .overlapped ? buckets : nil
                        try communicator.barrier()
                        let started = DispatchTime.now().uptimeNanoseconds
                        _ = network.trainingStep(images: images.baseAddress!, labels: labels.baseAddress!, count: batchSize)
                        switch way {
                        case .compute: break
                        case .afterBackward:
                            try communicator.allReduceAverage(UnsafeMutableBufferPointer(start: arena.gradients, count: arena.count))
                        case .overlapped: try buckets.finishAveraging()
                        }
                        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                        let slowest = try communicator.allReduce(elapsed, .maximum)
                        if step > 0 { seconds[way, default: []].append(slowest) }
                    }
                }
            }
        }
        network.gradientReadyObserver = nil
        func median(_ way: Way) -> Double {
            let sorted = (seconds[way] ?? [0]).sorted()
            return sorted[sorted.count / 2]
        }
        return Result(ranks: communicator.size, batchSize: batchSize, steps: steps, gradientFloats: arena.count,
                      bucketBytes: bucketBytes, buckets: buckets.ranges.count,
                      bucketsStartedDuringBackward: Double(buckets.bucketsStartedDuringBackward) / Double(steps + 1),
                      computeSeconds: median(.compute), afterBackwardSeconds: median(.afterBackward),
                      overlappedSeconds: median(.overlapped))
    }
}
