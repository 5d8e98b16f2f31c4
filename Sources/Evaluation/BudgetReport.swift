import Foundation
import Model

/// The budgeted evaluation as files a person reads: `budgets.csv` (one row per budget),
/// `budgets.svg` (accuracy against average MADDs, as the paper's figures) and a text table.
public enum BudgetReport {
    public static func write(_ points: [BudgetedEvaluation.BudgetPoint], anytime: [AnytimeReport.ExitRow],
                             runDirectory: String) throws {
        let exits = anytime.count
        var csv = "p,validation_accuracy,test_accuracy,expected_madds"
        csv += (0..<exits).map { ",threshold_exit\($0)" }.joined()
        csv += (0..<exits).map { ",test_fraction_exit\($0)" }.joined() + "\n"
        for point in points {
            csv += String(format: "%.2f,%.4f,%.4f,%.0f", point.p, point.validationAccuracy, point.testAccuracy, point.expectedMADDs)
            csv += point.thresholds.map { String(format: ",%.8g", $0) }.joined()
            csv += point.testExitFractions.map { String(format: ",%.6f", $0) }.joined() + "\n"
        }
        try ReportFile.write(csv, to: (runDirectory as NSString).appendingPathComponent("budgets.csv"))
        try ReportFile.write(plot(points, anytime: anytime), to: (runDirectory as NSString).appendingPathComponent("budgets.svg"))
    }

    /// A table of (MADDs, accuracy) per budget, thinned to at most 10 rows spread evenly over
    /// the budgets (first and last included).
    public static func table(_ points: [BudgetedEvaluation.BudgetPoint]) -> String {
        var lines = ["budgeted evaluation (test set):", "     p   avg MADDs (M)   test acc %   val acc %"]
        for point in EarlyExitMeasurement.chooseBudgets(points, count: 10) {
            lines.append(String(format: "%6.2f   %13.2f   %10.2f   %9.2f", point.p, point.expectedMADDs / 1e6,
                                point.testAccuracy, point.validationAccuracy))
        }
        return lines.joined(separator: "\n")
    }

    /// Reads the points of a `budgets.csv` written by `write` (for `disttrain plot`).
    public static func read(from path: String) throws -> [BudgetedEvaluation.BudgetPoint] {
        let table = try ReportTable(path: path, columns: ["p", "validation_accuracy", "test_accuracy", "expected_madds"])
        let exits = (table.header.count - 4) / 2
        return table.rows.map { row in
            BudgetedEvaluation.BudgetPoint(
                p: row[0], validationAccuracy: row[1], testAccuracy: row[2], expectedMADDs: row[3],
                thresholds: row[4..<(4 + exits)].map { Float($0) }, testExitFractions: Array(row[(4 + exits)...]))
        }
    }

    /// Test accuracy (y) against average MADDs in millions (x), as the paper's Figures 2, 3 and 5:
    /// the budget curve (budgeted batch classification) and each exit alone (anytime prediction).
    public static func plot(_ points: [BudgetedEvaluation.BudgetPoint], anytime: [AnytimeReport.ExitRow]) -> String {
        var series: [SVGChart.Series] = []
        if !points.isEmpty {
            series.append(SVGChart.Series(name: "budgeted batch classification",
                                          points: points.map { ($0.expectedMADDs / 1e6, $0.testAccuracy) },
                                          color: SVGChart.color(0), markers: true))
        }
        if !anytime.isEmpty {
            series.append(SVGChart.Series(name: "anytime: each exit (top-1)",
                                          points: anytime.map { (Double($0.multiplyAdds) / 1e6, $0.top1) },
                                          color: SVGChart.color(3), markers: true))
        }
        let chart = SVGChart(title: "accuracy against computation (test set)", xLabel: "average MADDs per image (millions)",
                             yLabel: "top-1 test accuracy (%)", series: series)
        return SVGChart.document(width: 640, height: 440, panels: [(chart, 0, 0, 640, 440)])
    }
}

/// Writes a report (CSV, SVG) of the run directory.
public enum ReportFile {
    public static func write(_ text: String, to path: String) throws {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw ReportError.cannotWrite(path: path, reason: error.localizedDescription)
        }
    }
}
