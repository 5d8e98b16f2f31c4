/// What the trainer tells the outside world while it runs (rank 0 only). The launcher turns it
/// into a progress bar on a terminal or periodic lines in a log; tests can record it.
public protocol TrainingObserver: AnyObject {
    /// A phase begins (or resumes at `firstEpoch`, `firstStep`).
    func phaseWillStart(_ phase: PhaseStart)
    /// One optimisation step finished; figures are averaged over every rank.
    func stepDidFinish(_ step: StepReport)
    /// An epoch finished and was checkpointed.
    func epochDidFinish(_ epoch: EpochReport)
    /// A line worth showing the user (resume decisions, checkpoint paths, warnings).
    func note(_ message: String)
}

public struct PhaseStart: Sendable {
    public var phase: Int
    public var epochs: Int
    public var stepsPerEpoch: Int
    public var firstEpoch: Int
    public var firstStep: Int
    public var trainableParameters: Int
}

public struct StepReport: Sendable {
    public var phase: Int
    public var epoch: Int
    public var epochs: Int
    /// Steps finished in this epoch.
    public var step: Int
    public var stepsPerEpoch: Int
    public var learningRate: Double
    /// Mean loss of this step over the global batch.
    public var loss: Double
    /// Running top-1 training accuracy (percent) per exit since the start of the epoch.
    public var exitAccuracy: [Double]
    /// Global images per second over the recent steps.
    public var imagesPerSecond: Double
    /// Seconds this epoch spent waiting for data so far (rank 0).
    public var dataWaitSeconds: Double
}

public struct EpochReport: Sendable {
    public var phase: Int
    public var epoch: Int
    public var epochs: Int
    public var learningRate: Double
    public var trainingLoss: Double
    public var trainingAccuracy: [Double]
    /// Top-1 accuracy (percent) per exit on the validation hold-out, evaluation mode.
    public var validationAccuracy: [Double]
    public var imagesPerSecond: Double
    public var dataWaitSeconds: Double
    public var seconds: Double
    public var checkpointPath: String?
}
