@testable import DataPipeline
@testable import DistTrain
@testable import Evaluation
import Foundation
@testable import Storage
import XCTest

/// What a run reports after training, through the `disttrain` executable on a tiny three-exit
/// MSDNet and real Fashion-MNIST images: the anytime table against `logits.h5`, the anytime
/// setting (no hold-out), the plots, `plot`, `eval --measure` and `predict`. One trained run is
/// shared by the tests of this class.
final class EvaluationReportTests: TemporaryDirectoryTestCase {
    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"
    /// The shared run (trained by the first test that needs it) and its scratch directory.
    nonisolated(unsafe) private static var shared: (directory: URL, configuration: String, output: String)?

    override class func tearDown() {
        if let shared { try? FileManager.default.removeItem(at: shared.directory) }
        shared = nil
        super.tearDown()
    }

    /// A three-exit MSDNet, one short epoch of each phase.
    static func configuration(name: String, directory: URL, holdout: Int = 64) -> [String: Any] {
        let phase: [String: Any] = ["epochs": 1, "batchSize": 32, "lr": 0.1, "momentum": 0.9, "weightDecay": 1e-4]
        return [
            "name": name,
            "runDir": directory.appendingPathComponent(name).path,
            "seed": 3,
            "threadsPerRank": 1,
            "data": ["dataset": "fashion-mnist", "root": fashionMNIST, "validationHoldout": holdout,
                     "limitTrain": holdout + 4 * 32, "limitTest": 96],
            "model": ["stem": "cifar", "inputSize": 32, "nBlocks": 3, "stepmode": "even", "step": 1, "base": 1,
                      "nChannels": 4, "growthRate": 2, "grFactor": [1, 2, 4], "bnFactor": [1, 2, 4]],
            "phase1": phase,
            "phase2": phase,
            "evaluation": ["budgets": 8, "batchSize": 32],
        ]
    }

    static func write(_ configuration: [String: Any], in directory: URL) throws -> String {
        let url = directory.appendingPathComponent("\(configuration["name"]!).json")
        try JSONSerialization.data(withJSONObject: configuration, options: [.prettyPrinted]).write(to: url)
        return url.path
    }

