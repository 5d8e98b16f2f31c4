/// An error that every rank raises identically (decided from collective results or reported by
/// rank 0 to all), so one rank printing it is enough.
public protocol CollectiveError: Error {}

/// Why a training run stopped or refused to start, with what the user needs to fix it.
public enum TrainingError: CollectiveError, CustomStringConvertible, Equatable {
    /// A file or directory of the run could not be written.
    case cannotWrite(path: String, reason: String)
    /// The loss became NaN or infinite; the last good checkpoint (`lastCheckpoint`, the one this
    /// run restored or wrote last, if any) is kept.
    case nonFiniteLoss(phase: Int, epoch: Int, step: Int, exit: Int, value: Double, lastCheckpoint: String?)
    /// A checkpoint was written for a different model or data configuration.
    case incompatibleCheckpoint(path: String, key: String, checkpointValue: String, runValue: String)
    /// A checkpoint cannot be read, or fails its checksums.
    case unreadableCheckpoint(path: String, reason: String)
    /// A checkpoint's position attribute (`phase`, `epoch`, `step`, `worldSize`) is outside what
    /// this run's schedule allows: the file was edited or damaged.
    case checkpointOutOfRange(path: String, attribute: String, value: Int, expected: String)
    /// `--resume PATH` named a checkpoint that does not exist.
    case missingCheckpoint(path: String)
    /// Another live process holds the run directory's lock (`holder`: its pid and host).
    case runDirectoryInUse(path: String, holder: String)
    /// `eval` found no checkpoint to restore.
    case nothingToEvaluate(checkpointDirectory: String)
    /// A weight, momentum or BatchNorm statistic became NaN or infinite, so the checkpoint at
    /// `path` was not written.
    case nonFiniteState(path: String, phase: Int, tensor: String, value: Float)

    public var description: String {
        switch self {
        case let .cannotWrite(path, reason):
            return "\(path): cannot write: \(reason)"
        case let .nonFiniteLoss(phase, epoch, step, exit, value, lastCheckpoint):
            let rerun = lastCheckpoint.map { "a plain rerun resumes from \($0), the last good checkpoint" }
                ?? "no checkpoint was written, so a plain rerun starts over"
            return "phase \(phase), epoch \(epoch + 1), step \(step + 1): the loss of exit \(exit) is \(value); stopping (\(rerun); first fix the cause in the run file: \(Self.divergenceSuspects(phase: phase)))"
        case let .incompatibleCheckpoint(path, key, checkpointValue, runValue):
            return "\(path): checkpoint was written with \(key) = \(checkpointValue), but this run has \(key) = \(runValue) (use --fresh to start over, or restore the original config)"
        case let .unreadableCheckpoint(path, reason):
            return "\(path): unreadable checkpoint: \(reason)"
        case let .checkpointOutOfRange(path, attribute, value, expected):
            return "\(path): checkpoint attribute \(attribute) = \(value), expected \(expected)"
        case let .missingCheckpoint(path):
            return "\(path): no such checkpoint"
        case let .runDirectoryInUse(path, holder):
            return "\(path): in use by another run (\(holder), holding \(path)/.lock); wait for it to end or stop it"
        case let .nothingToEvaluate(checkpointDirectory):
            return "\(checkpointDirectory): no checkpoint to evaluate; train first (disttrain train CONFIG) or name one with --checkpoint PATH"
        case let .nonFiniteState(path, phase, tensor, value):
            return "\(path): not written: \(tensor) holds \(value), training diverged; stopping (no checkpoint holds it: a plain rerun resumes from the newest checkpoint, or starts over if there is none; first fix the cause in the run file: \(Self.divergenceSuspects(phase: phase)))"
        }
    }

    /// The run-file settings that make training diverge in `phase`.
    static func divergenceSuspects(phase: Int) -> String {
        phase == 2 ? "phase2.lr too high, or ofa.temperature too small" : "phase1.lr too high"
    }
}
