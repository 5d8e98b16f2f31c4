/// Gradient Equilibrium's gradient rescaling operator `R(x; w)` (Li et al., "Improved Techniques
/// for Training Adaptive Deep Networks", ICCV 2019, Sec. 3.1): the identity in the forward pass,
/// `R(x; w) = x`, and a multiplication of the gradient by `w` in the backward pass,
/// `dL/dx = w * dL/dR`. Placed on the path between exits it rescales each exit's gradient so
/// that the summed gradients of the shared backbone keep a bounded variance.
public enum GradientRescale {
    /// `output = input` (OVERWRITTEN; nothing is copied when they are the same buffer).
    public static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
        if UnsafePointer(output) == input { return }
        output.update(from: input, count: count)
    }

    /// `inputGradient += factor * outputGradient` (ACCUMULATES).
    public static func backward(outputGradient: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>,
                                count: Int, factor: Float) {
        ComputeThreads.parallelFor(count) { range in
            for i in range { inputGradient[i] += factor * outputGradient[i] }
        }
    }
}
