/// The SIMD vector the hand-vectorised kernels use, with unaligned loads and stores through
/// Float pointers. Eight lanes: without `-target-cpu` (SSE registers) four accumulators of 16
/// lanes would spill, and with AVX2 eight lanes measured only slightly slower (KernelBenchmark).
typealias FloatVector = SIMD8<Float>

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
