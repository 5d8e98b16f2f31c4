import ArgumentParser
import DistTrain
import Foundation

struct CheckReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-reference",
        abstract: "Compare this implementation with a reference fixture (losses, logits, gradients, buffers, SGD steps, budgets) within the fixture's tolerances."
    )

    @Argument(help: ArgumentHelp("A fixture written from the reference PyTorch code, e.g. msdnet-cifar-tiny.h5.", valueName: "file.h5"))
    var fixturePath: String

    func run() throws {
        let report: ReferenceCheckReport
        do {
            report = try ReferenceCheck.run(file: fixturePath)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        print(report)
        if !report.passed { throw ExitCode.failure }
    }
}
