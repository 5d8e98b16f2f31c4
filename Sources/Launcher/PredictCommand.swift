import ArgumentParser
import DistTrain
import Evaluation
import Foundation
import Model

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify JPEG or PNG files, or the samples of a data shard, with early exit at budget p.",
        discussion: """
            Restores the newest checkpoint of runDir (or --checkpoint) and chooses the exit thresholds \
            of budget p on the run's validation hold-out (logits.h5, written by train or eval), as the \
            budgeted evaluation does. Each input runs block by block and leaves at the first exit whose \
            confidence reaches its threshold; one line per image: class, confidence, exit. Inputs are \
            preprocessed as evaluation does: MNIST, Fashion-MNIST and CIFAR files must have the data set's \
            image size (28x28, 32x32); ImageNet files are resized and centre-cropped. A file that cannot be \
            read gets one line saying why and the others still run; the status is then 1.
            """
    )

    @Argument(help: ArgumentHelp("The JSON run file of the trained run.", valueName: "config"))
    var configurationPath: String

    @Option(help: ArgumentHelp("Use this checkpoint instead of the newest one in runDir.", valueName: "path"))
    var checkpoint: String?

    @Option(help: ArgumentHelp("Budget p of the budgeted evaluation (0.05 ... 2 in the reference's grid): larger p sends more images to later exits.",
                               valueName: "p"))
    var budget: Double

    @Argument(help: ArgumentHelp("JPEG or PNG files, or HDF5 shards from prepare imagenet.", valueName: "files"))
    var files: [String]

    func validate() throws {
        guard budget > 0, budget.isFinite else { throw ValidationError("--budget must be a positive number, got \(budget)") }
        guard !files.isEmpty else { throw ValidationError("name at least one image file or shard") }
    }

    func run() throws {
        let configuration = try RunFile.load(configurationPath, worldSize: 1, requireDataRoot: false)
        let usable = BudgetedEvaluation.usableBudgets(exitCount: configuration.model.nBlocks)
        guard usable.contains(budget) else {
            throw ValidationError("--budget must be within \(usable.lowerBound) ... \(usable.upperBound) for this network's "
                + "\(configuration.model.nBlocks) exits (beyond it p^i overflows or underflows single precision), got \(budget)")
        }
        ComputeThreads.set(configuration.threadsPerRank ?? ProcessInfo.processInfo.activeProcessorCount)
        let predictor = try failingWithOneLine { try Predictor(configuration: configuration, checkpoint: checkpoint, budget: budget) }
        let outcomes = predictor.predict(paths: files)
        print("checkpoint \(predictor.checkpointPath), budget p = \(budget), thresholds "
            + predictor.thresholds.dropLast().map { String(format: "%.4f", $0) }.joined(separator: " ") + " (last exit takes all)")
        var failed = 0
        for outcome in outcomes {
            guard let decision = outcome.decision else {
                failed += 1
                let failure = outcome.failure ?? "not classified"
                // File-level errors name the file themselves.
                print("\(outcome.item): error: " + (failure.hasPrefix(outcome.item + ": ") ? String(failure.dropFirst(outcome.item.count + 2)) : failure))
                continue
            }
            var line = "\(outcome.item): class \(decision.predictedClass)"
            if let label = outcome.label {
                line += " (label \(label)\(outcome.className.map { " \($0)" } ?? ""))"
            }
            line += String(format: ", confidence %.4f, exit %d of 0-%d (%.2f M MADDs)", decision.confidence, decision.exit,
                           predictor.exitMADDs.count - 1, predictor.exitMADDs[decision.exit] / 1e6)
            print(line)
        }
        if failed > 0 { throw ExitCode.failure }
    }
}
