import ArgumentParser

struct CheckReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-reference",
        abstract: "Compare this implementation with a reference fixture (losses, logits, gradients, buffers, SGD steps, budgets) within the fixture's tolerances."
    )

    @Argument(help: ArgumentHelp("A fixture written from the reference PyTorch code, e.g. msdnet-cifar-tiny.h5.", valueName: "file.h5"))
    var fixturePath: String

    func run() throws {
        throw NotYetAvailable.referenceCheck
    }
}
