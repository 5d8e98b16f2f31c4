import DataPipeline
import Foundation
import Model

/// Choosing, restoring and writing checkpoints, and keeping BatchNorm statistics consistent
/// across ranks around them.
extension Trainer {
    struct Restored {
        var position: (phase: Int, epoch: Int, step: Int)
        var validationIndices: [Int]
    }

    func restoreCheckpoint(
        backbone: MSDNet, backboneOptimizer: SGD, buildHeads: () -> (IMTANetwork, SGD)
    ) throws -> Restored? {
        var outcome: (phase: Int, epoch: Int, step: Int, indices: [Int])?
        try onRootThenShare {
            outcome = try chooseAndRestore(backbone: backbone, backboneOptimizer: backboneOptimizer, buildHeads: buildHeads)
        }
        let header = try communicator.broadcast(
            outcome.map { [1, Int64($0.phase), Int64($0.epoch), Int64($0.step)] } ?? [0, 0, 0, 0], from: 0)
        guard header[0] == 1 else { return nil }
        // The momentum buffer arrives by broadcast; every rank, not only the one that read it,
        // must then continue it rather than start it afresh (SGD's first-step rule).
        (header[1] == 2 ? buildHeads().1 : backboneOptimizer).momentumBufferInitialized = true
        let indices = try communicator.broadcast((outcome?.indices ?? []).map { Int64($0) }, from: 0)
        return Restored(position: (Int(header[1]), Int(header[2]), Int(header[3])), validationIndices: indices.map { Int($0) })
    }

    func chooseAndRestore(
        backbone: MSDNet, backboneOptimizer: SGD, buildHeads: () -> (IMTANetwork, SGD)
    ) throws -> (phase: Int, epoch: Int, step: Int, indices: [Int])? {
        let candidates: [String]
        switch options.resume {
        case .fresh:
            // The previous run's files were moved aside with the run directory's preparation.
            return nil
        case let .checkpoint(path):
            guard FileManager.default.fileExists(atPath: path) else { throw TrainingError.missingCheckpoint(path: path) }
            candidates = [path]
        case .automatic:
            candidates = checkpoints.files()
        }
        for path in candidates {
            do {
                let metadata = try Checkpoint.metadata(at: path)
                try checkPosition(metadata, path: path)
                try checkCompatibility(metadata, path: path)
                var model = backbone.stateTensors
                var momentum = backboneOptimizer.momentumTensors
                if metadata.phase == 2 {
                    let (heads, headsOptimizer) = buildHeads()
                    model = heads.stateTensors
                    momentum = headsOptimizer.momentumTensors
                }
                let restored = try Checkpoint.restore(from: path, model: model, momentum: momentum)
                if metadata.worldSize != communicator.size {
                    observer?.note("\(path) was written by \(metadata.worldSize) rank(s), this run has \(communicator.size): same global batches, split differently, so BatchNorm sees other slices and the continuation is not bit-exact")
                }
                observer?.note("resuming from \(path) (phase \(metadata.phase), \(metadata.epoch) epoch(s) done, step \(metadata.step))")
                lastCheckpoint = path
                return (metadata.phase, metadata.epoch, metadata.step, restored.validationIndices)
            } catch let error as TrainingError {
                if case .incompatibleCheckpoint = error { throw error }
                if case .checkpoint = options.resume { throw error }
                observer?.note("skipping \(error); trying the one before it")
            }
        }
        if !candidates.isEmpty {
            observer?.note("no checkpoint in \(checkpoints.path) could be read; starting fresh")
        }
        return nil
    }

    /// Refuses a checkpoint whose position is not one this run's schedule can reach: phase 1 or
    /// 2, epoch in 0...that phase's epochs (`eval` trains nothing, so there only epoch >= 0),
    /// step >= 0 (and 0 after the last epoch), worldSize >= 1. The step's upper bound, the steps
    /// per epoch, is known once the data set is open (`checkStep`).
    func checkPosition(_ metadata: CheckpointMetadata, path: String) throws {
        func refuse(_ attribute: String, _ value: Int, _ expected: String) -> TrainingError {
            .checkpointOutOfRange(path: path, attribute: attribute, value: value, expected: expected)
        }
        guard metadata.phase == 1 || metadata.phase == 2 else { throw refuse("phase", metadata.phase, "1 or 2") }
        let epochs = metadata.phase == 1 ? configuration.phase1.epochs : configuration.phase2.epochs
        if options.evaluationOnly {
            guard metadata.epoch >= 0 else { throw refuse("epoch", metadata.epoch, "at least 0") }
        } else {
            guard (0...epochs).contains(metadata.epoch) else {
                throw refuse("epoch", metadata.epoch, "0...\(epochs) (phase\(metadata.phase).epochs)")
            }
            guard metadata.step == 0 || metadata.epoch < epochs else {
                throw refuse("step", metadata.step, "0 once all phase\(metadata.phase).epochs = \(epochs) are done")
            }
        }
        guard metadata.step >= 0 else { throw refuse("step", metadata.step, "at least 0") }
        guard metadata.worldSize >= 1 else { throw refuse("worldSize", metadata.worldSize, "at least 1") }
    }

