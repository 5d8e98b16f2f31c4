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

    /// `--resume PATH` / `eval --checkpoint PATH` must name an existing regular file: refused
    /// before the run directory (lock, `checkpoints/`, `metrics.jsonl`) is created.
    func requireNamedCheckpointFile() throws {
        guard case let .checkpoint(path) = options.resume else { return }
        var problem = 0
        if communicator.isRoot {
            var status = stat()
            if stat(path, &status) != 0 {
                problem = 1
            } else if status.st_mode & S_IFMT == S_IFDIR {
                problem = 2
            } else if status.st_mode & S_IFMT != S_IFREG {
                problem = 3
            }
        }
        switch try communicator.broadcast(problem, from: 0) {
        case 1: throw TrainingError.missingCheckpoint(path: path)
        case 2: throw TrainingError.unreadableCheckpoint(path: path, reason: "is a directory, not a checkpoint file")
        case 3: throw TrainingError.unreadableCheckpoint(path: path, reason: "not a regular file")
        default: return
        }
    }
}
