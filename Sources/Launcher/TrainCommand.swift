import ArgumentParser
import DistTrain

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a run: phase I (MSDNet with Gradient Equilibrium), phase II (ISC + OFA heads), then the budgeted evaluation.",
        discussion: """
            The run file is checked completely (unknown keys, types, ranges, the global batch \
            against the world size, data.root) before anything is written; a rejected file \
            prints one line naming the key and exits with status 2. Checkpoints, metrics and \
            logits go to runDir (default runs/<name>). By default a run resumes from the newest \
            checkpoint in runDir that opens and verifies. SIGTERM, SIGINT or SIGUSR1 finishes the \
            current step, writes a checkpoint and exits 0; run the same command to continue. \
            During the evaluation after training, they stop it at the next batch and exit 0; \
            rerunning the same command then trains nothing and redoes only the evaluation. \
            Under mpirun, send them to the ranks or through cluster/mpirun-graceful.sh: \
            Open MPI's mpirun turns its own SIGTERM or SIGINT into an abort with status 1.
            """
    )

    @Argument(help: ArgumentHelp("The JSON run file (README: configuration reference).", valueName: "config"))
    var configurationPath: String

    @Option(help: ArgumentHelp("Resume from this checkpoint instead of the newest one in runDir.", valueName: "path"))
    var resume: String?

    @Flag(help: "Ignore checkpoints already in runDir and start from phase I, epoch 0.")
    var fresh = false

    func validate() throws {
        if fresh && resume != nil {
            throw ValidationError("--fresh and --resume exclude each other.")
        }
        if let stopAfterSteps, stopAfterSteps < 1 {
            throw ValidationError("--stop-after-steps must be at least 1, got \(stopAfterSteps).")
        }
    }

    @Flag(help: "After a restore and after every step, check that every rank holds bit-identical weights and momentum (one small all-gather each time).")
    var verifyReplicas = false

    @Option(help: ArgumentHelp("Train this many steps, then checkpoint and exit as on SIGTERM (time-boxed jobs).", valueName: "n"))
    var stopAfterSteps: Int?

    func run() throws {
        let choice: ResumeChoice = fresh ? .fresh : resume.map { .checkpoint(path: $0) } ?? .automatic
        try TrainingSession.run(configurationPath, options: TrainerOptions(
            resume: choice, verifyReplicas: verifyReplicas, stopAfterSteps: stopAfterSteps))
    }
}
