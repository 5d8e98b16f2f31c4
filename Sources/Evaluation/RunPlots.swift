import Foundation

/// Redraws a run's plots from its files alone (`disttrain plot RUNDIR`), so that a stopped run
/// or one copied from a cluster can be plotted: `training.svg` from `metrics.jsonl`,
/// `budgets.svg` from `budgets.csv` and `anytime.csv` (either may be missing, not both).
public enum RunPlots {
    /// Writes every plot whose data is there; returns the paths written.
    public static func redraw(runDirectory: String) throws -> [String] {
        func path(_ name: String) -> String { (runDirectory as NSString).appendingPathComponent(name) }
        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }
        var written: [String] = []
        if exists("metrics.jsonl") {
            try TrainingPlot.write(runDirectory: runDirectory)
            written.append(path("training.svg"))
        }
        if exists("budgets.csv") || exists("anytime.csv") {
            let points = exists("budgets.csv") ? try BudgetReport.read(from: path("budgets.csv")) : []
            let anytime = exists("anytime.csv") ? try AnytimeReport.read(from: path("anytime.csv")) : []
            try ReportFile.write(BudgetReport.plot(points, anytime: anytime), to: path("budgets.svg"))
            written.append(path("budgets.svg"))
        }
        guard !written.isEmpty else { throw ReportError.nothingToPlot(runDirectory: runDirectory) }
        return written
    }
}
