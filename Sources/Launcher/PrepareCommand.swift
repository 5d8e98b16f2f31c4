import ArgumentParser
import DataPipeline
import DistTrain
import Foundation

struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Convert a data set into HDF5 shards that the sharded loader reads.",
        subcommands: [ImageNet.self]
    )

    struct ImageNet: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "imagenet",
            abstract: "Pack an ImageNet folder tree (train/<class>/*.JPEG, val/<class>/*.JPEG) into SHARD-NNNNN.h5 files of original JPEG bytes.",
            discussion: """
                Writes OUT/train/SHARD-NNNNN.h5 and OUT/val/SHARD-NNNNN.h5 (/jpeg: the original files, \
                /labels: the class index, attribute classes: the sorted class folder names). Rerunning \
                keeps the shards already complete. Files that are not decodable JPEGs are listed and skipped.
                """
        )

        @Option(help: ArgumentHelp("The ImageNet directory holding train/ and val/.", valueName: "directory"))
        var from: String

        @Option(help: ArgumentHelp("The directory to write the shards to (data.root of the run file).", valueName: "directory"))
        var out: String

        @Option(help: "Source files per shard.")
        var shardSize: Int = 1024

        @Option(help: "Threads reading, checking and writing shards. Default: the number of cores.")
        var workers: Int?

        func validate() throws {
            guard shardSize > 0 else { throw ValidationError("--shard-size must be positive, got \(shardSize)") }
            if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
        }

        func run() throws {
            let preparation = ImageNetPreparation(source: from, output: out, shardSize: shardSize,
                                                  workers: workers ?? ProcessInfo.processInfo.activeProcessorCount)
            let display = PreparationDisplay()
            let summaries = try preparation.run(progress: display.show, skippedFile: display.skipped)
            display.finish()
            for summary in summaries {
                print("\(summary.split): \(summary.imagesStored) images of \(summary.classes) classes in "
                      + "\(summary.shardsWritten + summary.shardsKept) shards (\(summary.shardsWritten) written, "
                      + "\(summary.shardsKept) already complete), \(summary.skipped.count) files skipped")
            }
            let skipped = summaries.flatMap(\.skipped)
            if !skipped.isEmpty {
                print("skipped files:")
                for file in skipped { print("  \(file.path): \(file.reason)") }
            }
        }
    }
}

/// The progress bar of `prepare imagenet` on standard error, redrawn at most ten times a second
/// (every file on a terminal would cost more than the bar is worth); skipped files are printed
/// as they are found.
// Unchecked: the preparation calls it from worker threads, but one call at a time (under its tally lock).
private final class PreparationDisplay: @unchecked Sendable {
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var barVisible = false
    private let interactive = isatty(STDERR_FILENO) != 0

    /// Called by the preparation one call at a time.
    func show(_ progress: ImageNetPreparation.Progress) {
        let now = Date()
        let done = progress.filesDone == progress.filesTotal
        guard done || now.timeIntervalSince(lastDraw) >= (interactive ? 0.1 : 30) else { return }
        lastDraw = now
        let fraction = progress.filesTotal == 0 ? 1 : Double(progress.filesDone) / Double(progress.filesTotal)
        let filled = Int(fraction * 30)
        let rate = Double(progress.filesDone) / max(now.timeIntervalSince(start), 1e-3)
        let line = String(format: "%@ [%@%@] %3.0f%% %d/%d files, %d skipped, %.0f files/s",
                          progress.split, String(repeating: "#", count: filled), String(repeating: ".", count: 30 - filled),
                          fraction * 100, progress.filesDone, progress.filesTotal, progress.skipped, rate)
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (done ? "\n" : "")).utf8))
            barVisible = !done
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    func skipped(_ file: ImageNetPreparation.SkippedFile) {
        let clear = barVisible ? "\r\u{1B}[K" : ""
        barVisible = false
        FileHandle.standardError.write(Data("\(clear)skipping \(file.path): \(file.reason)\n".utf8))
    }

    func finish() {
        if barVisible { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
