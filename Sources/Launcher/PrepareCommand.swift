import ArgumentParser

struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Convert a data set into HDF5 shards that the sharded loader reads.",
        subcommands: [ImageNet.self]
    )

    struct ImageNet: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "imagenet",
            abstract: "Pack an ImageNet folder tree (train/<class>/*.JPEG, val/<class>/*.JPEG) into SHARD-NNNNN.h5 files of original JPEG bytes."
        )

        @Argument(help: ArgumentHelp("The ImageNet directory holding train/ and val/.", valueName: "source"))
        var source: String

        @Argument(help: ArgumentHelp("The directory to write the shards to (data.root of the run file).", valueName: "output"))
        var output: String

        func run() throws {
            throw NotYetAvailable.imagenetPreparation
        }
    }
}
