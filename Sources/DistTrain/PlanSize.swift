import DataPipeline
import Foundation
import Model
import Storage

/// The sizes a run file implies, checked before anything is allocated or written: the network's
/// memory per rank against the machine's, the validation hold-out against the training set, and
/// each global batch against the training samples left after the hold-out.
extension RunConfiguration {
    /// Refuses (as `ConfigurationError`, naming the key and the limit) what this machine cannot
    /// hold or the data cannot fill. `memoryBytes` is the memory one rank may use.
    func validateSizes(worldSize: Int, file: String, memoryBytes: Int = MachineMemory.bytesPerRank()) throws {
        try validateCounts(file: file)
        try validateMemory(worldSize: worldSize, file: file, memoryBytes: memoryBytes)
        try validateDataSplit(file: file)
    }

    /// Thread counts start threads and budgets are evaluated one by one: beyond these limits
    /// a value is a typo, and would exhaust the process before any check of its own.
    func validateCounts(file: String) throws {
        let limits: [(String, Int?, Int)] = [
            ("threadsPerRank", threadsPerRank, 1024), ("data.workers", data.workers, 1024),
            ("evaluation.budgets", evaluation.budgets, 100_000),
        ]
        for (key, value, limit) in limits {
            if let value, value > limit {
                throw ConfigurationError.invalidValue(file: file, keyPath: key, expected: "at most \(limit)", got: String(value))
            }
        }
    }

    /// The network's activations for the largest batch any rank runs, and its parameters with
    /// their gradients and momentum, must fit in the memory of one rank.
    func validateMemory(worldSize: Int, file: String, memoryBytes: Int) throws {
        try validateMemory(batches: [("phase1.batchSize", phase1.batchSize / worldSize, phase1.batchSize),
                                     ("phase2.batchSize", phase2.batchSize / worldSize, phase2.batchSize),
                                     ("evaluation.batchSize", evaluation.batchSize, evaluation.batchSize)],
                           file: file, memoryBytes: memoryBytes)
    }

    /// The check of `validateSizes` for a per-rank batch given on the command line (`bench
    /// --batch-size`) instead of the run file's; the error names `option` as its key.
    public func validateMemory(batchSize: Int, option: String, file: String,
                               memoryBytes: Int = MachineMemory.bytesPerRank()) throws {
        try validateMemory(batches: [(option, batchSize, batchSize)], file: file, memoryBytes: memoryBytes)
    }

    /// `batches` are (key, images one rank runs, value as written).
    private func validateMemory(batches: [(key: String, perRank: Int, written: Int)], file: String, memoryBytes: Int) throws {
        // As the trainer plans it: one set of activations for the largest batch any rank runs.
        let largest = batches.max { $0.perRank < $1.perRank }!
        let estimate = ResourceEstimate(model, batchSize: max(largest.perRank, 1), budget: memoryBytes,
                                        imageShards: ImageShards.count(threads: resolvedThreadsPerRank, maximumBatchSize: largest.perRank))
        guard estimate.exceedsBudget else { return }
        let limit = "this machine has \(Self.formatted(bytes: memoryBytes)) per rank"
        let atOne = ResourceEstimate(model, batchSize: 1, budget: memoryBytes)
        if !atOne.exceedsBudget {
            throw ConfigurationError.invalidValue(
                file: file, keyPath: largest.key, expected: "a batch whose activations fit in memory (\(limit))",
                got: "\(largest.written), which needs \(Self.formatted(bytes: estimate.activationBytes)) for activations")
        }
        let (key, value) = culprit(memoryBytes: memoryBytes)
        // The estimate stopped once past the limit: its figures are lower bounds.
        let needs = atOne.totalBytes == .max ? "more than 8 EB"
            : "at least \(Self.formatted(bytes: atOne.totalBytes)) (\(Self.formatted(bytes: atOne.parameterBytes)) for parameters, "
              + "\(Self.formatted(bytes: atOne.activationBytes)) for activations at one image per batch)"
        throw ConfigurationError.invalidValue(
            file: file, keyPath: "model.\(key)", expected: "a network that fits in memory (\(limit))",
            got: "\(value), which needs \(needs)")
    }

    /// The model key whose reduction to its smallest value shrinks the network the most: the one
    /// a user most likely mistyped.
    private func culprit(memoryBytes: Int) -> (key: String, value: String) {
        let ones = [Int](repeating: 1, count: model.grFactor.count)
        let reductions: [(String, String, (inout MSDNetConfiguration) -> Void)] = [
            ("nBlocks", "\(model.nBlocks)", { $0.nBlocks = 1 }),
            ("nChannels", "\(model.nChannels)", { $0.nChannels = 1 }),
            ("growthRate", "\(model.growthRate)", { $0.growthRate = 1 }),
            ("step", "\(model.step)", { $0.step = 1 }),
            ("base", "\(model.base)", { $0.base = 1 }),
            ("classes", "\(model.classes)", { $0.classes = 2 }),
            ("inputSize", "\(model.inputSize)", { $0.inputSize = 32 }),
            ("grFactor", JSONValue.array(model.grFactor.map(JSONValue.integer)).quoted, { $0.grFactor = ones }),
            ("bnFactor", JSONValue.array(model.bnFactor.map(JSONValue.integer)).quoted, { $0.bnFactor = ones }),
        ]
        let scored = reductions.map { key, value, reduce -> (String, String, Int) in
            var reduced = model
            reduce(&reduced)
            return (key, value, ResourceEstimate(reduced, batchSize: 1, budget: memoryBytes).totalBytes)
        }
        let best = scored.min { $0.2 < $1.2 }!
        return (best.0, best.1)
    }

    /// The hold-out must leave training samples, and every phase that runs needs at least one
    /// global batch of them. For ImageNet shards the size is known only as `limitTrain`, an upper
    /// bound, so only what that bound already rules out is refused here.
    func validateDataSplit(file: String) throws {
        let known = [data.dataset.trainingImages, data.limitTrain].compactMap { $0 }
        guard let trainingImages = known.min() else { return }
        let source = data.limitTrain == trainingImages ? "data.limitTrain" : "the \(data.dataset.rawValue) training set"
        let holdout = data.validationHoldout ?? TrainingData.defaultValidationHoldout(data.dataset)
        guard holdout < trainingImages else {
            throw ConfigurationError.invalidValue(
                file: file, keyPath: "data.validationHoldout",
                expected: "fewer than the \(trainingImages) training images of \(source)",
                got: data.validationHoldout.map(String.init) ?? "\(holdout) (the default)")
        }
        let left = trainingImages - holdout
        for (key, phase) in [("phase1", phase1), ("phase2", phase2)] where phase.epochs > 0 && phase.batchSize > left {
            throw ConfigurationError.invalidValue(
                file: file, keyPath: "\(key).batchSize",
                expected: "at most the \(left) training images left after a validation hold-out of \(holdout) (\(source) has \(trainingImages))",
                got: String(phase.batchSize))
        }
    }

    /// Bytes in binary units ("147 TB", "23.5 GB"); a saturated count reads "more than 8 EB".
    static func formatted(bytes: Int) -> String {
        if bytes == .max { return "more than 8 EB" }
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) bytes" : String(format: value < 10 ? "%.1f %@" : "%.0f %@", value, units[unit])
    }
}
