import ArgumentParser
import DistTrain

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe the run's network: exits, cumulative MADDs and parameters per exit, and the resolved configuration."
    )

    @Argument(help: ArgumentHelp("The JSON run file.", valueName: "config"))
    var configurationPath: String

    func run() throws {
        _ = try RunFile.load(configurationPath, worldSize: 1, requireDataRoot: false)
        throw NotYetAvailable.information
    }
}
