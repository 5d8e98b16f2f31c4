import ArgumentParser
import DistTrain
import Model

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe the run's network: exits, cumulative MADDs and parameters per exit, and the resolved configuration."
    )

    @Argument(help: ArgumentHelp("The JSON run file.", valueName: "config"))
    var configurationPath: String

    func run() throws {
        let configuration = try RunFile.load(configurationPath, worldSize: 1, requireDataRoot: false)
        print(try ArchitectureSummary(configuration.model))
        print("phase I:  \(configuration.phase1.epochs) epochs, global batch \(configuration.phase1.batchSize), lr \(configuration.phase1.lr), "
            + "\(configuration.phase1.schedule.kind.rawValue) schedule, Gradient Equilibrium \(configuration.gradientEquilibrium ? "on" : "off")")
        print("phase II: \(configuration.phase2.epochs) epochs, global batch \(configuration.phase2.batchSize), lr \(configuration.phase2.lr), "
            + "OFA T \(configuration.ofa.temperature) gamma \(configuration.ofa.gamma) (\(configuration.ofa.reduction.rawValue)), ISC detach \(configuration.isc.detach)")
        print("run directory: \(configuration.resolvedRunDirectory)")
    }
}
