import ArgumentParser

@main
struct DistTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disttrain",
        abstract: "Train adaptive multi-exit networks (MSDNet + GE, then ISC + OFA) data-parallel.",
        discussion: """
            `disttrain CONFIG` is `disttrain train CONFIG`. Under `mpirun -n N` every process is one \
            rank; without mpirun the same code runs as a world of one rank.
            """,
        subcommands: [
            TrainCommand.self, InfoCommand.self, EvalCommand.self, PredictCommand.self, PlotCommand.self, PrepareCommand.self,
            BenchCommand.self, CheckReferenceCommand.self,
        ],
        defaultSubcommand: TrainCommand.self
    )
}
