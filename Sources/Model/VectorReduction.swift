/// Sums over contiguous Float rows, accurate for rows of hundreds of thousands of elements:
/// SIMD lanes accumulate in Float over short chunks and chunks are added in Double, so the
/// rounding error does not grow with the row length.
enum VectorReduction {
    /// Elements per Float partial sum before it is folded into the Double total.
    static let chunk = 512

    /// `sum(x[i])`.
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0
        var start = 0
        while start < count {
            let end = min(count, start + chunk)
            var lanes = SIMD16<Float>()
            var i = start
            while i + 16 <= end {
                lanes += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
                i += 16
            }
            var partial = lanes.sum()
            while i < end { partial += x[i]; i += 1 }
            total += Double(partial)
            start = end
        }
        return total
    }

    /// `sum(x[i] * y[i])`.
    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0
        var start = 0
        while start < count {
            let end = min(count, start + chunk)
            var lanes = SIMD16<Float>()
            var i = start
            while i + 16 <= end {
                lanes += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
                    * UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
                i += 16
            }
            var partial = lanes.sum()
            while i < end { partial += x[i] * y[i]; i += 1 }
            total += Double(partial)
            start = end
        }
        return total
    }

    /// `sum((x[i] - center)^2)`.
    @inline(__always)
    static func squaredDeviations(_ x: UnsafePointer<Float>, count: Int, center: Float) -> Double {
        var total = 0.0
        var start = 0
        let centerLanes = SIMD16<Float>(repeating: center)
        while start < count {
            let end = min(count, start + chunk)
            var lanes = SIMD16<Float>()
            var i = start
            while i + 16 <= end {
                let d = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - centerLanes
                lanes += d * d
                i += 16
            }
            var partial = lanes.sum()
            while i < end { let d = x[i] - center; partial += d * d; i += 1 }
            total += Double(partial)
            start = end
        }
        return total
    }
}
