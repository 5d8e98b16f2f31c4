import Foundation

/// Cross-entropy of logits against class labels, averaged over the batch (PyTorch
/// `nn.CrossEntropyLoss()` default): `L = (1/N) sum_n (log sum_j exp(z_nj) - z_n,y_n)`.
public enum CrossEntropy {
    /// The mean loss over `batch` rows of `logits` `[batch, classes]`; labels are in `0..<classes`.
    public static func forward(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                               batch: Int, classes: Int) -> Double {
        var total = 0.0
        for n in 0..<batch {
            let row = logits + n * classes
            let label = Int(labels[n])
            precondition(label >= 0 && label < classes, "label \(label) of row \(n) is outside 0..<\(classes)")
            let (maximum, logSum) = SoftmaxRow.logNormalizer(row, columns: classes, temperature: 1)
            total += Double(maximum + logSum - row[label])
        }
        return total / Double(batch)
    }

    /// `logitsGradient += scale * (softmax(z_n) - onehot(y_n)) / N` (ACCUMULATES): the gradient
    /// of `scale * L`.
    public static func backward(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                logitsGradient: UnsafeMutablePointer<Float>,
                                batch: Int, classes: Int, scale: Float = 1) {
        let factor = scale / Float(batch)
        for n in 0..<batch {
            let row = logits + n * classes
            let gradient = logitsGradient + n * classes
            let (maximum, logSum) = SoftmaxRow.logNormalizer(row, columns: classes, temperature: 1)
            for j in 0..<classes { gradient[j] += factor * exp(row[j] - maximum - logSum) }
            gradient[Int(labels[n])] -= factor
        }
    }
}
