import Foundation

extension LearningRateSchedule {
    /// The learning rate at `step` of `epoch` (both 0-based within the phase), as the
    /// reference's `adjust_learning_rate`:
    /// - multistep: `lr * factor^m`, m = number of milestones with `epoch >= milestone * epochs`
    ///   (CIFAR: x0.1 at 50% and x0.01 at 75% of the phase);
    /// - step: `lr * factor^(epoch / every)` (ImageNet: x0.1 every 30 epochs);
    /// - cosine: `lr / 2 * (1 + cos(pi * t / T))` with t = epoch * stepsPerEpoch + step and
    ///   T = epochs * stepsPerEpoch, updated every step.
    public func learningRate(base: Double, epoch: Int, step: Int, epochs: Int, stepsPerEpoch: Int) -> Double {
        let decay = factor ?? 0.1
        switch kind {
        case .multistep:
            let reached = (milestones ?? [0.5, 0.75]).filter { Double(epoch) >= $0 * Double(epochs) }.count
            return base * pow(decay, Double(reached))
        case .step:
            return base * pow(decay, Double(epoch / max(every ?? 30, 1)))
        case .cosine:
            let total = Double(epochs * stepsPerEpoch)
            let current = Double(epoch * stepsPerEpoch + step)
            return 0.5 * base * (1 + cos(Double.pi * current / max(total, 1)))
        }
    }
}
