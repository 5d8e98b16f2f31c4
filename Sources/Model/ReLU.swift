/// Rectified linear unit `y = max(0, x)` (PyTorch `nn.ReLU`), element-wise over any layout.
public enum ReLU {
    /// `output = max(0, input)`, OVERWRITTEN; `output` may alias `input`.
    public static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
        ComputeThreads.parallelFor(count) { range in
            for i in range { output[i] = max(input[i], 0) }
        }
    }

    /// `inputGradient += outputGradient * [output > 0]` (ACCUMULATES). The mask is taken from the
    /// forward's output, which is positive exactly where the input was (PyTorch's gradient at 0
    /// is 0 too).
    public static func backward(outputGradient: UnsafePointer<Float>, output: UnsafePointer<Float>,
                                inputGradient: UnsafeMutablePointer<Float>, count: Int) {
        ComputeThreads.parallelFor(count) { range in
            for i in range { inputGradient[i] += output[i] > 0 ? outputGradient[i] : 0 }
        }
    }
}
