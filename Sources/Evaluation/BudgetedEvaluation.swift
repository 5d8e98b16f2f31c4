import Foundation
import Model

/// Budgeted batch classification (paper Sec. 4, "budgeted batch classification"; the reference's
/// `dynamic_evaluate`): for each budget, confidence thresholds are chosen on the validation
/// hold-out so that a geometric share of the samples leaves at each exit, and then applied to the
/// test set, giving one (expected MADDs, accuracy) point of the paper's figures.
///
/// The arithmetic follows the reference in single precision where it computes in single
/// precision (exit proportions, expected MADDs), so that thresholds and accuracies reproduce it
/// exactly.
public enum BudgetedEvaluation {
    /// Per-exit class probabilities of a set of samples: `probabilities[exit][sample * classes + class]`.
    public struct ExitProbabilities: Sendable {
        public let exitCount: Int
        public let sampleCount: Int
        public let classCount: Int
        /// Flat `[exit, sample, class]`.
        public let values: [Float]
        public let labels: [Int]

        public init(exitCount: Int, sampleCount: Int, classCount: Int, values: [Float], labels: [Int]) {
            precondition(values.count == exitCount * sampleCount * classCount, "probabilities must be [exits, samples, classes]")
            precondition(labels.count == sampleCount, "one label per sample")
            self.exitCount = exitCount
            self.sampleCount = sampleCount
            self.classCount = classCount
            self.values = values
            self.labels = labels
        }

        /// The confidence (largest probability) and the predicted class of every sample at every exit.
        func confidences() -> (confidence: [[Float]], prediction: [[Int]]) {
            var confidence = [[Float]](repeating: [Float](repeating: 0, count: sampleCount), count: exitCount)
            var prediction = [[Int]](repeating: [Int](repeating: 0, count: sampleCount), count: exitCount)
            values.withUnsafeBufferPointer { probabilities in
                for exit in 0..<exitCount {
                    for sample in 0..<sampleCount {
                        let row = probabilities.baseAddress! + (exit * sampleCount + sample) * classCount
                        let best = Argmax.index(row, count: classCount)
                        confidence[exit][sample] = row[best]
                        prediction[exit][sample] = best
                    }
                }
            }
            return (confidence, prediction)
        }
    }

    /// One budget's outcome.
    public struct BudgetPoint: Sendable, Equatable {
        /// The budget parameter p of the geometric exit distribution.
        public var p: Double
        /// Accuracy (percent) on the validation hold-out with the chosen thresholds.
        public var validationAccuracy: Double
        /// Accuracy (percent) on the test set with the same thresholds.
        public var testAccuracy: Double
        /// Average MADDs per test sample.
        public var expectedMADDs: Double
        /// Confidence threshold of each exit; the last exit accepts everything (-1e8).
        public var thresholds: [Float]
        /// Fraction of test samples leaving at each exit.
        public var testExitFractions: [Double]
    }

    /// The reference's budget grid: p = 1/20, 2/20, ..., count/20.
    public static func budgetGrid(count: Int = 40) -> [Double] {
        (1...max(count, 1)).map { Double($0) / 20 }
    }

    /// The budgets p whose exit proportions are finite in single precision for `exitCount` exits:
    /// from the smallest normal Float (below it p^1 rounds to 0 and q_i = 0/0) up to where
    /// k p^k, a bound on the sum of p^i, still fits a Float (with a 0.1% margin for the rounding of
    /// logf and expf).
    public static func usableBudgets(exitCount: Int) -> ClosedRange<Double> {
        let exits = Double(max(exitCount, 1))
        let upper = pow(Double(Float.greatestFiniteMagnitude) / exits, 1 / exits) * 0.999
        return Double(Float.leastNormalMagnitude)...upper
    }

