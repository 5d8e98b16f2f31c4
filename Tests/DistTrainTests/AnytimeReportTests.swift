import Evaluation
import Foundation
@testable import Model
import XCTest

/// The anytime table and the budgeted evaluation on hand-built probabilities whose outcome is
/// worked out by hand: ties in the class ranking and at a threshold, and a budget so small that
/// no sample leaves early.
final class AnytimeReportTests: XCTestCase {
    /// Two exits, four samples, seven classes.
    private func handBuilt() -> BudgetedEvaluation.ExitProbabilities {
        let even = [Float](repeating: 1 / 7, count: 7)
        let exit0: [[Float]] = [
            even,                                   // label 2: classes 0 and 1 tie and come first: top-5 only
            even,                                   // label 6: six tied classes come first: neither
            even,                                   // label 0: first of the tie: top-1
            [0.1, 0.3, 0.3, 0.3, 0, 0, 0],          // label 3: tied with 1 and 2, which come first: top-5 only
        ]
        let exit1: [[Float]] = [
            [0, 0, 0.9, 0.1, 0, 0, 0],              // label 2: top-1
            [0.2, 0.2, 0.2, 0.2, 0.1, 0.05, 0.05],  // label 6: below six classes: neither
            [0.4, 0.4, 0.2, 0, 0, 0, 0],            // label 0: tied with 1, first: top-1
            [0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0],      // label 3: below 0, tied with 1, 2 (first): top-5 only
        ]
        return BudgetedEvaluation.ExitProbabilities(exitCount: 2, sampleCount: 4, classCount: 7,
                                                    values: (exit0 + exit1).flatMap { $0 }, labels: [2, 6, 0, 3])
    }

    func testTopOneAndTopFiveWithTies() throws {
        let costs = [ExitCost(multiplyAdds: 1_000, parameters: 10), ExitCost(multiplyAdds: 2_500, parameters: 30)]
        let rows = AnytimeReport.rows(handBuilt(), exitCosts: costs)
        XCTAssertEqual(rows.map(\.top1), [25, 50])
        XCTAssertEqual(rows.map(\.top5), [75, 75])
        XCTAssertEqual(rows.map(\.multiplyAdds), [1_000, 2_500])
        XCTAssertEqual(rows.map(\.parameters), [10, 30])

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("anytime-\(UUID().uuidString).csv").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try AnytimeReport.csv(rows).write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try AnytimeReport.read(from: path), rows)
        let lastLine = AnytimeReport.table(rows).split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertEqual(lastLine.split(separator: " "), ["1", "0.00", "0.000", "50.00", "75.00"])
    }

    /// Exit 0 wants floor(4 * q_0) samples; at p = 0.05 that is 3 (q_0 = 0.952...); at p = 4
    /// none: floor(4 * 0.2) = 0, so the threshold stays above every confidence and every sample
    /// runs to the last exit, whose accuracy and cost the budget then reports.
    func testBudgetWhereNoSampleLeavesEarly() {
        let set = handBuilt()
        let points = BudgetedEvaluation.evaluate(validation: set, test: set, exitMADDs: [1_000, 2_500], budgets: [4])
        XCTAssertEqual(points[0].thresholds[0], 1e8)
        XCTAssertEqual(points[0].testExitFractions, [0, 1])
        XCTAssertEqual(points[0].expectedMADDs, 2_500)
        XCTAssertEqual(points[0].testAccuracy, AnytimeReport.rows(set, exitCosts: [
            ExitCost(multiplyAdds: 1_000, parameters: 0), ExitCost(multiplyAdds: 2_500, parameters: 0),
        ])[1].top1)
    }

    /// The printed budget table has at most 10 rows (the README's promise), spread from the
    /// first budget to the last: with 2000 budgets the old stride of 200 printed 11.
    func testBudgetTableHasAtMostTenRowsFromFirstToLast() {
        let set = handBuilt()
        for count in [3, 10, 11, 40, 2000] {
            let budgets = BudgetedEvaluation.budgetGrid(count: count)
            let points = BudgetedEvaluation.evaluate(validation: set, test: set, exitMADDs: [1_000, 2_500], budgets: budgets)
            let rows = BudgetReport.table(points).split(separator: "\n").dropFirst(2)
            XCTAssertEqual(rows.count, min(count, 10), "\(count) budgets")
            XCTAssertTrue(rows.first?.hasPrefix(String(format: "%6.2f", budgets.first!)) ?? false, "\(count) budgets: \(rows)")
            XCTAssertTrue(rows.last?.hasPrefix(String(format: "%6.2f", budgets.last!)) ?? false, "\(count) budgets: \(rows)")
        }
    }

    /// Exit 0's confidences are 1/7, 1/7, 1/7, 0.3: wanting 3 samples puts the threshold at 1/7,
    /// and all four samples reach it (ties at the threshold leave together, `>=`).
    func testTiesAtTheThresholdLeaveTogether() {
        let set = handBuilt()
        let points = BudgetedEvaluation.evaluate(validation: set, test: set, exitMADDs: [1_000, 2_500], budgets: [0.05])
        XCTAssertEqual(points[0].thresholds[0], 1 / 7)
        XCTAssertEqual(points[0].testExitFractions, [1, 0])
        XCTAssertEqual(points[0].testAccuracy, 25)
        XCTAssertEqual(points[0].expectedMADDs, 1_000)
    }
}
