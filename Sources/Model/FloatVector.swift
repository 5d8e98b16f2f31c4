/// The SIMD vector the hand-vectorised kernels use, with unaligned loads and stores through
/// Float pointers. Eight lanes: one AVX2 register (the release build targets Haswell-class
/// x86-64, see Package.swift).
typealias FloatVector = SIMD8<Float>

extension SIMD8 where Scalar == Float {
    /// `self += a * b`, as one fused multiply-add instruction where the build enables FMA
    /// (`FUSED_MULTIPLY_ADD`, set with `-target-cpu` in the release flags). Without the
    /// instruction the fused form would be a library call per lane, so it stays two operations.
    @inline(__always)
    mutating func multiplyAdd(_ a: SIMD8<Float>, _ b: SIMD8<Float>) {
        #if FUSED_MULTIPLY_ADD
        addProduct(a, b)
        #else
        self += a * b
        #endif
    }
}

extension UnsafePointer where Pointee == Float {
    @inline(__always)
    func loadVector(at index: Int = 0) -> FloatVector {
        UnsafeRawPointer(self + index).loadUnaligned(as: FloatVector.self)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always)
    func loadVector(at index: Int = 0) -> FloatVector {
        UnsafeRawPointer(self + index).loadUnaligned(as: FloatVector.self)
    }

    @inline(__always)
    func storeVector(_ value: FloatVector, at index: Int = 0) {
        UnsafeMutableRawPointer(self + index).storeBytes(of: value, as: FloatVector.self)
    }
}
