import Communication
import DataPipeline
import Evaluation
import Foundation
import Model
import Storage

/// Which checkpoint a run starts from.
public enum ResumeChoice: Equatable, Sendable {
    /// The newest checkpoint of the run directory that opens and verifies, else a fresh start.
    case automatic
    /// Ignore existing checkpoints.
    case fresh
    /// This checkpoint file.
    case checkpoint(path: String)
}

/// How a run is started, beyond its configuration (command-line choices).
public struct TrainerOptions: Sendable {
    public var resume: ResumeChoice
    /// After a restore and after every step, check that every rank holds bit-identical weights,
    /// momentum and (after a restore) BatchNorm statistics (one all-gather of a checksum each time).
    public var verifyReplicas: Bool
    /// Train this many steps, then checkpoint and exit as a stop request would (time-boxed jobs).
    public var stopAfterSteps: Int?
    /// Skip any training that is left and only evaluate the restored network.
    public var evaluationOnly: Bool
    /// After the evaluation, time early exit on the test set (rank 0).
    public var measureEarlyExit: Bool

    public init(resume: ResumeChoice = .automatic, verifyReplicas: Bool = false, stopAfterSteps: Int? = nil,
                evaluationOnly: Bool = false, measureEarlyExit: Bool = false) {
        self.resume = resume
        self.verifyReplicas = verifyReplicas
        self.stopAfterSteps = stopAfterSteps
        self.evaluationOnly = evaluationOnly
        self.measureEarlyExit = measureEarlyExit
    }
}

/// What a finished (or stopped) run reports.
public struct RunSummary: Sendable {
    /// True when a stop request (SIGTERM / SIGINT) ended the run early after a checkpoint.
    public var stopped: Bool
    /// Per-exit top-1 test accuracy (percent) at the end of phase I, if phase I ended in this run.
    public var phase1TestAccuracy: [Double]?
    /// Per-exit top-1 test accuracy (percent) at the end of phase II.
    public var phase2TestAccuracy: [Double]?
    /// The budgeted evaluation, if it ran.
    public var budgets: [BudgetedEvaluation.BudgetPoint]
    /// Per-exit top-1 and top-5 test accuracy with costs, if the evaluation ran.
    public var anytime: [AnytimeReport.ExitRow] = []
    /// Early exit timed on the test set (`eval --measure`), the full network first.
    public var earlyExit: [EarlyExitMeasurement] = []
    /// Cumulative MADDs and parameters of each exit.
    public var exitCosts: [ExitCost]
    public var wallSeconds: Double
    /// Training images per second over every step this run took.
    public var trainingImagesPerSecond: Double
    public var lastCheckpoint: String?
    /// What a stop request interrupted once the training was complete (e.g. "the budgeted
    /// evaluation (test set)"); `stopped` is then true too.
    public var interruptedEvaluation: String?
}

/// The two-phase data-parallel trainer of the paper: phase I trains the MSDNet with Gradient
/// Equilibrium; phase II freezes it and trains the IMTA heads (Inline Subnetwork Collaboration +
/// One-for-all Knowledge Distillation); then rank 0 runs the budgeted evaluation.
///
/// Every rank runs the same code on its slice of each global batch; gradients are averaged over
/// the contiguous gradient arena, bucket by bucket while the backward pass still runs
/// (`GradientBuckets`), so every rank applies the same update.
public final class Trainer {
    public let configuration: RunConfiguration
    public let communicator: Communicator
    let observer: TrainingObserver?
    let stopRequest: StopRequest
    let options: TrainerOptions
    let runDirectory: String
    let checkpoints: CheckpointDirectory
    let configurationJSON: String
    var metrics: MetricsLog?
    /// Rank 0's hold on the run directory, for the run's lifetime.
    var runDirectoryLock: RunDirectoryLock?
    var lastCheckpoint: String?
    private var trainedImages = 0
    private var trainingSeconds = 0.0
    private var stepsThisRun = 0

