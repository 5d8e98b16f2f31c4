import Communication
import Foundation

/// Times the gradient all-reduce (`Communicator.allReduceAverage` of Float buffers) at several
/// sizes, for fitting the ring all-reduce cost model
///
///     t(p, S) = 2 (p - 1) latency + 2 (p - 1) / p * S / bandwidth
///
/// (S bytes per rank, p ranks). Each call starts on every rank together (a barrier before it) and
/// counts as long as its slowest rank took; a size's figure is the median over the repetitions,
/// after one untimed warm-up.
public enum AllReduceBenchmark {
    public struct Measurement: Sendable, CustomStringConvertible {
        public var elements: Int
        public var ranks: Int
        /// Median seconds of one all-reduce.
        public var seconds: Double

        public var bytes: Int { elements * MemoryLayout<Float>.size }

        /// What each rank sends and receives per second in a ring, 2 (p - 1) / p * S / t.
        public var busBytesPerSecond: Double {
            2 * Double(ranks - 1) / Double(ranks) * Double(bytes) / max(seconds, 1e-12)
        }

        public var description: String {
            String(format: "all-reduce %11d floats (%8.3f MB) on %d ranks: %10.3f ms, bus %7.3f GB/s",
                   elements, Double(bytes) / 1e6, ranks, seconds * 1e3, busBytesPerSecond / 1e9)
        }
    }

    /// Sizes from 256 floats up to `largest`, by factors of 4, and `largest` itself.
    public static func sizes(upTo largest: Int) -> [Int] {
        var sizes: [Int] = []
        var size = 256
        while size < largest {
            sizes.append(size)
            size *= 4
        }
        return sizes + [largest]
    }

    /// Every rank calls it with the same arguments; every rank gets the same figures.
    public static func run(communicator: Communicator, sizes: [Int], repetitions: Int) throws -> [Measurement] {
        try sizes.map { elements in
            var buffer = [Float](repeating: 1, count: elements)
            var times: [Double] = []
            for repetition in 0...repetitions {
                try communicator.barrier()
                let started = Date()
                try buffer.withUnsafeMutableBufferPointer { try communicator.allReduceAverage($0) }
                let slowest = try communicator.allReduce(Date().timeIntervalSince(started), .maximum)
                if repetition > 0 { times.append(slowest) }
            }
            times.sort()
            return Measurement(elements: elements, ranks: communicator.size, seconds: times[times.count / 2])
        }
    }
}