    /// The shared trained run: its run file and what `train` printed.
    func trainedRun() throws -> (runDirectory: URL, configuration: String, output: String) {
        guard FileManager.default.fileExists(atPath: Self.fashionMNIST) else {
            XCTFail("\(Self.fashionMNIST) is missing: install Debian's dataset-fashion-mnist (make deps)")
            throw CocoaError(.fileNoSuchFile)
        }
        if Self.shared == nil {
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("disttrain-evaluation-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            let path = try Self.write(Self.configuration(name: "trained", directory: scratch), in: scratch)
            let outcome = try DistTrainExecutable.run(["train", path], outputDirectory: scratch)
            XCTAssertEqual(outcome.status, 0, outcome.standardError)
            Self.shared = (scratch, path, outcome.standardOutput)
        }
        let shared = Self.shared!
        return (shared.directory.appendingPathComponent("trained"), shared.configuration, shared.output)
    }

    /// `anytime.csv` against top-1 and top-5 recomputed from `logits.h5` by sorting each sample's
    /// classes (a second computation), and the costs against `/exits`.
    func testAnytimeTableMatchesTheLogits() throws {
        let run = try trainedRun()
        let rows = try AnytimeReport.read(from: run.runDirectory.appendingPathComponent("anytime.csv").path)
        let logitsPath = run.runDirectory.appendingPathComponent("logits.h5").path
        let test = try ExitLogits.read(from: logitsPath).test
        let file = try HDF5File.open(logitsPath)
        defer { try? file.close() }
        let madds = try file.root.read("exits/madds", as: Int64.self).values
        let parameters = try file.root.read("exits/params", as: Int64.self).values
        XCTAssertEqual(rows.count, 3)
        for exit in 0..<3 {
            var top1 = 0, top5 = 0
            for sample in 0..<test.sampleCount {
                let base = (exit * test.sampleCount + sample) * test.classCount
                let order = (0..<test.classCount).sorted {
                    test.values[base + $0] != test.values[base + $1] ? test.values[base + $0] > test.values[base + $1] : $0 < $1
                }
                let rank = order.firstIndex(of: test.labels[sample])!
                if rank == 0 { top1 += 1 }
                if rank < 5 { top5 += 1 }
            }
            XCTAssertEqual(rows[exit].top1, 100 * Double(top1) / Double(test.sampleCount), accuracy: 1e-4)
            XCTAssertEqual(rows[exit].top5, 100 * Double(top5) / Double(test.sampleCount), accuracy: 1e-4)
            XCTAssertEqual(Int64(rows[exit].multiplyAdds), madds[exit])
            XCTAssertEqual(Int64(rows[exit].parameters), parameters[exit])
        }
        XCTAssertTrue(run.output.contains("anytime prediction (test set):"), run.output)
        XCTAssertTrue(run.output.contains("budgeted evaluation (test set):"), run.output)
        XCTAssertTrue(run.output.contains(run.runDirectory.appendingPathComponent("anytime.csv").path), run.output)
    }

    /// `data.validationHoldout: 0` trains on every training image, reports no validation accuracy,
    /// skips the budgeted evaluation with its reason and still writes the anytime table.
    func testAnytimeSettingTrainsOnEverythingAndSkipsTheBudgets() throws {
        guard FileManager.default.fileExists(atPath: Self.fashionMNIST) else {
            XCTFail("\(Self.fashionMNIST) is missing: install Debian's dataset-fashion-mnist (make deps)")
            return
        }
        let path = try Self.write(Self.configuration(name: "anytime", directory: directory, holdout: 0), in: directory)
        let outcome = try DistTrainExecutable.run(["train", path], outputDirectory: directory)
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        XCTAssertTrue(outcome.standardOutput.contains(Trainer.noHoldoutReason), outcome.standardOutput)
        let run = directory.appendingPathComponent("anytime")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("budgets.csv").path))
        XCTAssertEqual(try AnytimeReport.read(from: run.appendingPathComponent("anytime.csv").path).count, 3)

        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let records = metrics.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        // 128 training images, none held out: 4 steps of 32.
        XCTAssertEqual(records.first { $0["kind"] as? String == "step" }?["stepsPerEpoch"] as? Int, 4)
        let epochs = records.filter { $0["kind"] as? String == "epoch" }
        XCTAssertEqual(epochs.count, 2)
        XCTAssertEqual(epochs.compactMap { ($0["validationAccuracy"] as? [Double])?.count }, [0, 0])

        let checkpoint = try HDF5File.open(run.appendingPathComponent("checkpoints/phase2-epoch1.h5").path)
        defer { try? checkpoint.close() }
        XCTAssertEqual(try checkpoint.root.read("data/validationIndices", as: Int64.self).shape, [0])
        let logits = try ExitLogits.read(from: run.appendingPathComponent("logits.h5").path)
        XCTAssertEqual(logits.validation.sampleCount, 0)
        XCTAssertEqual(logits.test.sampleCount, 96)

