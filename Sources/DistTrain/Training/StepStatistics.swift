import Communication
import Model

/// What one training step adds to the logs, summed over the ranks in one all-reduce: losses
/// weighted by each rank's samples, correct top-1 predictions per exit, samples, and how many
/// ranks were asked to stop.
struct StepStatistics {
    /// Σ over ranks of the phase's loss × samples.
    var weightedLoss: Double
    /// Σ over ranks of each exit's cross-entropy × samples.
    var weightedExitLosses: [Double]
    /// Σ over ranks of each exit's correct predictions.
    var correct: [Double]
    var samples: Double
    /// Ranks with a stop request (a signal, `--stop-after-steps`): the stop travels with the step.
    var stopRequests: Double

    /// This rank's share, before `sum(over:)`.
    init(_ result: TrainingStepResult, samples: Int, stopRequested: Bool) {
        let n = Double(samples)
        weightedLoss = result.loss * n
        weightedExitLosses = result.exitLosses.map { $0 * n }
        correct = result.exitCorrect.map(Double.init)
        self.samples = n
        stopRequests = stopRequested ? 1 : 0
    }

    /// The mean loss over every rank's samples.
    var loss: Double { weightedLoss / samples }

    /// Replaces every field by its sum over the ranks (one all-reduce of 2 × exits + 3 numbers).
    mutating func sum(over communicator: Communicator) throws {
        let exits = correct.count
        var values = [weightedLoss] + weightedExitLosses + correct + [samples, stopRequests]
        try communicator.allReduce(&values, .sum)
        weightedLoss = values[0]
        weightedExitLosses = Array(values[1...exits])
        correct = Array(values[(exits + 1)...(2 * exits)])
        samples = values[2 * exits + 1]
        stopRequests = values[2 * exits + 2]
    }
}
