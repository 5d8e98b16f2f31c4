import XCTest
@testable import Model

/// `MatrixMultiply` against a double-precision triple loop, for every transposition, with the
/// product split by columns, by rows and not at all.
final class MatrixMultiplyTests: XCTestCase {
    private var savedThreads = 1

    override func setUp() {
        savedThreads = ComputeThreads.count
        ComputeThreads.set(2)
    }

    override func tearDown() {
        ComputeThreads.set(savedThreads)
    }

    private func check(rows: Int, columns: Int, inner: Int, transposeA: Bool, transposeB: Bool, beta: Float,
                       file: StaticString = #filePath, line: UInt = #line) {
        var random = KernelTestRandom(seed: UInt64(rows * 131 + columns * 7 + inner))
        let a = random.array(rows * inner), b = random.array(inner * columns)
        let start = random.array(rows * columns)
        // Stored layouts: A is [M, K] or, transposed, [K, M]; B is [K, N] or [N, K].
        let leadingA = transposeA ? rows : inner, leadingB = transposeB ? inner : columns
        func elementA(_ i: Int, _ k: Int) -> Double { Double(transposeA ? a[k * rows + i] : a[i * inner + k]) }
        func elementB(_ k: Int, _ j: Int) -> Double { Double(transposeB ? b[j * inner + k] : b[k * columns + j]) }
        var c = start
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    MatrixMultiply.multiply(transposeA: transposeA, transposeB: transposeB,
                                            rows: rows, columns: columns, inner: inner, alpha: 0.5,
                                            a: a.baseAddress!, leadingA: leadingA, b: b.baseAddress!, leadingB: leadingB,
                                            beta: beta, c: c.baseAddress!, leadingC: columns)
                }
            }
        }
        var worst = 0.0
        for i in 0..<rows {
            for j in 0..<columns {
                var sum = 0.0
                for k in 0..<inner { sum += elementA(i, k) * elementB(k, j) }
                let expected = 0.5 * sum + Double(beta) * Double(start[i * columns + j])
                worst = max(worst, abs(Double(c[i * columns + j]) - expected) / max(1, abs(expected)))
            }
        }
        XCTAssertLessThan(worst, 1e-5, "M \(rows) N \(columns) K \(inner) transposeA \(transposeA) transposeB \(transposeB)",
                          file: file, line: line)
    }

    func testEveryTranspositionAndSplit() {
        // Wide N: split by columns, with a ragged last block. Narrow N, tall M: split by rows.
        // Small: one call.
        let shapes = [(rows: 12, columns: 1000, inner: 60), (rows: 75, columns: 40, inner: 300), (rows: 5, columns: 7, inner: 3)]
        for shape in shapes {
            XCTAssertEqual(shape.rows * shape.columns * shape.inner >= MatrixMultiply.minimumParallelMultiplyAccumulates,
                           shape.rows > 5)
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for beta: Float in [0, 1] {
                        check(rows: shape.rows, columns: shape.columns, inner: shape.inner,
                              transposeA: transposeA, transposeB: transposeB, beta: beta)
                    }
                }
            }
        }
    }
}
