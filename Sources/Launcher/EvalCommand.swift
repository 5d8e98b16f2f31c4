import ArgumentParser
import DistTrain

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Run the budgeted evaluation of a trained run: exit probabilities to logits.h5, accuracy against expected MADDs.",
        discussion: """
            Restores the newest checkpoint of runDir (or --checkpoint), trains nothing, computes every \
            exit's probabilities on the validation hold-out and the test set (split across ranks under \
            mpirun), writes logits.h5, anytime.csv, budgets.csv and budgets.svg to runDir and prints the tables. \
            With --measure, rank 0 then times early exit (forward passes only, data loading excluded) and \
            checks that every sample leaves at the exit, with the class, that the simulation on logits.h5 gives. \
            SIGTERM, SIGINT or SIGUSR1 stops the evaluation at the next batch; nothing of it is written \
            and the status is 3; run the same command to evaluate.
            """
    )

    @Argument(help: ArgumentHelp("The JSON run file of the trained run.", valueName: "config"))
    var configurationPath: String

    @Option(help: ArgumentHelp("Evaluate this checkpoint instead of the newest one in runDir.", valueName: "path"))
    var checkpoint: String?

    @Flag(help: ArgumentHelp(
        "Also time real early exit on the test set: block by block, each sample leaving at the first exit whose confidence passes the budget's threshold, the rest compacted into a smaller batch; images/s and ms/image for several budgets and the full network, written to early-exit.csv."))
    var measure = false

    func run() throws {
        try TrainingSession.run(configurationPath, options: TrainerOptions(
            resume: checkpoint.map { .checkpoint(path: $0) } ?? .automatic, evaluationOnly: true, measureEarlyExit: measure))
    }
}