        // eval of the same run skips the budgets the same way.
        let evaluated = try DistTrainExecutable.run(["eval", path], outputDirectory: directory)
        XCTAssertEqual(evaluated.status, 0, evaluated.standardError)
        XCTAssertTrue(evaluated.standardOutput.contains(Trainer.noHoldoutReason), evaluated.standardOutput)
    }

    /// Renders `svg` to PNG with rsvg-convert and decodes it: `[height, width, 3]` RGB.
    func rendered(_ svg: URL) throws -> (pixels: [UInt8], width: Int, height: Int) {
        let converter = "/usr/bin/rsvg-convert"
        guard FileManager.default.isExecutableFile(atPath: converter) else {
            XCTFail("\(converter) is missing: install Debian's librsvg2-bin (make deps)")
            throw CocoaError(.fileNoSuchFile)
        }
        let png = directory.appendingPathComponent(svg.deletingPathExtension().lastPathComponent + ".png")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: converter)
        process.arguments = ["-o", png.path, svg.path]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "rsvg-convert \(svg.path)")
        return try PNGDecoder.decode([UInt8](try Data(contentsOf: png)), channels: 3)
    }

    /// Both plots render to images that are not blank: many non-white pixels, and coloured
    /// series drawn (axes, ticks and labels are black or gray).
    func testPlotsRenderAndPlotRedrawsThem() throws {
        let run = try trainedRun()
        let training = run.runDirectory.appendingPathComponent("training.svg")
        let budgets = run.runDirectory.appendingPathComponent("budgets.svg")
        let written = try String(contentsOf: training, encoding: .utf8)
        try FileManager.default.removeItem(at: training)
        try FileManager.default.removeItem(at: budgets)

        let outcome = try DistTrainExecutable.run(["plot", run.runDirectory.path], outputDirectory: directory)
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        XCTAssertEqual(try String(contentsOf: training, encoding: .utf8), written, "redrawn from metrics.jsonl alone")
        for svg in [training, budgets] {
            let image = try rendered(svg)
            XCTAssertGreaterThan(image.width, 500)
            var notWhite = 0, coloured = 0
            for pixel in stride(from: 0, to: image.pixels.count, by: 3) {
                let (red, green, blue) = (Int(image.pixels[pixel]), Int(image.pixels[pixel + 1]), Int(image.pixels[pixel + 2]))
                if red < 250 || green < 250 || blue < 250 { notWhite += 1 }
                if max(red, green, blue) - min(red, green, blue) > 80 { coloured += 1 }
            }
            let total = image.width * image.height
            XCTAssertGreaterThan(notWhite, total / 50, "\(svg.lastPathComponent) is nearly blank")
            XCTAssertGreaterThan(coloured, 400, "\(svg.lastPathComponent) has no series drawn (only black, gray and white)")
        }

        let missing = try DistTrainExecutable.run(["plot", directory.appendingPathComponent("nothing").path], outputDirectory: directory)
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.standardError.split(separator: "\n").count, 1, missing.standardError)
    }

    /// A metrics.jsonl that is not UTF-8 is named with the line where it stops being UTF-8.
    func testPlotSaysWhereAFileIsNotUTF8() throws {
        let garbled = directory.appendingPathComponent("garbled")
        try FileManager.default.createDirectory(at: garbled, withIntermediateDirectories: true)
        try Data(Array("{}\n".utf8) + [0x7B, 0xFF, 0x7D, 0x0A]).write(to: garbled.appendingPathComponent("metrics.jsonl"))
        let outcome = try DistTrainExecutable.run(["plot", garbled.path], outputDirectory: directory)
        XCTAssertEqual(outcome.status, 1)
        XCTAssertEqual(outcome.standardError.split(separator: "\n").count, 1, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("metrics.jsonl: cannot read the file: not UTF-8 at line 2"), outcome.standardError)
    }

    /// `eval --measure`: for the full network and five budgets, every test sample leaves at the
    /// exit and with the class the simulation on `logits.h5` gives, so the MADDs really spent
    /// equal the expected ones; the table is printed and `early-exit.csv` written.
    func testMeasuredEarlyExitAgreesWithTheSimulation() throws {
        let run = try trainedRun()
        let outcome = try DistTrainExecutable.run(["eval", run.configuration, "--measure"], outputDirectory: directory)
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        XCTAssertTrue(outcome.standardOutput.contains("early exit on the clock"), outcome.standardOutput)
        let csv = try String(contentsOf: run.runDirectory.appendingPathComponent("early-exit.csv"), encoding: .utf8)
        let rows = csv.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        XCTAssertEqual(rows.count, 6, csv)
        XCTAssertEqual(rows.first?.first, "full")
        let budgets = try BudgetReport.read(from: run.runDirectory.appendingPathComponent("budgets.csv").path)
        for row in rows {
            XCTAssertEqual(row[6], "96", "samples whose exit and class equal the simulation's: \(row)")
            XCTAssertEqual(row[7], "96")
            let expected = Double(row[1])!, measured = Double(row[2])!
            XCTAssertEqual(measured, expected, accuracy: expected * 1e-6, "MADDs spent against expected: \(row)")
            XCTAssertGreaterThan(Double(row[3])!, 0, "images/s")
            if row[0] != "full" {
                let point = budgets.first { String(format: "%.2f", $0.p) == row[0] }
                XCTAssertNotNil(point, "budget \(row[0]) is one of budgets.csv")
                XCTAssertEqual(Double(row[5])!, point?.testAccuracy ?? -1, accuracy: 1e-3, "early-exit accuracy = simulated: \(row)")
            }
        }
    }

    /// `predict` on PNG files of test images: class, confidence and exit equal the simulation's
    /// (thresholds of budget p chosen on the hold-out, applied to the test probabilities of
    /// `logits.h5`); the RGB copy of image 0 gives the same; a JPEG is classified; a file of the
    /// wrong size, a broken PNG, a text file, a missing file and an HDF5 file that is not a shard get
    /// one error line each (saying why) and the rest still run.
    func testPredictClassifiesFilesAsTheEvaluationDoes() throws {
        let run = try trainedRun()
        let pixels = try IDXFile.loadSplit(root: Self.fashionMNIST, training: false, classCount: 10).prefix(4).pixels
        for sample in 0..<4 {
            try PNGWriter.write(Array(pixels[(sample * 784)..<((sample + 1) * 784)]), width: 28, height: 28, channels: 1,
                                to: directory.appendingPathComponent("gray-\(sample).png"))
        }
        let first = Array(pixels[0..<784])
        try PNGWriter.write(first.flatMap { [$0, $0, $0] }, width: 28, height: 28, channels: 3, to: directory.appendingPathComponent("rgb-0.png"))
        try PNGWriter.write([UInt8](repeating: 0, count: 30 * 28), width: 30, height: 28, channels: 1, to: directory.appendingPathComponent("wide.png"))
        try Data(try JPEGEncoder.encode(pixels: first, width: 28, height: 28, channels: 1)).write(to: directory.appendingPathComponent("gray-0.jpg"))
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3]).write(to: directory.appendingPathComponent("broken.png"))
        try Data("not an image".utf8).write(to: directory.appendingPathComponent("notes.txt"))
        let names = ["gray-0.png", "gray-1.png", "broken.png", "gray-2.png", "wide.png", "gray-3.png", "notes.txt", "rgb-0.png", "gray-0.jpg",
                     "missing.png"]
        let logitsPath = run.runDirectory.appendingPathComponent("logits.h5").path
        let outcome = try DistTrainExecutable.run(["predict", run.configuration, "--budget", "0.4"]
                                                  + names.map { directory.appendingPathComponent($0).path } + [logitsPath],
                                                  outputDirectory: directory)
        XCTAssertEqual(outcome.status, 1, "a bad file makes the status 1: \(outcome.standardError)")
        let lines = outcome.standardOutput.split(separator: "\n").map(String.init)
        func line(_ name: String) -> String? { lines.first { $0.hasPrefix(directory.appendingPathComponent(name).path + ":") } }

        let logits = try ExitLogits.read(from: run.runDirectory.appendingPathComponent("logits.h5").path)
        let exits = logits.test.exitCount
        let thresholds = BudgetedEvaluation.thresholds(validation: logits.validation,
                                                       proportions: BudgetedEvaluation.exitProportions(p: 0.4, exitCount: exits))
        let (confidence, prediction) = logits.test.confidences()
        for sample in 0..<4 {
            let exit = (0..<exits).first { $0 == exits - 1 || confidence[$0][sample] >= thresholds[$0] }!
            let expected = String(format: ": class %d, confidence %.4f, exit %d of 0-%d", prediction[exit][sample],
                                  confidence[exit][sample], exit, exits - 1)
            XCTAssertEqual(line("gray-\(sample).png").map { $0.contains(expected) }, true,
                           "gray-\(sample).png: expected \(expected) in\n\(outcome.standardOutput)")
            if sample == 0 { XCTAssertEqual(line("rgb-0.png").map { $0.contains(expected) }, true, outcome.standardOutput) }
        }
        XCTAssertEqual(line("gray-0.jpg")?.contains(": class "), true, outcome.standardOutput)
        for bad in ["broken.png", "wide.png", "notes.txt"] {
            XCTAssertEqual(line(bad)?.contains(": error: "), true, "\(bad) gets one error line:\n\(outcome.standardOutput)")
        }
        XCTAssertEqual(line("wide.png"), directory.appendingPathComponent("wide.png").path
                       + ": error: 30x28 pixels, expected 28x28 as the fashion-mnist images")
        XCTAssertEqual(line("missing.png"), directory.appendingPathComponent("missing.png").path
                       + ": error: cannot read the file: no such file or directory")
        // An HDF5 file that is not a shard (the run's own logits) is named as such, whatever the data set.
        XCTAssertEqual(lines.first { $0.hasPrefix(logitsPath + ":") }, logitsPath
                       + ": error: an HDF5 file but not a data shard (no 'labels' dataset, as prepare imagenet writes)")
        XCTAssertEqual(lines.filter { $0.contains(": error: ") }.count, 5)
    }
}
