import ArgumentParser
import Communication
import DistTrain
import Evaluation
import Foundation
import Model
import Storage

/// Runs the trainer for `train` and `eval`: rank 0 shows progress and the outcome; any failure
/// ends every rank with one line on standard error and status 1. A stop request ends `train`
/// with status 0 (it resumes) and `eval` with `evaluationStoppedStatus` (nothing was evaluated). A stalled rank cannot take part
/// in an orderly exit, so the rank that names it aborts the whole job (`MPI_Abort`, status 1).
enum TrainingSession {
    /// `eval`'s status when a stop request ended it before the evaluation was written.
    static let evaluationStoppedStatus: Int32 = 3

    static func run(_ path: String, options: TrainerOptions) throws {
        // First, before MPI starts: a stop signal that arrives while the job starts up must be a
        // request, not the signal's default action (which kills the rank with a failure status).
        let stopRequest = StopRequest()
        stopRequest.install()
        let communicator = try Communicator.world()
        let configuration = try RunFile.load(path, communicator: communicator)
        let display = ProgressDisplay()
        do {
            let trainer = try Trainer(configuration: configuration, communicator: communicator, observer: display,
                                      stopRequest: stopRequest, options: options)
            let summary = try trainer.run()
            if communicator.isRoot { report(summary, configuration: configuration, evaluationOnly: options.evaluationOnly) }
            if summary.stopped && options.evaluationOnly { throw ExitCode(evaluationStoppedStatus) }
        } catch let exit as ExitCode {
            throw exit
        } catch let stall as StalledRanks {
            FileHandle.standardError.write(Data("error: \(stall)\n".utf8))
            communicator.abort(code: ExitCode.failure.rawValue)
        } catch {
            if communicator.isRoot {
                FileHandle.standardError.write(Data("error: \(readableReason(error))\n".utf8))
            } else if !(error is CollectiveError) {
                FileHandle.standardError.write(Data("error: rank \(communicator.rank): \(readableReason(error))\n".utf8))
            }
            throw ExitCode.failure
        }
    }

    private static func report(_ summary: RunSummary, configuration: RunConfiguration, evaluationOnly: Bool) {
        if summary.stopped {
            let checkpointNote = summary.lastCheckpoint.map { " (\($0))" } ?? ""
            if evaluationOnly {
                print("stopped during \(summary.interruptedEvaluation ?? "the start"); nothing of the evaluation was written; run the same command to evaluate")
            } else if let task = summary.interruptedEvaluation {
                print("stopped during \(task): training is complete and checkpointed\(checkpointNote); run the same command to redo only the evaluation")
            } else if let checkpoint = summary.lastCheckpoint {
                print("stopped after a checkpoint (\(checkpoint)); run the same command to continue")
            } else {
                print("stopped before training started; nothing written; run the same command to start")
            }
            return
        }
        func line(_ label: String, _ values: [Double]?) {
            guard let values else { return }
            print(label + values.map { String(format: "%6.2f", $0) }.joined(separator: " "))
        }
        print("exit MADDs (M):           " + summary.exitCosts.map { String(format: "%6.2f", Double($0.multiplyAdds) / 1e6) }.joined(separator: " "))
        line("test accuracy, phase I:   ", summary.phase1TestAccuracy)
        line("test accuracy, phase II:  ", summary.phase2TestAccuracy)
        if !summary.anytime.isEmpty { print(AnytimeReport.table(summary.anytime)) }
        if !summary.budgets.isEmpty {
            print(BudgetReport.table(summary.budgets))
        } else if !summary.anytime.isEmpty {
            print(Trainer.noHoldoutReason)
        }
        if !summary.earlyExit.isEmpty {
            print(EarlyExitMeasurement.table(summary.earlyExit, threads: ComputeThreads.count,
                                             batchSize: configuration.evaluation.batchSize))
        }
        print(RunFiles.listing(runDirectory: configuration.resolvedRunDirectory))
        // A run that trained nothing (eval, or a resume with nothing left) has no training rate.
        let rate = summary.trainingImagesPerSecond > 0
            ? String(format: ", training %.0f images/s", summary.trainingImagesPerSecond) : ""
        print(String(format: "wall time %.0f s", summary.wallSeconds) + rate)
    }
}
