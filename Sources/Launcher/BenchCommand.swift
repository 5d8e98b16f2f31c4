import ArgumentParser
import DistTrain

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training throughput (images/s) of the run's network, with a per-operator breakdown."
    )

    @Argument(help: ArgumentHelp("The JSON run file whose model and batch size are measured.", valueName: "config"))
    var configurationPath: String

    func run() throws {
        _ = try RunFile.load(configurationPath, worldSize: LaunchEnvironment.worldSize(), requireDataRoot: false)
        throw NotYetAvailable.benchmark
    }
}
