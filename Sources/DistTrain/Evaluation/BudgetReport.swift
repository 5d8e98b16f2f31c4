import Foundation
import Model

/// The budgeted evaluation as files a person reads: `budgets.csv` (one row per budget),
/// `budgets.svg` (accuracy against average MADDs, as the paper's figures) and a text table.
public enum BudgetReport {
    public static func write(_ points: [BudgetedEvaluation.BudgetPoint], exitCosts: [ExitCost],
                             runDirectory: String) throws {
        let exits = exitCosts.count
        var csv = "p,validation_accuracy,test_accuracy,expected_madds"
        csv += (0..<exits).map { ",threshold_exit\($0)" }.joined()
        csv += (0..<exits).map { ",test_fraction_exit\($0)" }.joined() + "\n"
        for point in points {
            csv += String(format: "%.2f,%.4f,%.4f,%.0f", point.p, point.validationAccuracy, point.testAccuracy, point.expectedMADDs)
            csv += point.thresholds.map { String(format: ",%.8g", $0) }.joined()
            csv += point.testExitFractions.map { String(format: ",%.6f", $0) }.joined() + "\n"
        }
        try ReportFile.write(csv, to: (runDirectory as NSString).appendingPathComponent("budgets.csv"))
        try ReportFile.write(plot(points, exitCosts: exitCosts), to: (runDirectory as NSString).appendingPathComponent("budgets.svg"))
    }

    /// A table of (MADDs, accuracy) per budget, thinned to at most 10 rows.
    public static func table(_ points: [BudgetedEvaluation.BudgetPoint]) -> String {
        var lines = ["budgeted evaluation (test set):", "     p   avg MADDs (M)   test acc %   val acc %"]
        let stride = max(1, points.count / 10)
        for (index, point) in points.enumerated() where index % stride == 0 || index == points.count - 1 {
            lines.append(String(format: "%6.2f   %13.2f   %10.2f   %9.2f", point.p, point.expectedMADDs / 1e6,
                                point.testAccuracy, point.validationAccuracy))
        }
        return lines.joined(separator: "\n")
    }

    /// Accuracy (y) against average MADDs in millions (x): the budget curve, plus one marker per
    /// exit at its own cost (every sample leaving there is not plotted: its accuracy is unknown here).
    static func plot(_ points: [BudgetedEvaluation.BudgetPoint], exitCosts: [ExitCost]) -> String {
        let width = 640.0, height = 420.0, margin = 60.0
        let xs = points.map { $0.expectedMADDs / 1e6 }, ys = points.map(\.testAccuracy)
        let xMaximum = max((exitCosts.last.map { Double($0.multiplyAdds) / 1e6 } ?? 1), xs.max() ?? 1) * 1.05
        let xMinimum = 0.0
        let yMinimum = max(0, ((ys.min() ?? 0) - 2).rounded(.down))
        let yMaximum = min(100, ((ys.max() ?? 100) + 1).rounded(.up))
        func x(_ value: Double) -> Double { margin + (value - xMinimum) / max(xMaximum - xMinimum, 1e-9) * (width - 2 * margin) }
        func y(_ value: Double) -> Double { height - margin - (value - yMinimum) / max(yMaximum - yMinimum, 1e-9) * (height - 2 * margin) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", margin, height - margin, width - margin, height - margin)
        svg += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", margin, margin, margin, height - margin)
        for tick in 0...5 {
            let xValue = xMinimum + Double(tick) / 5 * (xMaximum - xMinimum)
            let yValue = yMinimum + Double(tick) / 5 * (yMaximum - yMinimum)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>\n", x(xValue), height - margin + 18, xValue)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", margin - 6, y(yValue) + 4, yValue)
        }
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">average MADDs per image (millions)</text>\n", width / 2, height - 15)
        svg += String(format: "<text x=\"15\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 15 %.1f)\">top-1 test accuracy (%%)</text>\n", height / 2, height / 2)
        let path = zip(xs, ys).map { String(format: "%.1f,%.1f", x($0), y($1)) }.joined(separator: " ")
        svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"\(path)\"/>\n"
        for (px, py) in zip(xs, ys) {
            svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"#1f77b4\"/>\n", x(px), y(py))
        }
        svg += "<text x=\"\(Int(width / 2))\" y=\"30\" text-anchor=\"middle\" font-size=\"14\">budgeted batch classification</text>\n"
        svg += "</svg>\n"
        return svg
    }

}

/// Writes a report (CSV, SVG) of the run directory.
enum ReportFile {
    static func write(_ text: String, to path: String) throws {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw TrainingError.cannotWrite(path: path, reason: error.localizedDescription)
        }
    }
}
