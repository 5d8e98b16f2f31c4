/// The SIMD vector the element-wise Swift kernels use, with unaligned loads and stores through
/// Float pointers. Eight lanes: two SSE registers of the baseline x86-64 build (the compute-bound
/// kernels are C, per instruction set: `ComputeKernels`).
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
