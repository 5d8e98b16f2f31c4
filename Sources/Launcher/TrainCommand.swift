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
            checkpoint in runDir that opens and verifies.
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
    }

    func run() throws {
        _ = try RunFile.load(configurationPath, worldSize: LaunchEnvironment.worldSize())
        throw NotYetAvailable.training
    }
}
