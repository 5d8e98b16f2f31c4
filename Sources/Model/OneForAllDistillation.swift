/// One-for-all Knowledge Distillation (Li et al., ICCV 2019, Sec. 3.3, Eq. 6), as the reference
/// `KDLoss.loss_fn_kd`: the last exit learns from the labels, every earlier exit from the labels
/// and from the frozen phase-I network's last exit (the teacher, detached):
///
///     L = CE(z_{k-1}, y) + sum_{i<k-1} [ (1 - gamma) CE(z_i, y)
///                                        + gamma T^2 KL(softmax(t / T) || softmax(z_i / T)) ]
///
/// CE is the batch mean; KL is PyTorch's `KLDivLoss` with reduction "mean" (sum / (batch * classes),
/// the reference default) or "batchmean" (sum / batch).
public struct OneForAllDistillation: Equatable, Sendable {
    public var temperature: Float
    public var gamma: Float
    public var reduction: KLDivergence.Reduction

    public init(temperature: Float, gamma: Float, reduction: KLDivergence.Reduction = .mean) {
        self.temperature = temperature
        self.gamma = gamma
        self.reduction = reduction
    }

    /// The loss; replaces the contents of `exitCrossEntropies` by each exit's plain mean
    /// cross-entropy (reusing its storage) and ACCUMULATES dL/dz_i into `gradients[i]`.
    public func lossAndGradients(logits: [UnsafePointer<Float>], teacher: UnsafePointer<Float>,
                                 labels: UnsafePointer<Int32>, count n: Int, classes: Int,
                                 gradients: [UnsafeMutablePointer<Float>], exitCrossEntropies crossEntropies: inout [Double]) -> Double {
        let exits = logits.count
        var loss = 0.0
        crossEntropies.removeAll(keepingCapacity: true)
        let distillationWeight = gamma * temperature * temperature
        for exit in 0..<exits {
            let crossEntropy = CrossEntropy.forward(logits: logits[exit], labels: labels, batch: n, classes: classes)
            crossEntropies.append(crossEntropy)
            if exit == exits - 1 {
                loss += crossEntropy
                CrossEntropy.backward(logits: logits[exit], labels: labels, logitsGradient: gradients[exit], batch: n, classes: classes)
            } else {
                let divergence = KLDivergence.forward(studentLogits: logits[exit], teacherLogits: teacher, batch: n, classes: classes,
                                                      temperature: temperature, reduction: reduction)
                loss += Double(1 - gamma) * crossEntropy + Double(distillationWeight) * divergence
                CrossEntropy.backward(logits: logits[exit], labels: labels, logitsGradient: gradients[exit], batch: n, classes: classes,
                                      scale: 1 - gamma)
                KLDivergence.backward(studentLogits: logits[exit], teacherLogits: teacher, studentGradient: gradients[exit],
                                      batch: n, classes: classes, temperature: temperature, reduction: reduction,
                                      scale: distillationWeight)
            }
        }
        return loss
    }
}
