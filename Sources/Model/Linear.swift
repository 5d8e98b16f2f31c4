/// How a linear layer's input (and input gradient) is laid out.
public enum LinearInputLayout: Sendable {
    /// `[N, in]` row-major, PyTorch's own layout (e.g. logits fed to an ISC module).
    case rowMajor
    /// `[in, N]`: a channel-major activation `[C, N, 1, 1]` after global pooling, used without a
    /// transpose copy. Equivalent to PyTorch's `x.view(N, -1)` when the spatial size is 1x1.
    case featureMajor
}

/// Fully connected layer (PyTorch `nn.Linear`): `Y[N, out] = X[N, in] x W[out, in]^T + b`, one
/// SGEMM. Output is always row-major `[N, out]`.
public enum Linear {
    /// OVERWRITES `output` `[batch, outputFeatures]`.
    public static func forward(input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                               batch: Int, inputFeatures: Int, outputFeatures: Int,
                               inputLayout: LinearInputLayout = .rowMajor) {
        var beta: Float = 0
        if let bias {
            for n in 0..<batch { (output + n * outputFeatures).update(from: bias, count: outputFeatures) }
            beta = 1
        }
        let (transposeInput, inputLeading) = inputLayout == .rowMajor ? (false, inputFeatures) : (true, batch)
        MatrixMultiply.multiply(transposeA: transposeInput, transposeB: true,
                                rows: batch, columns: outputFeatures, inner: inputFeatures,
                                a: input, leadingA: inputLeading, b: weight, leadingB: inputFeatures,
                                beta: beta, c: output, leadingC: outputFeatures)
    }

    /// Backward, ACCUMULATING into every non-nil gradient: `dW += dY^T x X`,
    /// `db += sum over n of dY`, `dX += dY x W` (in `inputLayout`).
    public static func backward(outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>,
                                inputGradient: UnsafeMutablePointer<Float>?,
                                weightGradient: UnsafeMutablePointer<Float>?,
                                biasGradient: UnsafeMutablePointer<Float>?,
                                batch: Int, inputFeatures: Int, outputFeatures: Int,
                                inputLayout: LinearInputLayout = .rowMajor) {
        if let biasGradient {
            // Summed over the batch in Double, as PyTorch's CPU reductions accumulate.
            for o in 0..<outputFeatures {
                var total = Double(biasGradient[o])
                for n in 0..<batch { total += Double(outputGradient[n * outputFeatures + o]) }
                biasGradient[o] = Float(total)
            }
        }
        if let weightGradient {
            let (transposeInput, inputLeading) = inputLayout == .rowMajor ? (false, inputFeatures) : (true, batch)
            MatrixMultiply.multiply(transposeA: true, transposeB: transposeInput,
                                    rows: outputFeatures, columns: inputFeatures, inner: batch,
                                    a: outputGradient, leadingA: outputFeatures, b: input, leadingB: inputLeading,
                                    beta: 1, c: weightGradient, leadingC: inputFeatures)
        }
        if let inputGradient {
            switch inputLayout {
            case .rowMajor:
                MatrixMultiply.multiply(transposeA: false, transposeB: false,
                                        rows: batch, columns: inputFeatures, inner: outputFeatures,
                                        a: outputGradient, leadingA: outputFeatures, b: weight, leadingB: inputFeatures,
                                        beta: 1, c: inputGradient, leadingC: inputFeatures)
            case .featureMajor:
                MatrixMultiply.multiply(transposeA: true, transposeB: true,
                                        rows: inputFeatures, columns: batch, inner: outputFeatures,
                                        a: weight, leadingA: inputFeatures, b: outputGradient, leadingB: outputFeatures,
                                        beta: 1, c: inputGradient, leadingC: batch)
            }
        }
    }
}
