import ArgumentParser
import DistTrain
import ReferenceParity
import Foundation

struct CheckReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-reference",
        abstract: "Compare this implementation with a reference fixture (losses, logits, gradients, buffers, SGD steps, budgets) within the fixture's tolerances."
    )

    @Argument(help: ArgumentHelp("A fixture written from the reference PyTorch code, e.g. msdnet-cifar-tiny.h5.", valueName: "file.h5"))
    var fixturePath: String

    @Flag(help: "Print every tensor's largest error and error/tolerance before the per-group table.")
    var verbose = false

    @Flag(help: "The file is a multi-step recording (benchmarks/multistep_parity.py): replay its phase-I and phase-II steps and compare every step's loss and the weights after each phase.")
    var replay = false

    func run() throws {
        if replay {
            let replayReport = try failingWithOneLine { try ReferenceReplay.run(file: fixturePath) }
            print(replayReport)
            if !replayReport.passed { throw ExitCode.failure }
            return
        }
        let report = try failingWithOneLine { try ReferenceCheck.run(file: fixturePath) }
        print(verbose ? report.verboseDescription : report.description)
        if !report.passed { throw ExitCode.failure }
    }
}
