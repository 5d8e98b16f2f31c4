@testable import DataPipeline
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
            "data": DataConfiguration.Key.names, "model": MSDNetConfiguration.Key.names,
            "phase1": PhaseConfiguration.Key.names, "phase2": PhaseConfiguration.Key.names,
            "isc": InlineSubnetworkCollaborationConfiguration.Key.names,
            "ofa": OneForAllDistillationConfiguration.Key.names,
            "checkpoint": CheckpointConfiguration.Key.names, "evaluation": EvaluationConfiguration.Key.names,
            "distributed": DistributedConfiguration.Key.names,
        ]
        var paths = Set(RunConfiguration.Key.names)
        for (section, keys) in sections {
            for key in keys { paths.insert("\(section).\(key)") }
        }
        for phase in ["phase1", "phase2"] {
            for key in LearningRateSchedule.Key.names { paths.insert("\(phase).schedule.\(key)") }
        }
        return paths
    }

    /// The schema's key paths that hold values rather than objects.
    static func schemaLeafKeyPaths() -> Set<String> {
        let schema = schemaKeyPaths()
        return schema.filter { path in !schema.contains { $0.hasPrefix(path + ".") } }
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
        let documented = try Self.documentedKeyPaths()
        // A section is documented through its members; its own row is optional.
        XCTAssertEqual(Self.schemaLeafKeyPaths().subtracting(documented).sorted(), [], "keys the README does not document")
        XCTAssertEqual(documented.subtracting(Self.schemaKeyPaths()).sorted(), [], "README rows for keys the reader rejects")
    }

    // MARK: - Every key is read and written

    /// A run file that sets every key, each to a value other than its default where the key allows
    /// one (`model.inputChannels` must be the data set's). A phase's schedule keys depend on its
    /// kind, so `swapSchedules` exchanges the two phases' schedules to cover each key in each phase.
    static func completeRunFile(swapSchedules: Bool) -> [String: Any] {
        let stepSchedule: [String: Any] = ["kind": "step", "every": 5, "factor": 0.5]
        let multistepSchedule: [String: Any] = ["kind": "multistep", "milestones": [0.3, 0.6], "factor": 0.2]
        return [
            "name": "every-key", "runDir": "elsewhere", "seed": 7, "threadsPerRank": 3,
            "gradientEquilibrium": false, "syncBatchNorm": true,
            "data": ["dataset": "imagenet", "root": "/data", "validationHoldout": 100, "limitTrain": 1000,
                     "limitTest": 200, "workers": 2],
            "model": ["stem": "cifar", "inputChannels": 3, "inputSize": 32, "classes": 50, "nBlocks": 3,
                      "stepmode": "even", "step": 2, "base": 3, "nChannels": 8, "growthRate": 4,
                      "grFactor": [1, 2], "bnFactor": [1, 2], "prune": "min", "reduction": 0.25,
                      "bottleneck": false, "initialization": "he-normal"],
            "phase1": ["epochs": 2, "batchSize": 16, "lr": 0.05, "momentum": 0.8, "nesterov": false,
                       "weightDecay": 5e-4, "schedule": swapSchedules ? multistepSchedule : stepSchedule],
            "phase2": ["epochs": 1, "batchSize": 8, "lr": 0.02, "momentum": 0.7, "nesterov": true,
                       "weightDecay": 0, "schedule": swapSchedules ? stepSchedule : multistepSchedule],
            "isc": ["detach": true],
            "ofa": ["temperature": 2, "gamma": 0.3, "reduction": "batchmean"],
            "checkpoint": ["everySteps": 10, "keep": 5],
            "evaluation": ["enabled": false, "budgets": 20, "batchSize": 64],
            "distributed": ["stallTimeout": 30, "bucketBytes": 1 << 20],
        ]
    }

    /// The dotted paths of the values (not the objects) in a JSON object.
    static func leafKeyPaths(_ object: [String: Any], under prefix: String = "") -> Set<String> {
        var paths = Set<String>()
        for (key, value) in object {
            let path = prefix.isEmpty ? key : "\(prefix).\(key)"
            if let nested = value as? [String: Any] {
                paths.formUnion(leafKeyPaths(nested, under: path))
            } else {
                paths.insert(path)
            }
        }
        return paths
    }

    /// `object` with the value at `keyPath` replaced by `transform` of it.
    static func changing(_ keyPath: [String], in object: [String: Any], _ transform: (Any) -> Any) -> [String: Any] {
        var result = object
        let key = keyPath[0]
        if keyPath.count == 1 {
            result[key] = transform(object[key]!)
        } else {
            result[key] = changing(Array(keyPath.dropFirst()), in: object[key] as! [String: Any], transform)
        }
        return result
    }

    /// Another value of the same JSON type: a reader that reads the key then either reads
    /// something else or rejects it.
    static func otherValue(_ value: Any) -> Any {
        switch value {
        case let flag as Bool: return !flag
        case let integer as Int: return integer + 1
        case let number as Double: return number / 2
        case let text as String: return text + "-other"
        case let array as [Any]: return Array(array.dropLast())
        default: preconditionFailure("unexpected JSON value \(value)")
        }
    }

    /// A key declared in one place only cannot pass: a key of the schema that no complete run
    /// file sets fails the coverage check, one the reader ignores reads the same with another
    /// value, and one `encode(to:)` leaves out does not come back from the encoded configuration.
    func testEveryKeyIsReadAndWrittenBack() throws {
        let files = [Self.completeRunFile(swapSchedules: false), Self.completeRunFile(swapSchedules: true)]
        XCTAssertEqual(files.reduce(into: Set<String>()) { $0.formUnion(Self.leafKeyPaths($1)) }.sorted(),
                       Self.schemaLeafKeyPaths().sorted(), "the complete run files set exactly the schema's keys")
        for file in files {
            let json = try JSONSerialization.data(withJSONObject: file, options: [.sortedKeys])
            let configuration = try RunConfiguration(json: json, file: "complete.json")
            for keyPath in Self.leafKeyPaths(file).sorted() {
                let changed = Self.changing(keyPath.split(separator: ".").map(String.init), in: file, Self.otherValue)
                let changedJSON = try JSONSerialization.data(withJSONObject: changed, options: [.sortedKeys])
                if let read = try? RunConfiguration(json: changedJSON, file: "changed.json") {
                    XCTAssertNotEqual(read, configuration, "\(keyPath) is not read: another value reads the same")
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let encoded = try encoder.encode(configuration)
            let written = try XCTUnwrap(JSONSerialization.jsonObject(with: encoded) as? [String: Any])
            XCTAssertEqual(Self.leafKeyPaths(written).sorted(), Self.leafKeyPaths(file).sorted(), "encode(to:) writes every key that was read")
            XCTAssertEqual(written as NSDictionary, file as NSDictionary, "encode(to:) writes each value as the file has it")
            XCTAssertEqual(try RunConfiguration(json: encoded, file: "encoded.json"), configuration)
        }
    }
}
