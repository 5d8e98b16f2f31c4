import DistTrain
import XCTest

/// Recomputes the authors' PyTorch reference dump (`fixtures/msdnet-cifar-tiny.h5`: phase-I
/// forward and gradients with and without GE, BN buffers, evaluation logits, two SGD steps,
/// IMTA phase II, budgeted evaluation) and requires every group within the fixture README's tolerances.
final class ReferenceParityTests: XCTestCase {
    func testTinyMSDNetMatchesReference() throws {
        let report = try ReferenceCheck.run(file: FixtureLocation.path("msdnet-cifar-tiny.h5"))
        print(report)
        let groups = Set(report.comparisons.map { $0.name.split(separator: "/").first.map(String.init) ?? $0.name })
        XCTAssertEqual(groups, ["phase1", "phase1_without_ge", "eval", "sgd_two_steps", "phase2", "dynamic"])
        for comparison in report.comparisons {
            XCTAssertTrue(comparison.passed, "\(comparison.name): \(comparison.worstTensor) error/tolerance \(comparison.errorOverTolerance)")
        }
    }
}
