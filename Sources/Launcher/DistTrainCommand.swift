import ArgumentParser
import Foundation
import Model

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

    /// Refuses a `DISTTRAIN_KERNELS` that names no path or one this CPU lacks, in one line with
    /// status 1, before any command runs.
    static func main() {
        do {
            _ = try KernelPath.choose(environmentValue: ProcessInfo.processInfo.environment[KernelPath.environmentVariable])
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Foundation.exit(1)
        }
        main(nil)
    }
}
