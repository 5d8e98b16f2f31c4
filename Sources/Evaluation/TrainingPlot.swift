import Foundation

/// `training.svg` from `metrics.jsonl`, like the paper's Figure 6: per-exit validation accuracy
/// (left) and training loss (right) over the epochs of both phases, phase II continuing the
/// epoch axis after phase I. Without a validation hold-out the left panel shows the per-exit
/// training accuracy instead, and says so.
public enum TrainingPlot {
    /// One epoch record of `metrics.jsonl`.
    struct EpochRecord {
        var phase: Int
        var epoch: Int
        var loss: Double
        var validationAccuracy: [Double]
        var trainingAccuracy: [Double]
    }

    /// One step record: the loss at a fraction of an epoch.
    struct StepRecord {
        var phase: Int
        var epoch: Double
        var loss: Double
    }

    /// Reads `metrics.jsonl`; when a resumed run logged an epoch again, the last record counts.
    static func read(_ path: String) throws -> (epochs: [EpochRecord], steps: [StepRecord]) {
        let text = try ReportError.readText(path)
        var epochs: [[Int]: EpochRecord] = [:]
        var steps: [[Int]: StepRecord] = [:]
        let lines = text.split(separator: "\n")
        for (index, line) in lines.enumerated() {
            guard let record = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let kind = record["kind"] as? String, let phase = record["phase"] as? Int,
                  let epoch = record["epoch"] as? Int, let loss = record["loss"] as? Double else {
                // A run killed while appending leaves its last line incomplete: plot what came before.
                if index == lines.count - 1 && !text.hasSuffix("\n") { break }
                throw ReportError.malformed(path: path, line: index + 1, expected: "a JSON record with kind, phase, epoch and loss")
            }
            if kind == "epoch" {
                epochs[[phase, epoch]] = EpochRecord(
                    phase: phase, epoch: epoch, loss: loss,
                    validationAccuracy: record["validationAccuracy"] as? [Double] ?? [],
                    trainingAccuracy: record["trainAccuracy"] as? [Double] ?? [])
            } else if kind == "step", let step = record["step"] as? Int, let perEpoch = record["stepsPerEpoch"] as? Int {
                steps[[phase, epoch, step]] = StepRecord(phase: phase, epoch: Double(epoch - 1) + Double(step) / Double(max(perEpoch, 1)),
                                                         loss: loss)
            }
        }
        return (epochs.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.value),
                steps.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.value))
    }

    /// Writes `<runDirectory>/training.svg` from `<runDirectory>/metrics.jsonl`.
    public static func write(runDirectory: String) throws {
        let (epochs, steps) = try read((runDirectory as NSString).appendingPathComponent("metrics.jsonl"))
        try ReportFile.write(svg(epochs: epochs, steps: steps), to: (runDirectory as NSString).appendingPathComponent("training.svg"))
    }

    static func svg(epochs: [EpochRecord], steps: [StepRecord]) -> String {
        // Phase II's epochs continue after the last epoch phase I logged.
        let phase1Epochs = epochs.filter { $0.phase == 1 }.map(\.epoch).max() ?? steps.filter { $0.phase == 1 }.map { Int($0.epoch.rounded(.up)) }.max() ?? 0
        func x(phase: Int, epoch: Double) -> Double { phase == 2 ? Double(phase1Epochs) + epoch : epoch }
        let hasValidation = epochs.contains { !$0.validationAccuracy.isEmpty }
        let exits = epochs.map { hasValidation ? $0.validationAccuracy.count : $0.trainingAccuracy.count }.max() ?? 0
        let accuracy = (0..<exits).map { exit in
            SVGChart.Series(
                name: "exit \(exit)",
                points: epochs.compactMap { record in
                    let values = hasValidation ? record.validationAccuracy : record.trainingAccuracy
                    return exit < values.count ? (x(phase: record.phase, epoch: Double(record.epoch)), values[exit]) : nil
                },
                color: SVGChart.color(exit), markers: true)
        }
        let phaseTwoStart = epochs.contains { $0.phase == 2 } || steps.contains { $0.phase == 2 }
        let markers: [(x: Double, label: String)] = phaseTwoStart && phase1Epochs > 0 ? [(Double(phase1Epochs), "phase II")] : []
        let accuracyChart = SVGChart(
            title: hasValidation ? "validation accuracy per exit" : "training accuracy per exit (no validation hold-out)",
            xLabel: "epoch (phase I, then phase II)", yLabel: "top-1 accuracy (%)", series: accuracy,
            verticalMarkers: markers, integerX: true)
        let lossChart = SVGChart(
            title: "training loss (phase I: sum over exits; phase II: OFA)",
            xLabel: "epoch (phase I, then phase II)", yLabel: "loss",
            series: [
                SVGChart.Series(name: "logged steps", points: steps.map { (x(phase: $0.phase, epoch: $0.epoch), $0.loss) },
                                color: "#9ecae1"),
                SVGChart.Series(name: "epoch mean", points: epochs.map { (x(phase: $0.phase, epoch: Double($0.epoch)), $0.loss) },
                                color: "#08519c", markers: true),
            ],
            verticalMarkers: markers, integerX: true)
        return SVGChart.document(width: 1100, height: 440, panels: [
            (accuracyChart, 0, 0, 550, 440), (lossChart, 550, 0, 550, 440),
        ])
    }
}