    /// Refuses a restored position whose step lies beyond the epoch (the check `checkPosition`
    /// cannot make before the data set is open).
    func checkStep(_ position: (phase: Int, epoch: Int, step: Int), data: TrainingData) throws {
        let settings = position.phase == 1 ? configuration.phase1 : configuration.phase2
        let steps = data.trainingStepsPerEpoch(globalBatchSize: settings.batchSize)
        guard position.step < max(steps, 1) else {
            throw TrainingError.checkpointOutOfRange(path: lastCheckpoint ?? checkpoints.path, attribute: "step", value: position.step,
                                                     expected: "0..<\(steps) (the steps per epoch of phase\(position.phase))")
        }
    }

    /// Refuses a checkpoint whose model (or data set, or GE setting) differs from this run's.
    /// `model.initialization` is not compared: it only draws the weights a checkpoint replaces.
    func checkCompatibility(_ metadata: CheckpointMetadata, path: String) throws {
        guard let saved = try? JSONSerialization.jsonObject(with: Data(metadata.configuration.utf8)) as? [String: Any],
              let current = try? JSONSerialization.jsonObject(with: Data(configurationJSON.utf8)) as? [String: Any] else {
            throw TrainingError.unreadableCheckpoint(path: path, reason: "attribute config is not a JSON object")
        }
        func value(_ object: [String: Any], _ keyPath: [String]) -> String {
            var node: Any? = object
            for key in keyPath { node = (node as? [String: Any])?[key] }
            guard let node else { return "(absent)" }
            if let data = try? JSONSerialization.data(withJSONObject: node, options: [.sortedKeys, .fragmentsAllowed]) {
                return String(decoding: data, as: UTF8.self)
            }
            return "\(node)"
        }
        let modelKeys = Set(((saved["model"] as? [String: Any]) ?? [:]).keys).union(((current["model"] as? [String: Any]) ?? [:]).keys)
            .subtracting(["initialization"])
        let keyPaths = modelKeys.sorted().map { ["model", $0] } + [["gradientEquilibrium"], ["data", "dataset"]]
        for keyPath in keyPaths {
            let before = value(saved, keyPath), now = value(current, keyPath)
            if before != now {
                throw TrainingError.incompatibleCheckpoint(path: path, key: keyPath.joined(separator: "."),
                                                           checkpointValue: before, runValue: now)
            }
        }
    }

    /// Every rank adopts the BatchNorm running statistics averaged over the ranks, then rank 0
    /// writes a checkpoint of `network` and prunes old ones. Adopting (rather than averaging a
    /// copy) makes every rank hold exactly the state written, so a run resumed from it continues
    /// bit for bit as the uninterrupted run does.
    func writeCheckpoint(phase: Int, epoch: Int, step: Int, network: TrainableNetwork, optimizer: SGD,
                                 validationIndices: [Int]) throws -> String {
        let metadata = CheckpointMetadata(phase: phase, epoch: epoch, step: step, worldSize: communicator.size,
                                          seed: configuration.seed, configuration: configurationJSON)
        let path = (checkpoints.path as NSString).appendingPathComponent(metadata.fileName)
        try averageBatchNormStatistics(network)
        try onRootThenShare {
            try Checkpoint.write(to: path, metadata: metadata, model: network.stateTensors,
                                 momentum: optimizer.momentumTensors, validationIndices: validationIndices)
            checkpoints.prune(keep: configuration.checkpoint.keep)
        }
        lastCheckpoint = path
        return path
    }

    /// Replaces every rank's BatchNorm running statistics by their mean over the ranks: one
    /// all-reduce per contiguous arena, not one per tensor.
    func averageBatchNormStatistics(_ network: TrainableNetwork) throws {
        guard communicator.size > 1 else { return }
        for arena in network.runningStatistics {
            try communicator.allReduceAverage(UnsafeMutableBufferPointer(start: arena.values, count: arena.count))
        }
    }

    func broadcastState(_ tensors: [NamedTensor]) throws {
        guard communicator.size > 1 else { return }
        for tensor in tensors {
            switch tensor.storage {
            case let .float(pointer):
                try communicator.broadcast(UnsafeMutableBufferPointer(start: pointer, count: tensor.count), from: 0)
            case let .int64(pointer):
                try communicator.broadcast(UnsafeMutableBufferPointer(start: pointer, count: 1), from: 0)
            }
        }
    }
}
