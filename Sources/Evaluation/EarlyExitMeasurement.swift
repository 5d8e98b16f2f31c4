import DataPipeline
import Dispatch
import Foundation
import Model

/// Early exit on the clock (`disttrain eval --measure`): the test set goes through the network
/// block by block (`EarlyExitInference`) with the thresholds of several budgets, and the time of
/// the forward passes alone (data loading excluded) gives images per second and milliseconds per
/// image beside the MADDs the budget expects; the full network (every exit computed) is timed
/// the same way. Each sample's exit and class are compared with the simulation's (the
/// thresholds applied to `logits.h5`), which they must equal.
public struct EarlyExitMeasurement: Sendable, Equatable {
    /// The budget's p; nil for the full network.
    public var p: Double?
    /// Average MADDs per image the simulation expects (full network: the last exit's).
    public var expectedMADDs: Double
    /// Average MADDs per image of the exits the samples really left at.
    public var measuredMADDs: Double
    public var imagesPerSecond: Double
    public var millisecondsPerImage: Double
    /// Top-1 test accuracy (percent) of the early-exit predictions.
    public var testAccuracy: Double
    /// Samples whose exit and class equal the simulation's.
    public var agreeing: Int
    public var samples: Int

    /// At most `count` budgets spread evenly over `points` (first and last included).
    public static func chooseBudgets(_ points: [BudgetedEvaluation.BudgetPoint], count: Int = 5) -> [BudgetedEvaluation.BudgetPoint] {
        guard points.count > count else { return points }
        let indices = (0..<count).map { Int((Double($0) * Double(points.count - 1) / Double(count - 1)).rounded()) }
        return Array(Set(indices)).sorted().map { points[$0] }
    }

    /// Measures `budgets` and the full network on `batches` (the test set, in `test`'s order).
    public static func measure(network: TrainableNetwork, batches: BatchStream, budgets: [BudgetedEvaluation.BudgetPoint],
                        test: BudgetedEvaluation.ExitProbabilities, exitMADDs: [Double]) throws -> [EarlyExitMeasurement] {
        let exits = network.exitCount, classes = network.classCount
        let inference = EarlyExitInference(network: network)
        let full = [Float](repeating: .infinity, count: exits)
        let runs = [full] + budgets.map(\.thresholds)
        let (confidence, prediction) = test.confidences()
        var seconds = [Double](repeating: 0, count: runs.count)
        var agreeing = [Int](repeating: 0, count: runs.count)
        var correct = [Int](repeating: 0, count: runs.count)
        var madds = [Double](repeating: 0, count: runs.count)
        let logits = (0..<exits).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: network.maximumBatchSize * classes) }
        defer { logits.forEach { $0.deallocate() } }
        var first = 0
        while let batch = try batches.next() {
            if first == 0 { network.predict(images: batch.images, count: batch.count, logits: logits) }  // warm-up
            for (run, thresholds) in runs.enumerated() {
                let started = DispatchTime.now().uptimeNanoseconds
                let decisions: [EarlyExitInference.Decision]
                if run == 0 {
                    network.predict(images: batch.images, count: batch.count, logits: logits)
                    seconds[run] += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: classes)
                    defer { scratch.deallocate() }
                    decisions = (0..<batch.count).map { row in
                        let (value, predicted) = ExitConfidence.confidence(logits: logits[exits - 1] + row * classes,
                                                                           classes: classes, scratch: scratch)
                        return EarlyExitInference.Decision(exit: exits - 1, predictedClass: predicted, confidence: value)
                    }
                } else {
                    decisions = inference.classify(images: batch.images, count: batch.count, thresholds: thresholds)
                    seconds[run] += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                }
                for (row, decision) in decisions.enumerated() {
                    let sample = first + row
                    let exit = (0..<exits).first { $0 == exits - 1 || confidence[$0][sample] >= thresholds[$0] }!
                    if decision.exit == exit && decision.predictedClass == prediction[exit][sample] { agreeing[run] += 1 }
                    if decision.predictedClass == test.labels[sample] { correct[run] += 1 }
                    madds[run] += exitMADDs[decision.exit]
                }
            }
            first += batch.count
        }
        let samples = max(first, 1)
        return runs.indices.map { run in
            EarlyExitMeasurement(
                p: run == 0 ? nil : budgets[run - 1].p,
                expectedMADDs: run == 0 ? exitMADDs[exits - 1] : budgets[run - 1].expectedMADDs,
                measuredMADDs: madds[run] / Double(samples),
                imagesPerSecond: Double(first) / max(seconds[run], 1e-9),
                millisecondsPerImage: 1000 * seconds[run] / Double(samples),
                testAccuracy: 100 * Double(correct[run]) / Double(samples),
                agreeing: agreeing[run], samples: first)
        }
    }

    /// `early-exit.csv`: one row per measurement, the full network first (`p` = `full`).
    public static func csv(_ rows: [EarlyExitMeasurement]) -> String {
        "p,expected_madds,measured_madds,images_per_second,ms_per_image,test_accuracy,agreeing,samples\n" + rows.map {
            ($0.p.map { String(format: "%.2f", $0) } ?? "full")
                + String(format: ",%.0f,%.0f,%.2f,%.4f,%.4f,%d,%d\n", $0.expectedMADDs, $0.measuredMADDs, $0.imagesPerSecond,
                         $0.millisecondsPerImage, $0.testAccuracy, $0.agreeing, $0.samples)
        }.joined()
    }

    /// The rows as the final summary prints them.
    public static func table(_ rows: [EarlyExitMeasurement], threads: Int, batchSize: Int) -> String {
        var lines = [
            "early exit on the clock (test set, \(threads) thread(s), batches of \(batchSize); forward passes only):",
            "     p   expected MADDs (M)   measured MADDs (M)   images/s   ms/image   test acc %   same exit+class as simulation",
        ]
        for row in rows {
            lines.append((row.p.map { String(format: "%6.2f", $0) } ?? "  full")
                + String(format: "   %18.3f   %18.3f   %8.1f   %8.3f   %10.2f   %d/%d", row.expectedMADDs / 1e6, row.measuredMADDs / 1e6,
                         row.imagesPerSecond, row.millisecondsPerImage, row.testAccuracy, row.agreeing, row.samples))
        }
        return lines.joined(separator: "\n")
    }
}
