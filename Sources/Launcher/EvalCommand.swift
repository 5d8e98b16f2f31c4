import ArgumentParser
import DistTrain

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Run the budgeted evaluation of a trained run: exit probabilities to logits.h5, accuracy against expected MADDs.",
        discussion: """
            Restores the newest checkpoint of runDir (or --checkpoint), trains nothing, computes every \
            exit's probabilities on the validation hold-out and the test set (split across ranks under \
            mpirun), writes logits.h5, budgets.csv and budgets.svg to runDir and prints the table.
            """
    )

    @Argument(help: ArgumentHelp("The JSON run file of the trained run.", valueName: "config"))
    var configurationPath: String

    @Option(help: ArgumentHelp("Evaluate this checkpoint instead of the newest one in runDir.", valueName: "path"))
    var checkpoint: String?

    func run() throws {
        try TrainingSession.run(configurationPath, options: TrainerOptions(
            resume: checkpoint.map { .checkpoint(path: $0) } ?? .automatic, evaluationOnly: true))
    }
}
