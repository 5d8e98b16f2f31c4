import DistTrain
import Foundation

/// Shows training progress on rank 0: a bar redrawn in place on a terminal, or plain lines at
/// most every `lineInterval` seconds when the output is a file (Slurm logs, CI).
final class ProgressDisplay: TrainingObserver {
    private let interactive: Bool
    private let lineInterval: Double
    private var lastLine = Date.distantPast
    private var barVisible = false

    /// Under an MPI launcher the ranks' output goes through a pseudo-terminal even when the job's
    /// log is a file, so a redrawn bar would fill the log with escape codes: plain lines there.
    static var standardOutputIsATerminal: Bool {
        isatty(STDOUT_FILENO) != 0 && ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] == nil
    }

    init(interactive: Bool = ProgressDisplay.standardOutputIsATerminal, lineInterval: Double = 30) {
        self.interactive = interactive
        self.lineInterval = lineInterval
    }

    func phaseWillStart(_ phase: PhaseStart) {
        let name = phase.phase == 1 ? "phase I (MSDNet, Gradient Equilibrium)" : "phase II (IMTA heads: ISC + OFA)"
        var line = "\(name): \(phase.epochs) epochs x \(phase.stepsPerEpoch) steps, \(phase.trainableParameters) trainable parameters"
        if phase.firstEpoch > 0 || phase.firstStep > 0 {
            line += ", resuming at epoch \(phase.firstEpoch + 1) step \(phase.firstStep)"
        }
        emit(line)
    }

    func stepDidFinish(_ step: StepReport) {
        let accuracy = step.exitAccuracy.map { String(format: "%.1f", $0) }.joined(separator: " ")
        let status = String(format: "p%d e%d/%d %@ %d/%d  %.0f img/s  loss %.3f  lr %.4g  acc [%@]  wait %.1fs",
                            step.phase, step.epoch + 1, step.epochs, bar(Double(step.step) / Double(step.stepsPerEpoch)),
                            step.step, step.stepsPerEpoch, step.imagesPerSecond, step.loss, step.learningRate,
                            accuracy, step.dataWaitSeconds)
        if interactive {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + status).utf8))
            barVisible = true
        } else if Date().timeIntervalSince(lastLine) >= lineInterval {
            lastLine = Date()
            print(status)
            fflush(nil)  // every output stream; Swift 6 forbids touching the global `stdout`
        }
    }

    func epochDidFinish(_ epoch: EpochReport) {
        let train = epoch.trainingAccuracy.map { String(format: "%.2f", $0) }.joined(separator: " ")
        let validation = epoch.validationAccuracy.map { String(format: "%.2f", $0) }.joined(separator: " ")
        emit(String(format: "phase %d epoch %d/%d  %.0fs  %.0f img/s  data wait %.1fs  loss %.4f  lr %.4g\n  train acc [%@]\n  val acc   [%@]",
                    epoch.phase, epoch.epoch + 1, epoch.epochs, epoch.seconds, epoch.imagesPerSecond,
                    epoch.dataWaitSeconds, epoch.trainingLoss, epoch.learningRate, train, validation))
    }

    func note(_ message: String) {
        emit(message)
    }

    private func emit(_ line: String) {
        if barVisible {
            FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8))
            barVisible = false
        }
        print(line)
        fflush(nil)  // every output stream; Swift 6 forbids touching the global `stdout`
    }

    private func bar(_ fraction: Double) -> String {
        let width = 20
        let filled = max(0, min(width, Int((fraction * Double(width)).rounded(.down))))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }
}
