@testable import DistTrain
import Foundation
import Model
import TestSupport
import XCTest

/// The README's run-file table documents exactly the keys the reader accepts: a key added to the
/// schema without a row, or a row left for a key that is gone, fails here.
final class RunFileDocumentationTests: XCTestCase {
    /// Every key path the strict reader accepts; objects are listed as well as their members.
    static func schemaKeyPaths() -> Set<String> {
        let sections: [String: [String]] = [
            "data": DataConfiguration.keys, "model": MSDNetConfiguration.keys,
            "phase1": PhaseConfiguration.keys, "phase2": PhaseConfiguration.keys,
            "isc": InlineSubnetworkCollaborationConfiguration.keys, "ofa": OneForAllDistillationConfiguration.keys,
            "checkpoint": CheckpointConfiguration.keys, "evaluation": EvaluationConfiguration.keys,
            "distributed": DistributedConfiguration.keys,
        ]
        var paths = Set(RunConfiguration.keys)
        for (section, keys) in sections {
            for key in keys { paths.insert("\(section).\(key)") }
        }
        for phase in ["phase1", "phase2"] {
            for key in LearningRateSchedule.keys { paths.insert("\(phase).schedule.\(key)") }
        }
        return paths
    }

    /// The key paths in the first column of the README's run-file table (`phaseN.` stands for both phases).
    static func documentedKeyPaths() throws -> Set<String> {
        let readme = try String(contentsOf: FixtureLocation.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let lines = readme.components(separatedBy: "\n")
        guard let header = lines.firstIndex(of: "| key | type | default | meaning |") else {
            XCTFail("README.md has no run-file key table")
            return []
        }
        var paths = Set<String>()
        for line in lines[(header + 2)...] {
            guard line.hasPrefix("|") else { break }
            let firstCell = line.split(separator: "|", omittingEmptySubsequences: false)[1]
            for piece in firstCell.split(separator: "`").enumerated() where piece.offset % 2 == 1 {
                let key = String(piece.element)
                if key.hasPrefix("phaseN.") {
                    paths.insert("phase1." + key.dropFirst(7))
                    paths.insert("phase2." + key.dropFirst(7))
                } else {
                    paths.insert(key)
                }
            }
        }
        return paths
    }

    func testReadmeTableListsExactlyTheKeysTheReaderAccepts() throws {
        let schema = Self.schemaKeyPaths()
        let documented = try Self.documentedKeyPaths()
        // A section is documented through its members; its own row is optional.
        let sections = Set(schema.filter { path in schema.contains { $0.hasPrefix(path + ".") } })
        XCTAssertEqual(schema.subtracting(sections).subtracting(documented).sorted(), [], "keys the README does not document")
        XCTAssertEqual(documented.subtracting(schema).sorted(), [], "README rows for keys the reader rejects")
    }
}
