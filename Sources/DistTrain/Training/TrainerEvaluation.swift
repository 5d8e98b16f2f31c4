import DataPipeline
import Evaluation
import Foundation
import Model

/// Per-exit accuracy on a split, and the budgeted evaluation: exit probabilities gathered to rank
/// 0, `logits.h5`, thresholds and the budget curve.
extension Trainer {
    /// Per-exit class probabilities of this rank's slice of `split`, `[exit][sample * classes + class]`.
    func localProbabilities(_ network: TrainableNetwork, data: TrainingData,
                                    split: EvaluationSplit) throws -> (probabilities: [[Float]], count: Int) {
        let classes = network.classCount, exits = network.exitCount
        let batchSize = min(configuration.evaluation.batchSize, network.maximumBatchSize)
        let stream = data.evaluationBatches(split: split, batchSize: batchSize, rank: communicator.rank,
                                            worldSize: communicator.size)
        var probabilities = [[Float]](repeating: [], count: exits)
        for exit in 0..<exits { probabilities[exit].reserveCapacity(stream.sampleCount * classes) }
        let logits = (0..<exits).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: batchSize * classes) }
        defer { logits.forEach { $0.deallocate() } }
        var count = 0
        try forEachBatch(of: stream, interrupting: split == .validation ? "the budgeted evaluation (validation hold-out)"
                                                                        : "the budgeted evaluation (test set)") { batch in
            network.predict(images: batch.images, count: batch.count, logits: logits)
            for exit in 0..<exits {
                for row in 0..<batch.count {
                    appendSoftmax(logits[exit] + row * classes, classes: classes, to: &probabilities[exit])
                }
            }
            count += batch.count
        }
        return (probabilities, count)
    }

    /// The probabilities early exit decides on (`ExitConfidence`), so the two agree bit for bit.
    func appendSoftmax(_ logits: UnsafePointer<Float>, classes: Int, to output: inout [Float]) {
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: classes))
        output.withUnsafeMutableBufferPointer { buffer in
            ExitConfidence.probabilities(logits: logits, classes: classes, output: buffer.baseAddress! + start)
        }
    }

    /// Top-1 accuracy (percent) per exit on `split`, over every rank. With `interrupting` (what
    /// it is, for the message), a stop request ends it at the next batch (`EvaluationInterrupted`).
    func accuracy(_ network: TrainableNetwork, data: TrainingData, split: EvaluationSplit,
                  interrupting task: String? = nil) throws -> [Double] {
        let classes = network.classCount, exits = network.exitCount
        let batchSize = min(configuration.evaluation.batchSize, network.maximumBatchSize)
        let stream = data.evaluationBatches(split: split, batchSize: batchSize, rank: communicator.rank,
                                            worldSize: communicator.size)
        let logits = (0..<exits).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: batchSize * classes) }
        defer { logits.forEach { $0.deallocate() } }
        var counts = [Double](repeating: 0, count: exits + 1)
        try forEachBatch(of: stream, interrupting: task) { batch in
            network.predict(images: batch.images, count: batch.count, logits: logits)
            for exit in 0..<exits {
                for row in 0..<batch.count where Argmax.index(logits[exit] + row * classes, count: classes) == Int(batch.labels[row]) {
                    counts[exit] += 1
                }
            }
            counts[exits] += Double(batch.count)
        }
        try communicator.allReduce(&counts, .sum)
        return (0..<exits).map { 100 * counts[$0] / max(counts[exits], 1) }
    }

    /// Per-exit test accuracy; a stop request ends it at the next batch (`EvaluationInterrupted`).
    func testAccuracy(_ network: TrainableNetwork, data: TrainingData, of task: String) throws -> [Double] {
        // A stalled rank is named with the task, not the last training step or "setting up" (`eval`).
        communicator.stallWatch?.position = task
        observer?.note("computing \(task)")
        return try accuracy(network, data: data, split: .test, interrupting: task)
    }

    /// Runs `body` on every batch of `stream`. With `task`, every rank first learns (one small
    /// all-reduce per batch) whether any rank has a stop request, which ends the loop on every
    /// rank with `EvaluationInterrupted`, and whether any rank still has a batch: the ranks'
    /// slices can differ by one batch, and all of them must take part in every all-reduce.
    func forEachBatch(of stream: BatchStream, interrupting task: String?, _ body: (Batch) throws -> Void) throws {
        guard let task else {
            while let batch = try stream.next() { try body(batch) }
            return
        }
        while true {
            let batch = try stream.next()
            var flags: [Int64] = [stopRequest.isRequested ? 1 : 0, batch == nil ? 0 : 1]
            try communicator.allReduce(&flags, .sum)
            if flags[0] > 0 { throw EvaluationInterrupted(task: task) }
            if flags[1] == 0 { return }
            if let batch { try body(batch) }
        }
    }

    /// Why a run without a validation hold-out has no budget curve.
    public static let noHoldoutReason = "budgeted evaluation skipped: data.validationHoldout is 0 (the anytime setting), so there is no hold-out to choose the exit thresholds on; anytime.csv has every exit's test accuracy"

    /// Every rank computes exit probabilities of its slice of the validation hold-out and the test
    /// set; rank 0 gathers them, writes `logits.h5` and runs the budgeted evaluation.
    /// Also writes the anytime table (`anytime.csv`, per-exit top-1 and top-5 of the test set).
    /// With `options.measureEarlyExit`, rank 0 then times early exit (`early-exit.csv`).
    func evaluate(_ network: TrainableNetwork, data: TrainingData, exitCosts: [ExitCost]) throws
        -> (budgets: [BudgetedEvaluation.BudgetPoint], anytime: [AnytimeReport.ExitRow], earlyExit: [EarlyExitMeasurement]) {
        let validation = try gatherProbabilities(network, data: data, split: .validation)
        let test = try gatherProbabilities(network, data: data, split: .test)
        var points: [BudgetedEvaluation.BudgetPoint] = []
        var anytime: [AnytimeReport.ExitRow] = []
        var measured: [EarlyExitMeasurement] = []
        try onRootThenShare {
            guard let validation, let test else { return }
            let madds = exitCosts.map { Double($0.multiplyAdds) }
            try ExitLogits.write(to: (runDirectory as NSString).appendingPathComponent("logits.h5"),
                                 validation: validation, test: test, exitCosts: exitCosts)
            anytime = AnytimeReport.rows(test, exitCosts: exitCosts)
            try ReportFile.write(AnytimeReport.csv(anytime), to: (runDirectory as NSString).appendingPathComponent("anytime.csv"))
            if validation.sampleCount == 0 {
                try ReportFile.write(BudgetReport.plot([], anytime: anytime),
                                     to: (runDirectory as NSString).appendingPathComponent("budgets.svg"))
            } else {
                points = BudgetedEvaluation.evaluate(validation: validation, test: test, exitMADDs: madds,
                                                     budgets: BudgetedEvaluation.budgetGrid(count: configuration.evaluation.budgets))
                try BudgetReport.write(points, anytime: anytime, runDirectory: runDirectory)
            }
            if options.measureEarlyExit {
                let batchSize = min(configuration.evaluation.batchSize, network.maximumBatchSize)
                observer?.note("timing early exit on the test set (full network and \(EarlyExitMeasurement.chooseBudgets(points).count) budgets)")
                measured = try EarlyExitMeasurement.measure(
                    network: network,
                    batches: data.evaluationBatches(split: .test, batchSize: batchSize, rank: 0, worldSize: 1),
                    budgets: EarlyExitMeasurement.chooseBudgets(points), test: test, exitMADDs: madds)
                try ReportFile.write(EarlyExitMeasurement.csv(measured),
                                     to: (runDirectory as NSString).appendingPathComponent("early-exit.csv"))
            }
        }
        return (points, anytime, measured)
    }

    func gatherProbabilities(_ network: TrainableNetwork, data: TrainingData,
                                     split: EvaluationSplit) throws -> BudgetedEvaluation.ExitProbabilities? {
        let exits = network.exitCount, classes = network.classCount
        let local = try localProbabilities(network, data: data, split: split)
        let counts = try communicator.allGather(Int64(local.count))
        let flat = local.probabilities.flatMap { $0 }
        guard let gathered = try communicator.gather(flat, to: 0) else { return nil }
        // Rank r's block is [exit, its samples, class]; interleave into [exit, all samples, class].
        let total = counts.reduce(0) { $0 + Int($1) }
        var values = [Float](repeating: 0, count: exits * total * classes)
        var blockStart = 0, sampleStart = 0
        for rankCount in counts.map({ Int($0) }) {
            for exit in 0..<exits {
                let source = blockStart + exit * rankCount * classes
                let destination = (exit * total + sampleStart) * classes
                values[destination..<(destination + rankCount * classes)] = gathered[source..<(source + rankCount * classes)]
            }
            blockStart += exits * rankCount * classes
            sampleStart += rankCount
        }
        return BudgetedEvaluation.ExitProbabilities(exitCount: exits, sampleCount: total, classCount: classes,
                                                     values: values, labels: data.labels(of: split).map { Int($0) })
    }

    func formatted(_ accuracies: [Double]) -> String {
        accuracies.map { String(format: "%.2f", $0) }.joined(separator: "  ")
    }
}

/// A stop request ended an evaluation at a batch boundary; every rank throws it together.
struct EvaluationInterrupted: CollectiveError, CustomStringConvertible {
    /// What was interrupted, e.g. "the budgeted evaluation (test set)".
    var task: String
    var description: String { "stop requested during \(task)" }
}
