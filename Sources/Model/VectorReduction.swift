/// Sums over contiguous Float rows, accumulated in Double as PyTorch's CPU kernels accumulate
/// float reductions (`at::acc_type<float, false>` is `double`; BatchNorm's rows have their own
/// kernels in `CKernels`, summed the same way): bias gradients, ISC's products and per-channel
/// sums of 100k-800k values (an ImageNet batch at 56x56) keep their relative error near Double's, so a sum that cancels to almost nothing (the
/// gradient of a bias feeding a BatchNorm, zero in exact arithmetic) is not buried under Float
/// rounding of its large terms. Each Float term converts to Double exactly, and so does each
/// product of two Floats (48 significant bits), so only the additions round.
enum VectorReduction {
    /// Double lanes per accumulator (one AVX-512 register, two AVX2 ones); two accumulators hide the add latency.
    typealias Lanes = SIMD8<Double>
    static let width = Lanes.scalarCount

    @inline(__always)
    static func load(_ x: UnsafePointer<Float>, _ i: Int) -> Lanes {
        Lanes(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
    }

    /// `sum(x[i])`.
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var even = Lanes(), odd = Lanes()
        var i = 0
        while i + 2 * width <= count {
            even += load(x, i)
            odd += load(x, i + width)
            i += 2 * width
        }
        var total = (even + odd).sum()
        while i < count { total += Double(x[i]); i += 1 }
        return total
    }

    /// `sum(x[i] * y[i])`.
    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Double {
        var even = Lanes(), odd = Lanes()
        var i = 0
        while i + 2 * width <= count {
            even += load(x, i) * load(y, i)
            odd += load(x, i + width) * load(y, i + width)
            i += 2 * width
        }
        var total = (even + odd).sum()
        while i < count { total += Double(x[i]) * Double(y[i]); i += 1 }
        return total
    }
}
