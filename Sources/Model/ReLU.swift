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
            var i = range.lowerBound
            // A select, not a branch: the sign of activations is unpredictable.
            while i + FloatVector.scalarCount <= range.upperBound {
                let gradient = outputGradient.loadVector(at: i)
                let passed = gradient.replacing(with: 0, where: output.loadVector(at: i) .<= 0)
                inputGradient.storeVector(inputGradient.loadVector(at: i) + passed, at: i)
                i += FloatVector.scalarCount
            }
            while i < range.upperBound {
                inputGradient[i] += output[i] > 0 ? outputGradient[i] : 0
                i += 1
            }
        }
    }
}
