import DistTrain
import ReferenceParity
import TestSupport
import Foundation
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

    /// The regression fixtures of `benchmarks/reference_sweep.py` in `Tests/Fixtures/reference-sweep`
    /// (their README says what each covers): every group of every one within tolerance.
    func testSweptArchitecturesMatchReference() throws {
        let directory = FixtureLocation.repositoryRoot.appendingPathComponent("Tests/Fixtures/reference-sweep")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".h5") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 4, "regression fixtures missing in \(directory.path)")
        for name in files {
            let report = try ReferenceCheck.run(file: directory.appendingPathComponent(name).path)
            print(report)
            XCTAssertEqual(Set(report.comparisons.map { $0.name.split(separator: "/").first.map(String.init) ?? $0.name }),
                           ["phase1", "phase1_without_ge", "eval", "sgd_two_steps", "phase2"], name)
            for comparison in report.comparisons {
                XCTAssertTrue(comparison.passed, "\(name) \(comparison.name): \(comparison.worstTensor) error/tolerance \(comparison.errorOverTolerance)")
            }
        }
    }
}
