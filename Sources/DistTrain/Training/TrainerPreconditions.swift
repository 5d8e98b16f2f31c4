import Foundation

/// What must hold before a run touches its run directory.
extension Trainer {
    /// `eval` restores a checkpoint and trains nothing, so without one there is nothing to
    /// evaluate: refused before the run directory is created. Rank 0 looks (it is the rank that
    /// reads checkpoints); every rank learns the answer.
    func requireCheckpointToEvaluate() throws {
        var present = true
        if communicator.isRoot, case .automatic = options.resume { present = !checkpoints.files().isEmpty }
        guard try communicator.broadcast(present ? 1 : 0, from: 0) == 1 else {
            throw TrainingError.nothingToEvaluate(checkpointDirectory: checkpoints.path)
        }
    }
}
