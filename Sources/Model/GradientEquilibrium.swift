/// Gradient Equilibrium (Li et al., "Improved Techniques for Training Adaptive Deep Networks",
/// ICCV 2019, Sec. 3.1, Eq. 4-5): with k exits sharing one backbone, the gradient that reaches
/// block i is a sum over the k - i exits behind it, and its variance grows with that count. GE
/// inserts the gradient rescaling operator `R(x; w)` (identity forward, gradient times `w`
/// backward, `GradientRescale`) on the coarsest scale `x[-1]` after each block i (0-based):
///
///     x[-1] <- R(x[-1]; 1 / (k - i))      (before classifier i reads it)
///     x[-1] <- R(x[-1]; k - i - 1)        (before block i + 1 reads it)
///
/// so that the gradient reaching block i from above is `(g_exit_i + (k - i - 1) g_later) / (k - i)`,
/// an average instead of a sum. Finer scales pass unscaled, as in the reference.
///
/// `MSDNet` keeps the coarsest scale in a growth buffer whose gradient accumulates from every later
/// consumer, so the two operators become in-place scalings of that buffer's gradient prefix at
/// the matching points of the backward pass: first by `k - i - 1` (when everything after block i
/// has contributed), then, after classifier i has added its gradient, by `1 / (k - i)`.
public enum GradientEquilibrium {
    /// The two factors of exit `exit` out of `exitCount`.
    public static func factors(exit: Int, exitCount: Int) -> (intoBlockOutput: Float, intoNextBlock: Float) {
        let remaining = exitCount - exit
        return (1 / Float(remaining), Float(remaining - 1))
    }

    /// The backward of `R(x; factor)`, `dL/dx = factor * dL/dR`, as `gradient *= factor` over
    /// `count` elements: applied to a gradient that nothing else has yet read. (The forward of
    /// `R` is the identity, so the network simply reads `x` on.)
    public static func rescaleInPlace(_ gradient: UnsafeMutablePointer<Float>, count: Int, factor: Float) {
        ComputeThreads.parallelFor(count) { range in
            for index in range { gradient[index] *= factor }
        }
    }
}
