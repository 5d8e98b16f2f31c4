/// The index of the largest of `count` values, the first one on ties (as `torch.max` and
/// `torch.argmax` on the CPU): the predicted class of a row of logits or probabilities.
public enum Argmax {
    @inline(__always)
    public static func index(_ values: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        for index in 1..<max(count, 1) where values[index] > values[best] { best = index }
        return best
    }
}
