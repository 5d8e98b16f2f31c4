import Evaluation
import Storage
import TestSupport
import XCTest

/// The budgeted evaluation against the reference's `dynamic_evaluate` outputs on fixed data
/// (fixture group `/dynamic`): thresholds, accuracies and expected MADDs for all 40 budgets.
final class BudgetedEvaluationTests: XCTestCase {
    private func exitProbabilities(_ group: HDF5Group, _ split: String) throws -> BudgetedEvaluation.ExitProbabilities {
        let probabilities = try group.read("\(split)_probs", as: Float.self)
        let labels = try group.read("\(split)_labels", as: Int64.self)
        return BudgetedEvaluation.ExitProbabilities(
            exitCount: probabilities.shape[0], sampleCount: probabilities.shape[1],
            classCount: probabilities.shape[2], values: probabilities.values,
            labels: labels.values.map { Int($0) })
    }

    func testReproducesReferenceBudgets() throws {
        let file = try HDF5File.open(FixtureLocation.path("msdnet-cifar-tiny.h5"))
        let dynamic = try file.root.group("dynamic")
        let validation = try exitProbabilities(dynamic, "val")
        let test = try exitProbabilities(dynamic, "test")
        let madds = try dynamic.read("flops", as: Double.self).values
        let expected = try dynamic.read("budgets", as: Double.self)
        XCTAssertEqual(expected.shape, [40, 7])

        let points = BudgetedEvaluation.evaluate(validation: validation, test: test, exitMADDs: madds)
        XCTAssertEqual(points.count, 40)
        for (index, point) in points.enumerated() {
            let row = Array(expected.values[(index * 7)..<(index * 7 + 7)])
            XCTAssertEqual(point.p, row[0], accuracy: 1e-12)
            XCTAssertEqual(point.validationAccuracy, row[1], accuracy: 1e-9, "budget \(index): validation accuracy")
            XCTAssertEqual(point.testAccuracy, row[2], accuracy: 1e-9, "budget \(index): test accuracy")
            XCTAssertEqual(point.expectedMADDs, row[3], "budget \(index): expected MADDs")
            for exit in 0..<3 {
                XCTAssertEqual(point.thresholds[exit], Float(row[4 + exit]), "budget \(index): threshold of exit \(exit)")
            }
            XCTAssertEqual(point.testExitFractions.reduce(0, +), 1, accuracy: 1e-12)
        }
    }

    func testExitProportionsAreGeometric() {
        let proportions = BudgetedEvaluation.exitProportions(p: 0.5, exitCount: 3)
        // p^i / (p + p^2 + p^3) = 4/7, 2/7, 1/7
        XCTAssertEqual(proportions[0], 4.0 / 7, accuracy: 1e-6)
        XCTAssertEqual(proportions[1], 2.0 / 7, accuracy: 1e-6)
        XCTAssertEqual(proportions[2], 1.0 / 7, accuracy: 1e-6)
    }

    /// A p whose powers leave single precision (0/0 or inf/inf in the reference's formula) is
    /// clamped into the usable range: the proportions stay finite, sum to 1, and thresholds follow.
    func testExtremeBudgetsGiveFiniteProportions() {
        let set = BudgetedEvaluation.ExitProbabilities(exitCount: 10, sampleCount: 2, classCount: 2,
                                                       values: [Float](repeating: 0.5, count: 40), labels: [0, 1])
        for p in [1e-300, 1e-45, 1e300, 1e10, 1e4, .infinity, .nan] {
            let proportions = BudgetedEvaluation.exitProportions(p: p, exitCount: 10)
            XCTAssertEqual(proportions.count, 10)
            XCTAssertTrue(proportions.allSatisfy(\.isFinite), "p = \(p): \(proportions)")
            XCTAssertEqual(proportions.reduce(0, +), 1, accuracy: 1e-5, "p = \(p)")
            XCTAssertEqual(BudgetedEvaluation.thresholds(validation: set, proportions: proportions).last, -1e8)
        }
        let usable = BudgetedEvaluation.usableBudgets(exitCount: 10)
        // (3.4e38 / 10)^(1/10) = 5,665 less the margin: the bound itself is computed unclamped.
        XCTAssertEqual(usable.upperBound, 5_659, accuracy: 1)
        XCTAssertTrue(BudgetedEvaluation.exitProportions(p: usable.upperBound, exitCount: 10).allSatisfy(\.isFinite))
        XCTAssertEqual(BudgetedEvaluation.exitProportions(p: 0.5, exitCount: 0), [])
    }

    func testThresholdsSendTheMostConfidentOutFirst() {
        // Two exits, four samples; at p = 1 half of them should leave at exit 0.
        let values: [Float] = [
            0.9, 0.1, 0.6, 0.4, 0.8, 0.2, 0.55, 0.45,  // exit 0: confidences 0.9, 0.6, 0.8, 0.55
            0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.35, 0.65,  // exit 1
        ]
        let set = BudgetedEvaluation.ExitProbabilities(exitCount: 2, sampleCount: 4, classCount: 2,
                                                       values: values, labels: [0, 1, 0, 1])
        let thresholds = BudgetedEvaluation.thresholds(
            validation: set, proportions: BudgetedEvaluation.exitProportions(p: 1, exitCount: 2))
        XCTAssertEqual(thresholds, [0.8, -1e8])
        let outcome = BudgetedEvaluation.apply(thresholds: thresholds, to: set, exitMADDs: [10, 30])
        // Samples 0 and 2 leave at exit 0 (both right), 1 and 3 at exit 1 (both right).
        XCTAssertEqual(outcome.accuracy, 100)
        XCTAssertEqual(outcome.expectedMADDs, 20)
        XCTAssertEqual(outcome.exitFractions, [0.5, 0.5])
    }
}
