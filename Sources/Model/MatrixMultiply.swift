import CBLAS

/// Row-major SGEMM, `C = alpha * op(A) x op(B) + beta * C` with `op(A)` `[M, K]`, `op(B)` `[K, N]`,
/// on OpenBLAS kept single-threaded and split here across the compute threads.
///
/// Why not OpenBLAS's own threads: between two SGEMM calls its idle workers spin on
/// `sched_yield` for about 0.1 s, so while the element-wise and direct-convolution kernels run on
/// the compute threads a third thread competed for the two cores (measured: a fifth of all CPU
/// time of a training step, 15-20% of phase-I images/s on two cores). One pool for all work ends
/// that. Each thread computes its own block of `C` — columns when `N` is wide, else rows — and packs
/// only the operand slice that block needs, plus the whole (small) other operand.
public enum MatrixMultiply {
    /// Products with fewer multiply-accumulates than this run on the calling thread: waking a
    /// second thread costs more than it saves.
    static let minimumParallelMultiplyAccumulates = 1 << 19
    /// A thread's block of columns is a multiple of this (whole SIMD panels of OpenBLAS's kernel).
    static let columnAlignment = 16

    public static func multiply(transposeA: Bool, transposeB: Bool, rows: Int, columns: Int, inner: Int,
                         alpha: Float = 1, a: UnsafePointer<Float>, leadingA: Int,
                         b: UnsafePointer<Float>, leadingB: Int,
                         beta: Float, c: UnsafeMutablePointer<Float>, leadingC: Int) {
        func block(rows rowRange: Range<Int>, columns columnRange: Range<Int>) {
            let blockA = transposeA ? a + rowRange.lowerBound : a + rowRange.lowerBound * leadingA
            let blockB = transposeB ? b + columnRange.lowerBound * leadingB : b + columnRange.lowerBound
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(rowRange.count), Int32(columnRange.count), Int32(inner),
                        alpha, blockA, Int32(leadingA), blockB, Int32(leadingB),
                        beta, c + rowRange.lowerBound * leadingC + columnRange.lowerBound, Int32(leadingC))
        }
        let threads = ComputeThreads.available
        guard threads > 1, rows * columns * inner >= minimumParallelMultiplyAccumulates else {
            block(rows: 0..<rows, columns: 0..<columns)
            return
        }
        if columns >= threads * 4 * columnAlignment {
            ComputeThreads.forEachChunk(of: columns, threads: threads, alignment: columnAlignment) {
                block(rows: 0..<rows, columns: $0)
            }
        } else if rows >= threads * 8 {
            ComputeThreads.forEachChunk(of: rows, threads: threads, alignment: 1) { block(rows: $0, columns: 0..<columns) }
        } else {
            block(rows: 0..<rows, columns: 0..<columns)
        }
    }
}
