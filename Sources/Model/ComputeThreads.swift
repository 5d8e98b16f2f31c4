import CBLAS
import Dispatch

/// The compute threads of one process: OpenBLAS's thread pool for SGEMM, and a parallel-for for
/// the element-wise kernels.
///
/// The element-wise kernels run between SGEMM calls, never during one, so both kinds of work use
/// the same cores without oversubscribing them. The thread count is OpenBLAS's own setting, so
/// there is exactly one place that holds it.
public enum ComputeThreads {
    /// Element-wise loops shorter than this run on the calling thread: waking a second thread
    /// costs more than it saves.
    public static let minimumParallelCount = 1 << 16

    /// Sets the number of threads OpenBLAS and the element-wise kernels use (at least 1).
    public static func set(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The number of threads currently in use.
    public static var count: Int {
        Int(max(1, openblas_get_num_threads()))
    }

    /// Runs `body` over `0..<total` split into contiguous chunks, one per compute thread, when
    /// `total * costPerItem` is at least `minimumParallelCount`; otherwise on the calling thread.
    /// Element-wise loops (`costPerItem` 1) of a `total` that is a multiple of 16 get chunks that
    /// are multiples of 16, so SIMD loops stay aligned to whole vectors; loops over rows or planes
    /// get equal chunks (rounding 12 channels up to 16 would give one thread all of them).
    @inline(__always)
    public static func parallelFor(_ total: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let threads = count
        if threads == 1 || total * costPerItem < minimumParallelCount || total < 2 {
            body(0..<total)
            return
        }
        let chunk = costPerItem == 1 ? ((total + threads - 1) / threads + 15) & ~15 : (total + threads - 1) / threads
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            let start = min(total, thread * chunk)
            let end = min(total, start + chunk)
            if start < end { body(start..<end) }
        }
    }

    /// Runs `body(chunk, range)` over `0..<total` split into at most `maximumChunks` contiguous
    /// chunks (one per compute thread, fewer when `total * costPerItem` is small), so that each
    /// chunk may use its own scratch slot `chunk` in a workspace sized for `maximumChunks`.
    static func parallelChunks(_ total: Int, maximumChunks: Int, costPerItem: Int,
                               _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        let chunks = total * costPerItem < minimumParallelCount ? 1 : max(1, min(count, maximumChunks, total))
        if chunks == 1 {
            body(0, 0..<total)
            return
        }
        let size = (total + chunks - 1) / chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = min(total, chunk * size)
            let end = min(total, start + size)
            if start < end { body(chunk, start..<end) }
        }
    }
}
