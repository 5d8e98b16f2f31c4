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

    /// Moves the checkpoints and every output above into `<runDir>/replaced-<UTC time>/` (for
    /// `--fresh`), leaving an empty `checkpoints/`: a fresh run must neither append to the old
    /// `metrics.jsonl` nor leave the old `logits.h5` for `predict`, and old checkpoints left in
    /// place would rank as newer than the run's own. Returns the directory and the number of
    /// checkpoints and names of the files moved, or nil when there was nothing to move.
    public static func moveAside(runDirectory: String) throws -> (directory: String, checkpoints: Int, files: [String])? {
        let manager = FileManager.default
        let checkpoints = CheckpointDirectory(runDirectory: runDirectory)
        let checkpointCount = checkpoints.files().count
        let outputs = descriptions.map { $0.name }.filter {
            manager.fileExists(atPath: (runDirectory as NSString).appendingPathComponent($0))
        }
        guard checkpointCount > 0 || !outputs.isEmpty else { return nil }
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        let aside = (runDirectory as NSString).appendingPathComponent("replaced-" + formatter.string(from: Date()))
        do {
            try manager.createDirectory(atPath: aside, withIntermediateDirectories: false)
            if manager.fileExists(atPath: checkpoints.path) {
                try manager.moveItem(atPath: checkpoints.path, toPath: (aside as NSString).appendingPathComponent("checkpoints"))
            }
            for name in outputs {
                try manager.moveItem(atPath: (runDirectory as NSString).appendingPathComponent(name),
                                     toPath: (aside as NSString).appendingPathComponent(name))
            }
            try manager.createDirectory(atPath: checkpoints.path, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.cannotWrite(path: runDirectory, reason: "could not move the previous run's files aside: \(error.localizedDescription)")
        }
        return (aside, checkpointCount, outputs)
    }
}
