import CBLAS
import Foundation
import Synchronization

/// The compute threads of one process: one pool (`WorkerPool`) that runs `MSDNet`'s image shards
/// (`ImageShards`), or, for a batch too small to shard, the SGEMMs of `MatrixMultiply` and the
/// element-wise and direct-convolution kernels split across the threads, with OpenBLAS itself kept
/// single-threaded (see `MatrixMultiply` for why).
///
/// The count is process-wide, like OpenBLAS's own setting that it replaces: the trainer and the
/// benchmark set it once at start from the run's configuration, before any kernel runs.
public enum ComputeThreads {
    /// Element-wise loops shorter than this run on the calling thread: waking a second thread
    /// costs more than it saves.
    public static let minimumParallelCount = 1 << 16

    /// Until `set` is called, every core; first use also makes OpenBLAS single-threaded, before
    /// any SGEMM can run.
    private static let configuredCount = Atomic<Int>(initialCount())

    /// The workers, started as the count first asks for them.
    private static let pool = WorkerPool()

    private static func initialCount() -> Int {
        openblas_set_num_threads(1)
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Sets the number of compute threads (at least 1).
    public static func set(_ count: Int) {
        configuredCount.store(max(1, count), ordering: .relaxed)
    }

    /// The number of threads currently in use.
    public static var count: Int {
        configuredCount.load(ordering: .relaxed)
    }

    /// The threads a kernel may split its work across now: 1 inside a job of the pool (each image
    /// shard of `MSDNet` already runs on its own thread), else `count`.
    static var available: Int {
        pool.isRunning ? 1 : count
    }

    /// Runs `body(part)` for every `part` in `0..<parts` at once, one part per thread, the caller
    /// taking part 0: `MSDNet`'s image shards, which wait for each other (so never from inside
    /// another parallel job; see `WorkerPool.runTogether`).
    static func runParts(_ parts: Int, _ body: (Int) -> Void) {
        pool.runTogether(parts, body)
    }

    /// Runs `body` at once on `threads` contiguous chunks of `0..<total`, each a multiple of
    /// `alignment` long but the last, the caller taking one share.
    @inline(__always)
    static func forEachChunk(of total: Int, threads: Int, alignment: Int, _ body: (Range<Int>) -> Void) {
        let chunk = ((total + threads - 1) / threads + alignment - 1) / alignment * alignment
        pool.run(threads) { thread in
            let start = min(total, thread * chunk)
            let end = min(total, start + chunk)
            if start < end { body(start..<end) }
        }
    }

    /// Runs `body` over `0..<total` split into contiguous chunks, one per compute thread, when
    /// `total * costPerItem` is at least `minimumParallelCount`; otherwise on the calling thread.
    /// Element-wise loops (`costPerItem` 1) of a `total` that is a multiple of 16 get chunks that
    /// are multiples of 16, so SIMD loops stay aligned to whole vectors; loops over rows or planes
    /// get equal chunks (rounding 12 channels up to 16 would give one thread all of them).
    @inline(__always)
    public static func parallelFor(_ total: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let threads = available
        if threads == 1 || total * costPerItem < minimumParallelCount || total < 2 {
            body(0..<total)
            return
        }
        forEachChunk(of: total, threads: threads, alignment: costPerItem == 1 ? 16 : 1, body)
    }

    /// Runs `body(chunk, range)` over `0..<total` split into at most `maximumChunks` contiguous
    /// chunks (one per compute thread, fewer when `total * costPerItem` is small), so that each
    /// chunk may use its own scratch slot `chunk` in a workspace sized for `maximumChunks`.
    static func parallelChunks(_ total: Int, maximumChunks: Int, costPerItem: Int,
                               _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        let chunks = total * costPerItem < minimumParallelCount ? 1 : max(1, min(available, maximumChunks, total))
        if chunks == 1 {
            body(0, 0..<total)
            return
        }
        let size = (total + chunks - 1) / chunks
        pool.run(chunks) { chunk in
            let start = min(total, chunk * size)
            let end = min(total, start + size)
            if start < end { body(chunk, start..<end) }
        }
    }
}
