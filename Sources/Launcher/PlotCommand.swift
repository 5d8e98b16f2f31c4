import ArgumentParser
import DistTrain
import Evaluation
import Foundation

struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Redraw a run's training.svg and budgets.svg from the files in its run directory.",
        discussion: """
            training.svg (per-exit validation accuracy and training loss over the epochs of both phases) \
            is drawn from metrics.jsonl; budgets.svg (the budget curve and each exit's anytime point) from \
            budgets.csv and anytime.csv. Nothing else is read, so a stopped run or one copied from a \
            cluster can be plotted anywhere.
            """
    )

    @Argument(help: ArgumentHelp("The run directory (runDir of the run file).", valueName: "rundir"))
    var runDirectory: String

    func run() throws {
        for path in try failingWithOneLine({ try RunPlots.redraw(runDirectory: runDirectory) }) { print("wrote \(path)") }
    }
}