    public init(configuration: RunConfiguration, communicator: Communicator, observer: TrainingObserver?,
                stopRequest: StopRequest, options: TrainerOptions = TrainerOptions()) throws {
        self.configuration = configuration
        self.communicator = communicator
        self.observer = communicator.isRoot ? observer : nil
        self.stopRequest = stopRequest
        self.options = options
        runDirectory = configuration.resolvedRunDirectory
        checkpoints = CheckpointDirectory(runDirectory: runDirectory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        configurationJSON = String(decoding: try encoder.encode(configuration), as: UTF8.self)
    }

    /// Runs whatever of the schedule is left, then the evaluation. A stop request during the
    /// evaluation ends it at the next batch, with `interruptedEvaluation` set: the training is
    /// complete and checkpointed, so a rerun redoes only the evaluation.
    public func run() throws -> RunSummary {
        let started = Date()
        do {
            return try runSchedule(started: started)
        } catch let interrupted as EvaluationInterrupted {
            var summary = RunSummary(stopped: true, phase1TestAccuracy: nil, phase2TestAccuracy: nil, budgets: [],
                                     exitCosts: [], wallSeconds: 0, trainingImagesPerSecond: 0, lastCheckpoint: nil)
            summary.interruptedEvaluation = interrupted.task
            return finish(summary, stopped: true, started: started)
        }
    }

    private func runSchedule(started: Date) throws -> RunSummary {
        ComputeThreads.set(configuration.resolvedThreadsPerRank)
        try communicator.watchForStalls(timeout: configuration.distributed.stallTimeout)
        if options.evaluationOnly { try requireCheckpointToEvaluate() }
        try requireNamedCheckpointFile()
        // A stop requested while the job started up: nothing has been trained, so nothing is
        // written (every rank decides alike, whichever of them got the signal).
        if try communicator.allReduce(stopRequest.isRequested ? 1 : 0, .sum) > 0 {
            observer?.note("stop requested before training started; nothing written")
            return finish(RunSummary(stopped: true, phase1TestAccuracy: nil, phase2TestAccuracy: nil, budgets: [],
                                     exitCosts: [], wallSeconds: 0, trainingImagesPerSecond: 0, lastCheckpoint: nil),
                          stopped: true, started: started)
        }
        try prepareRunDirectory()

        let phase1 = configuration.phase1, phase2 = configuration.phase2
        let largestBatch = max(phase1.batchSize, phase2.batchSize) / communicator.size
        let backbone = try MSDNet(configuration: configuration.model,
                                  gradientEquilibrium: configuration.gradientEquilibrium,
                                  maximumBatchSize: max(largestBatch, configuration.evaluation.batchSize, 1),
                                  seed: configuration.seed)
        observer?.note("compute: \(ComputeThreads.count) thread(s) per rank, \(backbone.imageShardCount) image shard(s), "
                       + "\(backbone.kernelPath.rawValue) kernels")
        let backboneOptimizer = SGD(parameters: backbone.parameters, momentum: Float(phase1.momentum),
                                    nesterov: phase1.nesterov, weightDecay: Float(phase1.weightDecay))
        var heads: IMTANetwork?
        var headsOptimizer: SGD?
        func buildHeads() -> (IMTANetwork, SGD) {
            if let heads, let headsOptimizer { return (heads, headsOptimizer) }
            let network = IMTANetwork(
                backbone: backbone,
                distillation: OneForAllDistillation(
                    temperature: Float(configuration.ofa.temperature), gamma: Float(configuration.ofa.gamma),
                    reduction: configuration.ofa.reduction == .mean ? .mean : .batchmean),
                detachCollaboration: configuration.isc.detach,
                seed: configuration.seed &+ 1)
            let optimizer = SGD(parameters: network.heads, momentum: Float(phase2.momentum),
                                nesterov: phase2.nesterov, weightDecay: Float(phase2.weightDecay))
            heads = network
            headsOptimizer = optimizer
            return (network, optimizer)
        }

        // Rank 0 chooses and reads the checkpoint; every rank then receives the same state.
        let restored = try restoreCheckpoint(backbone: backbone, backboneOptimizer: backboneOptimizer, buildHeads: buildHeads)
        if options.evaluationOnly && restored == nil { throw TrainingError.nothingToEvaluate(checkpointDirectory: checkpoints.path) }
        var position = restored?.position ?? (phase: 1, epoch: 0, step: 0)
        if position.phase == 2 { _ = buildHeads() }
        try broadcastState(backbone.stateTensors + backboneOptimizer.momentumTensors)
        if let heads, let headsOptimizer { try broadcastState(heads.stateTensors + headsOptimizer.momentumTensors) }
        if options.verifyReplicas, let restored {
            let (network, optimizer): (TrainableNetwork, SGD) = position.phase == 2 ? buildHeads() : (backbone, backboneOptimizer)
            try checkReplicasAgree(network.stateTensors + optimizer.momentumTensors,
                                   at: restored.position, after: "the restore")
        }

        let data = try communicator.whileBusy {
            try TrainingData(configuration: configuration.data, inputSize: configuration.model.inputSize,
                             seed: configuration.seed, validationIndices: restored?.validationIndices,
                             workers: configuration.data.workers ?? 1)
        }
        if let restored, !options.evaluationOnly { try checkStep(restored.position, data: data) }
        if configuration.syncBatchNorm && communicator.size > 1 { backbone.batchNormReducer = communicator }

        var summary = RunSummary(stopped: false, phase1TestAccuracy: nil, phase2TestAccuracy: nil, budgets: [],
                                 exitCosts: CostCounter.exitCosts(backbone.architecture), wallSeconds: 0,
                                 trainingImagesPerSecond: 0, lastCheckpoint: nil)
        defer { summary.wallSeconds = Date().timeIntervalSince(started) }

        if position.phase == 1 && !options.evaluationOnly {
            if phase1.epochs > position.epoch {
                let finished = try trainPhase(1, network: backbone, optimizer: backboneOptimizer, settings: phase1,
                                              data: data, from: (position.epoch, position.step))
                guard finished else { return finish(summary, stopped: true, started: started) }
                do {
                    summary.phase1TestAccuracy = try testAccuracy(backbone, data: data, of: "phase I's test accuracy")
                } catch is EvaluationInterrupted {
                    // Phase I ended with a checkpoint; a rerun goes on from there, as after any stop.
                    return finish(summary, stopped: true, started: started)
                }
                observer?.note("phase I test accuracy per exit: \(formatted(summary.phase1TestAccuracy!))")
            }
            position = (2, 0, 0)
        }
        var finalNetwork: TrainableNetwork = backbone
        // A restored phase-II checkpoint holds the IMTA network, whatever phase2.epochs now says.
        if restored?.position.phase == 2 || (phase2.epochs > 0 && !options.evaluationOnly) {
            let (network, optimizer) = buildHeads()
            network.batchNormReducer = backbone.batchNormReducer
            if position.epoch < phase2.epochs && !options.evaluationOnly {
                let finished = try trainPhase(2, network: network, optimizer: optimizer, settings: phase2,
                                              data: data, from: (position.epoch, position.step))
                guard finished else { return finish(summary, stopped: true, started: started) }
                summary.phase2TestAccuracy = try testAccuracy(network, data: data, of: "phase II's test accuracy")
                observer?.note("phase II test accuracy per exit: \(formatted(summary.phase2TestAccuracy!))")
            }
            finalNetwork = network
        }
        if options.evaluationOnly {
            let accuracy = try testAccuracy(finalNetwork, data: data, of: "the test accuracy")
            if finalNetwork is IMTANetwork { summary.phase2TestAccuracy = accuracy } else { summary.phase1TestAccuracy = accuracy }
        }
        if configuration.evaluation.enabled || options.evaluationOnly {
            communicator.stallWatch?.position = "the budgeted evaluation"
            (summary.budgets, summary.anytime, summary.earlyExit) = try evaluate(finalNetwork, data: data, exitCosts: summary.exitCosts)
        }
        return finish(summary, stopped: false, started: started)
    }

    func finish(_ summary: RunSummary, stopped: Bool, started: Date) -> RunSummary {
        var result = summary
        result.stopped = stopped
        result.wallSeconds = Date().timeIntervalSince(started)
        result.trainingImagesPerSecond = trainingSeconds > 0 ? Double(trainedImages) / trainingSeconds : 0
        result.lastCheckpoint = lastCheckpoint
        return result
    }

    // MARK: - Set-up

    func prepareRunDirectory() throws {
        try onRootThenShare {
            do {
                try FileManager.default.createDirectory(atPath: checkpoints.path, withIntermediateDirectories: true)
                guard access(checkpoints.path, W_OK) == 0 else {
                    throw TrainingError.cannotWrite(path: checkpoints.path, reason: "the directory is not writable")
                }
                runDirectoryLock = try RunDirectoryLock.acquire(runDirectory: runDirectory)
                if case .fresh = options.resume, let moved = try RunFiles.moveAside(runDirectory: runDirectory) {
                    let files = ["\(moved.checkpoints) checkpoint(s)"] + moved.files
                    observer?.note("--fresh: moved the previous run's \(files.joined(separator: ", ")) to \(moved.directory)")
                }
                metrics = try MetricsLog(path: (runDirectory as NSString).appendingPathComponent("metrics.jsonl"))
            } catch let error as TrainingError {
                throw error
            } catch {
                throw TrainingError.cannotWrite(path: runDirectory, reason: readableReason(error))
            }
        }
    }

    /// Rank 0 runs `body` (files: its work alone, announced to the stall watch); then every
    /// rank learns whether it failed and throws the same error, so that none is left waiting.
    func onRootThenShare(_ body: () throws -> Void) throws {
        var failure = ""
        if communicator.isRoot {
            do {
                try communicator.whileBusy(body)
            } catch {
                failure = "\(error)"
            }
        }
        let message = try communicator.broadcast(failure, from: 0)
        if !message.isEmpty { throw RootRankFailure(message: message) }
    }

    // MARK: - Training

    /// Trains one phase from `(epoch, step)`; returns false if a stop request ended it early
    /// (after a checkpoint).
    func trainPhase(_ phase: Int, network: TrainableNetwork, optimizer: SGD, settings: PhaseConfiguration,
                            data: TrainingData, from start: (epoch: Int, step: Int)) throws -> Bool {
        let rank = communicator.rank, worldSize = communicator.size
        let stepsPerEpoch = data.trainingStepsPerEpoch(globalBatchSize: settings.batchSize)
        guard stepsPerEpoch > 0 else {
            throw TrainingError.cannotWrite(path: runDirectory, reason: "the training set (\(data.trainingIndices.count) samples) is smaller than one global batch of phase\(phase).batchSize = \(settings.batchSize)")
        }
        let parameters = network.trainableParameters
        let exits = network.exitCount
        let bucketBytes = configuration.distributed.bucketBytes
        let buckets = worldSize > 1 && bucketBytes > 0
            ? GradientBuckets(communicator: communicator, arena: parameters, bucketBytes: bucketBytes) : nil
        network.gradientReadyObserver = buckets
        defer { network.gradientReadyObserver = nil }
        observer?.phaseWillStart(PhaseStart(phase: phase, epochs: settings.epochs, stepsPerEpoch: stepsPerEpoch,
                                            firstEpoch: start.epoch, firstStep: start.step,
                                            trainableParameters: parameters.count))
        let logInterval = max(1, stepsPerEpoch / 10)
        var firstStep = start.step
        for epoch in start.epoch..<settings.epochs {
            let epochStarted = Date()
            let stream = data.trainingBatches(epoch: epoch, globalBatchSize: settings.batchSize, rank: rank,
                                              worldSize: worldSize, firstStep: firstStep)
            var step = firstStep
            var epochLoss = 0.0, epochSamples = 0.0
            var epochCorrect = [Double](repeating: 0, count: exits)
            var learningRate = 0.0
            while let batch = try stream.next() {
                communicator.stallWatch?.position = "phase \(phase), epoch \(epoch + 1), step \(step + 1)"
                learningRate = settings.schedule.learningRate(base: settings.lr, epoch: epoch, step: step,
                                                              epochs: settings.epochs, stepsPerEpoch: stepsPerEpoch)
                let result = network.trainingStep(images: batch.images, labels: batch.labels, count: batch.count)
                stepsThisRun += 1
                if let limit = options.stopAfterSteps, stepsThisRun >= limit { stopRequest.request(signal: 0) }
                if let buckets {
                    try buckets.finishAveraging()
                } else if worldSize > 1 {
                    try communicator.allReduceAverage(UnsafeMutableBufferPointer(start: parameters.gradients, count: parameters.count))
                }

                var statistics = StepStatistics(result, samples: batch.count, stopRequested: stopRequest.isRequested)
                try statistics.sum(over: communicator)
                let loss = statistics.loss
                guard loss.isFinite else {
                    let exit = statistics.weightedExitLosses.firstIndex { !$0.isFinite } ?? exits - 1
                    throw TrainingError.nonFiniteLoss(phase: phase, epoch: epoch, step: step, exit: exit, value: loss,
                                                      lastCheckpoint: lastCheckpoint)
                }
                optimizer.step(learningRate: Float(learningRate))
                if options.verifyReplicas {
                    try checkReplicasAgree(network.stateTensors.filter(\.isTrainedIdentically) + optimizer.momentumTensors,
                                           at: (phase, epoch, step), after: "the update")
                }
                step += 1

                epochLoss += statistics.weightedLoss
                epochSamples += statistics.samples
                for exit in 0..<exits { epochCorrect[exit] += statistics.correct[exit] }
                let elapsed = Date().timeIntervalSince(epochStarted)
                let report = StepReport(
                    phase: phase, epoch: epoch, epochs: settings.epochs, step: step, stepsPerEpoch: stepsPerEpoch,
                    learningRate: learningRate, loss: loss,
                    exitAccuracy: epochCorrect.map { 100 * $0 / epochSamples },
                    imagesPerSecond: epochSamples / max(elapsed, 1e-9), dataWaitSeconds: stream.dataWaitSeconds)
                observer?.stepDidFinish(report)
                if step % logInterval == 0 || step == stepsPerEpoch { recordStep(report) }

                let stopping = statistics.stopRequests > 0
                let periodic = configuration.checkpoint.everySteps > 0 && step % configuration.checkpoint.everySteps == 0
                if step < stepsPerEpoch && (stopping || periodic) {
                    let path = try writeCheckpoint(phase: phase, epoch: epoch, step: step, network: network,
                                                   optimizer: optimizer, validationIndices: data.validationIndices)
                    if stopping {
                        observer?.note("stop requested: checkpoint \(path) written after step \(step) of epoch \(epoch + 1); run the same command to resume")
                        trainingSeconds += elapsed
                        trainedImages += Int(epochSamples)
                        return false
                    }
                }
            }
            let seconds = Date().timeIntervalSince(epochStarted)
            trainingSeconds += seconds
            trainedImages += Int(epochSamples)

            communicator.stallWatch?.position = "the end of phase \(phase), epoch \(epoch + 1)"
            try averageBatchNormStatistics(network)
            // No hold-out (the anytime setting): nothing to report per epoch.
            let validation = data.validationIndices.isEmpty ? [] : try accuracy(network, data: data, split: .validation)
            let path = try writeCheckpoint(phase: phase, epoch: epoch + 1, step: 0, network: network,
                                           optimizer: optimizer, validationIndices: data.validationIndices)
            let report = EpochReport(
                phase: phase, epoch: epoch, epochs: settings.epochs, learningRate: learningRate,
                trainingLoss: epochLoss / max(epochSamples, 1),
                trainingAccuracy: epochCorrect.map { 100 * $0 / max(epochSamples, 1) },
                validationAccuracy: validation, imagesPerSecond: epochSamples / max(seconds, 1e-9),
                dataWaitSeconds: stream.dataWaitSeconds, seconds: seconds, checkpointPath: path)
            observer?.epochDidFinish(report)
            recordEpoch(report)
            firstStep = 0
            // Also at the end of the phase's last epoch: this checkpoint is the stop's, and the
            // rerun goes on with what follows (phase II, or the evaluation).
            if try communicator.allReduce(stopRequest.isRequested ? 1 : 0, .sum) > 0 {
                observer?.note("stop requested: checkpoint \(path) written at the end of epoch \(epoch + 1); run the same command to resume")
                return false
            }
        }
        return true
    }

    /// Compares a checksum (FNV-1a over the bit patterns) of `tensors` across ranks; they must
    /// agree bit for bit. One all-gather of one number.
    func checkReplicasAgree(_ tensors: [NamedTensor], at position: (phase: Int, epoch: Int, step: Int),
                            after moment: String) throws {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bits: UInt64) { hash = (hash ^ bits) &* 0x0000_0100_0000_01b3 }
        for tensor in tensors {
            switch tensor.storage {
            case let .float(pointer):
                for index in 0..<tensor.count { mix(UInt64(pointer[index].bitPattern)) }
            case let .int64(pointer):
                mix(UInt64(bitPattern: pointer.pointee))
            }
        }
        let hashes = try communicator.allGather(Int64(bitPattern: hash))
        guard Set(hashes).count == 1 else {
            throw ReplicaDivergence(phase: position.phase, epoch: position.epoch, step: position.step, moment: moment)
        }
    }

