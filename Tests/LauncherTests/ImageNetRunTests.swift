@testable import DataPipeline
@testable import DistTrain
@testable import Evaluation
import Foundation
@testable import Storage
import XCTest

/// The ImageNet path end to end: a class-folder tree of JPEGs, `disttrain prepare imagenet`, then
/// training with the ImageNet stem (7x7 stride-2 convolution with bias + max-pool) on the shards,
/// RandomResizedCrop for training and resize + centre crop for evaluation.
final class ImageNetRunTests: TemporaryDirectoryTestCase {
    /// `count` RGB JPEGs per class of varying sizes; class c is tinted by c so the classes differ.
    private func makeTree(split: String, classes: [String], count: Int) throws {
        for (index, name) in classes.enumerated() {
            let folder = directory.appendingPathComponent("tree/\(split)/\(name)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for image in 0..<count {
                let width = 80 + 8 * (image % 4), height = 72 + 6 * (image % 3)
                var pixels = [UInt8](repeating: 0, count: width * height * 3)
                for y in 0..<height {
                    for x in 0..<width {
                        let base = (y * width + x) * 3
                        pixels[base + index % 3] = UInt8((x * 255) / width)
                        pixels[base + (index + 1) % 3] = UInt8((y * 255) / height)
                        pixels[base + (index + 2) % 3] = UInt8((image * 37) % 256)
                    }
                }
                let jpeg = try JPEGEncoder.encode(pixels: pixels, width: width, height: height, channels: 3)
                try Data(jpeg).write(to: folder.appendingPathComponent("\(name)_\(image).JPEG"))
            }
        }
        // A file that is not a JPEG is reported and skipped, not fatal.
        try Data("not an image".utf8).write(to: directory.appendingPathComponent("tree/\(split)/\(classes[0])/broken.JPEG"))
    }

    func testPrepareThenTrainOnShards() throws {
        let classes = ["n01440764", "n01443537", "n01484850"]
        try makeTree(split: "train", classes: classes, count: 24)
        try makeTree(split: "val", classes: classes, count: 8)
        let shards = directory.appendingPathComponent("shards")
        let prepared = try DistTrainExecutable.run(
            ["prepare", "imagenet", "--from", directory.appendingPathComponent("tree").path, "--out", shards.path, "--shard-size", "32"],
            outputDirectory: directory)
        XCTAssertEqual(prepared.status, 0, prepared.standardOutput + prepared.standardError)
        XCTAssertTrue((prepared.standardOutput + prepared.standardError).contains("broken.JPEG"), prepared.standardOutput + prepared.standardError)

        let phase: [String: Any] = ["epochs": 1, "batchSize": 16, "lr": 0.05, "schedule": ["kind": "step", "every": 30]]
        let configuration: [String: Any] = [
            "name": "imagenet-tiny", "runDir": directory.appendingPathComponent("run").path, "seed": 3, "threadsPerRank": 1,
            "data": ["dataset": "imagenet", "root": shards.path, "validationHoldout": 8],
            "model": ["stem": "imagenet", "inputSize": 64, "classes": 3, "nBlocks": 2, "stepmode": "even", "step": 1,
                      "base": 1, "nChannels": 4, "growthRate": 2, "grFactor": [1, 2], "bnFactor": [1, 2]],
            "phase1": phase, "phase2": phase,
            "evaluation": ["enabled": true, "budgets": 4, "batchSize": 16],
        ]
        let path = directory.appendingPathComponent("imagenet-tiny.json")
        try JSONSerialization.data(withJSONObject: configuration).write(to: path)
        let trained = try DistTrainExecutable.run(["train", path.path], outputDirectory: directory)
        XCTAssertEqual(trained.status, 0, trained.standardOutput + trained.standardError)

        let logits = try ExitLogits.read(from: directory.appendingPathComponent("run/logits.h5").path)
        XCTAssertEqual(logits.validation.sampleCount, 8)
        XCTAssertEqual(logits.test.sampleCount, 3 * 8)
        XCTAssertEqual(logits.test.classCount, 3)
        XCTAssertEqual(logits.test.labels.sorted(), (0..<3).flatMap { Array(repeating: $0, count: 8) })
        let checkpoint = try HDF5File.open(directory.appendingPathComponent("run/checkpoints/phase2-epoch1.h5").path)
        defer { try? checkpoint.close() }
        // The ImageNet stem's first convolution has a bias (the reference builder).
        XCTAssertEqual(try checkpoint.root.read("model/net.blocks.0.0.layers.0.0.bias", as: Float.self).shape, [4])

        // predict on the test shard: every sample as the simulation on logits.h5 classifies it;
        // a JPEG file of the tree is classified through the same resize and crop.
        let shard = shards.appendingPathComponent("val/SHARD-00000.h5").path
        let jpeg = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("tree/val/\(classes[1])").path)
            .first { $0.hasSuffix(".JPEG") && $0 != "broken.JPEG" }!
        let jpegPath = directory.appendingPathComponent("tree/val/\(classes[1])/\(jpeg)").path
        let pngPath = directory.appendingPathComponent("tinted.png")
        var tinted = [UInt8](repeating: 90, count: 40 * 30 * 3)
        for pixel in 0..<(40 * 30) {
            tinted[3 * pixel] = UInt8(pixel % 251)
            tinted[3 * pixel + 2] = UInt8(pixel % 7 * 30)
        }
        try PNGWriter.write(tinted, width: 40, height: 30, channels: 3, to: pngPath)
        let predicted = try DistTrainExecutable.run(["predict", path.path, "--budget", "1", shard, jpegPath, pngPath.path],
                                                    outputDirectory: directory)
        XCTAssertEqual(predicted.status, 0, predicted.standardOutput + predicted.standardError)
        let thresholds = BudgetedEvaluation.thresholds(validation: logits.validation,
                                                       proportions: BudgetedEvaluation.exitProportions(p: 1, exitCount: 2))
        let (confidence, prediction) = logits.test.confidences()
        for sample in 0..<24 {
            let exit = confidence[0][sample] >= thresholds[0] ? 0 : 1
            let label = logits.test.labels[sample]
            let expected = "\(shard)[\(sample)]: class \(prediction[exit][sample]) (label \(label) \(classes[label]))"
                + String(format: ", confidence %.4f, exit %d of 0-1", confidence[exit][sample], exit)
            XCTAssertTrue(predicted.standardOutput.contains(expected), "expected \(expected) in\n\(predicted.standardOutput)")
        }
        XCTAssertTrue(predicted.standardOutput.contains(jpegPath + ": class "), predicted.standardOutput)
        XCTAssertTrue(predicted.standardOutput.contains(pngPath.path + ": class "), predicted.standardOutput)
    }
}
