import ArgumentParser
import DistTrain
import Model

@main
struct DistTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disttrain",
        abstract: "Train adaptive multi-exit networks (MSDNet + GE, then ISC + OFA) data-parallel."
    )
}
