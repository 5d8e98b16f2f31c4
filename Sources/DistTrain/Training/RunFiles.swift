import Foundation

/// The files a run leaves in its run directory, as the final summary lists them.
public enum RunFiles {
    /// What each file holds, in the order they are listed.
    static let descriptions: [(name: String, holds: String)] = [
        ("metrics.jsonl", "training loss and accuracy per step and epoch"),
        ("training.svg", "per-exit validation accuracy and training loss over the epochs"),
        ("logits.h5", "exit probabilities of the validation hold-out and the test set"),
        ("anytime.csv", "per-exit top-1 and top-5 test accuracy, MADDs, parameters"),
        ("budgets.csv", "budgeted evaluation: thresholds, accuracy and MADDs per budget"),
        ("budgets.svg", "test accuracy against average MADDs, with the per-exit points"),
        ("early-exit.csv", "measured early-exit speed per budget (eval --measure)"),
    ]

    /// One line per file that exists under `runDirectory`, with the newest checkpoint first.
    public static func listing(runDirectory: String) -> String {
        var lines = ["files in \(runDirectory):"]
        let checkpoints = CheckpointDirectory(runDirectory: runDirectory)
        if let newest = checkpoints.files().first {
            lines.append("  \(newest)  (newest checkpoint)")
        }
        for (name, holds) in descriptions {
            let path = (runDirectory as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: path) { lines.append("  \(path)  (\(holds))") }
        }
        return lines.joined(separator: "\n")
    }
}