    /// Share of samples meant to leave at each exit for budget `p`: q_i = p^i / sum_j p^j, i = 1..k,
    /// computed in single precision as `torch.exp(torch.log(p) * torch.range(1, k))`.
    /// A p outside `usableBudgets(exitCount:)` (or NaN) is clamped into it, so the proportions are
    /// always finite and sum to 1; callers taking p from a user refuse such a p first.
    /// No exits give no proportions.
    public static func exitProportions(p: Double, exitCount: Int) -> [Float] {
        guard exitCount >= 1 else { return [] }
        let usable = usableBudgets(exitCount: exitCount)
        let logP = logf(Float(p.isNaN ? usable.lowerBound : min(max(p, usable.lowerBound), usable.upperBound)))
        var proportions = (1...exitCount).map { i in expf(logP * Float(i)) }
        var total: Float = 0
        for value in proportions { total += value }
        for i in proportions.indices { proportions[i] /= total }
        return proportions
    }

    /// Chooses one threshold per exit on `validation`: walking the exits in order, exit i's
    /// threshold is the confidence of the floor(n * q_i)-th most confident sample that no earlier
    /// exit has taken (no sample leaves if that count is 0); the last exit takes all that remain.
    public static func thresholds(validation: ExitProbabilities, proportions: [Float]) -> [Float] {
        let (confidence, _) = validation.confidences()
        let n = validation.sampleCount
        let exits = validation.exitCount
        var thresholds = [Float](repeating: 1e8, count: exits)
        var taken = [Bool](repeating: false, count: n)
        for exit in 0..<(exits - 1) {
            let wanted = Int((Float(n) * proportions[exit]).rounded(.down))
            let order = descendingOrder(confidence[exit])
            var count = 0
            for sample in order where !taken[sample] {
                count += 1
                if count == wanted {
                    thresholds[exit] = confidence[exit][sample]
                    break
                }
            }
            for sample in 0..<n where confidence[exit][sample] >= thresholds[exit] {
                taken[sample] = true
            }
        }
        thresholds[exits - 1] = -1e8
        return thresholds
    }

    /// Sends every sample out at the first exit whose confidence reaches its threshold.
    /// Returns accuracy in percent, expected MADDs per sample and the share leaving at each exit.
    public static func apply(
        thresholds: [Float], to set: ExitProbabilities, exitMADDs: [Double]
    ) -> (accuracy: Double, expectedMADDs: Double, exitFractions: [Double]) {
        let (confidence, prediction) = set.confidences()
        var correct = 0
        var leaving = [Int](repeating: 0, count: set.exitCount)
        for sample in 0..<set.sampleCount {
            for exit in 0..<set.exitCount where confidence[exit][sample] >= thresholds[exit] {
                if prediction[exit][sample] == set.labels[sample] { correct += 1 }
                leaving[exit] += 1
                break
            }
        }
        var expected: Float = 0
        for exit in 0..<set.exitCount {
            expected += Float(leaving[exit]) / Float(set.sampleCount) * Float(exitMADDs[exit])
        }
        let fractions = leaving.map { Double($0) / Double(set.sampleCount) }
        return (Double(correct) * 100 / Double(set.sampleCount), Double(expected), fractions)
    }

    /// The whole curve: for each p of `budgets`, thresholds from `validation`, applied to `test`.
    public static func evaluate(
        validation: ExitProbabilities, test: ExitProbabilities, exitMADDs: [Double],
        budgets: [Double] = budgetGrid()
    ) -> [BudgetPoint] {
        precondition(validation.exitCount == test.exitCount && exitMADDs.count == test.exitCount,
                     "validation, test and MADDs must cover the same exits")
        return budgets.map { p in
            let proportions = exitProportions(p: p, exitCount: validation.exitCount)
            let chosen = thresholds(validation: validation, proportions: proportions)
            let onValidation = apply(thresholds: chosen, to: validation, exitMADDs: exitMADDs)
            let onTest = apply(thresholds: chosen, to: test, exitMADDs: exitMADDs)
            return BudgetPoint(
                p: p, validationAccuracy: onValidation.accuracy, testAccuracy: onTest.accuracy,
                expectedMADDs: onTest.expectedMADDs, thresholds: chosen,
                testExitFractions: onTest.exitFractions)
        }
    }

    /// Sample indices by descending value; ties keep index order (a stable sort).
    static func descendingOrder(_ values: [Float]) -> [Int] {
        values.indices.sorted { a, b in
            values[a] != values[b] ? values[a] > values[b] : a < b
        }
    }
}

