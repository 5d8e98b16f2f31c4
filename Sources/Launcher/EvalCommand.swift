import ArgumentParser
import DistTrain

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Run the budgeted evaluation of a trained run: exit probabilities to logits.h5, accuracy against expected MADDs."
    )

    @Argument(help: ArgumentHelp("The JSON run file of the trained run.", valueName: "config"))
    var configurationPath: String

    @Option(help: ArgumentHelp("Evaluate this checkpoint instead of the newest one in runDir.", valueName: "path"))
    var checkpoint: String?

    func run() throws {
        _ = try RunFile.load(configurationPath, worldSize: LaunchEnvironment.worldSize())
        throw NotYetAvailable.evaluation
    }
}