    func recordStep(_ report: StepReport) {
        metrics?.append([
            "kind": "step", "phase": report.phase, "epoch": report.epoch + 1, "step": report.step,
            "stepsPerEpoch": report.stepsPerEpoch, "lr": report.learningRate, "loss": report.loss,
            "trainAccuracy": report.exitAccuracy, "imagesPerSecond": report.imagesPerSecond,
            "dataWaitSeconds": report.dataWaitSeconds,
        ])
    }

    func recordEpoch(_ report: EpochReport) {
        metrics?.append([
            "kind": "epoch", "phase": report.phase, "epoch": report.epoch + 1, "lr": report.learningRate,
            "loss": report.trainingLoss, "trainAccuracy": report.trainingAccuracy,
            "validationAccuracy": report.validationAccuracy, "imagesPerSecond": report.imagesPerSecond,
            "dataWaitSeconds": report.dataWaitSeconds, "seconds": report.seconds,
            "checkpoint": report.checkpointPath ?? "",
        ])
        guard metrics != nil else { return }
        do {
            try TrainingPlot.write(runDirectory: runDirectory)
        } catch {
            observer?.note("training.svg not redrawn: \(error)")
        }
    }
}

/// A failure that rank 0 met (reading or writing files) and every rank reports, so that none
/// of them waits forever for a rank that has given up.
struct RootRankFailure: CollectiveError, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Ranks hold different weights after a step or a restore (`--verify-replicas`).
struct ReplicaDivergence: CollectiveError, CustomStringConvertible {
    var phase: Int, epoch: Int, step: Int
    var moment: String
    var description: String {
        "phase \(phase), epoch \(epoch + 1), step \(step + 1): ranks hold different weights after \(moment)"
    }
}

extension NamedTensor {
    /// False for BatchNorm running statistics: without synchronised BN each rank's statistics
    /// follow its own batches between checkpoints, and only their average is shared state.
    var isTrainedIdentically: Bool { !name.hasSuffix("running_mean") && !name.hasSuffix("running_var") }
}
