@testable import Evaluation
import Foundation
import XCTest

/// `metrics.jsonl` as `training.svg` reads it: phase II continues the epoch axis, a resumed
/// run's repeated epoch counts once, an incomplete last line (a run killed while appending) is
/// left out, and a malformed line elsewhere is reported with its number.
final class TrainingPlotTests: XCTestCase {
    private func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).jsonl").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private let records = """
        {"kind":"step","phase":1,"epoch":1,"step":2,"stepsPerEpoch":4,"loss":3.0}
        {"kind":"epoch","phase":1,"epoch":1,"loss":2.5,"validationAccuracy":[10,20],"trainAccuracy":[11,21]}
        {"kind":"epoch","phase":1,"epoch":2,"loss":2.4,"validationAccuracy":[12,22],"trainAccuracy":[13,23]}
        {"kind":"epoch","phase":1,"epoch":2,"loss":2.0,"validationAccuracy":[30,40],"trainAccuracy":[13,23]}
        {"kind":"epoch","phase":2,"epoch":1,"loss":1.5,"validationAccuracy":[50,60],"trainAccuracy":[51,61]}

        """

    func testEpochsOfBothPhasesAndAResumedEpoch() throws {
        let (epochs, steps) = try TrainingPlot.read(try write(records))
        XCTAssertEqual(epochs.map(\.loss), [2.5, 2.0, 1.5], "the later record of a repeated epoch counts")
        XCTAssertEqual(steps.map(\.epoch), [0.5])
        let svg = TrainingPlot.svg(epochs: epochs, steps: steps)
        XCTAssertTrue(svg.contains("validation accuracy per exit"))
        XCTAssertTrue(svg.contains(">phase II</text>"), "the phase boundary is marked")
        XCTAssertTrue(svg.contains(">exit 1</text>"))
    }

    func testIncompleteLastLineIsLeftOutAndAMalformedLineReported() throws {
        let truncated = try write(records + "{\"kind\":\"epoch\",\"pha")
        XCTAssertEqual(try TrainingPlot.read(truncated).epochs.count, 3)
        let malformed = try write("{\"kind\":\"epoch\"}\n" + records)
        XCTAssertThrowsError(try TrainingPlot.read(malformed)) { error in
            XCTAssertEqual("\(error)", "\(malformed): line 1: expected a JSON record with kind, phase, epoch and loss")
        }
    }
}
