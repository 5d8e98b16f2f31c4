import Foundation
import Model
import XCTest

/// `info` and `check-reference` as a user runs them.
final class ModelCommandTests: TemporaryDirectoryTestCase {
    private var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    private var fixture: URL {
        if let path = ProcessInfo.processInfo.environment["DISTTRAIN_FIXTURES"] {
            return URL(fileURLWithPath: path).appendingPathComponent("msdnet-cifar-tiny.h5")
        }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/msdnet-cifar-tiny.h5")
    }

    /// The paper's Table 1: cumulative MADDs of the 7-exit CIFAR-100 network.
    func testInfoPrintsThePapersTable1() throws {
        let outcome = try DistTrainExecutable.run(["info", repositoryRoot.appendingPathComponent("cluster/cifar100.json").path],
                                                  outputDirectory: directory)
        XCTAssertEqual(outcome.status, 0, outcome.standardError)
        for madds in ["6.86M", "14.35M", "27.29M", "48.45M", "76.43M", "108.85M", "137.28M"] {
            XCTAssertTrue(outcome.standardOutput.contains(madds), "\(madds) missing from:\n\(outcome.standardOutput)")
        }
        XCTAssertTrue(outcome.standardOutput.contains("3.967M (3966664)"), outcome.standardOutput)
    }

    func testCheckReferencePassesOnTheFixtureAndFailsOnATamperedCopy() throws {
        let passing = try DistTrainExecutable.run(["check-reference", fixture.path], outputDirectory: directory)
        XCTAssertEqual(passing.status, 0, passing.standardOutput + passing.standardError)
        for group in ["phase1/grad", "phase1_without_ge/grad", "eval/logits", "sgd_two_steps/params", "phase2/grad", "dynamic"] {
            XCTAssertTrue(passing.standardOutput.contains(group), "\(group) missing from:\n\(passing.standardOutput)")
        }

        // One gradient entry moved by 1.0: the check must name the group and fail.
        let tampered = directory.appendingPathComponent("tampered.h5")
        try FileManager.default.copyItem(at: fixture, to: tampered)
        let edit = Process()
        edit.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        edit.arguments = ["python3", "-c", """
            import h5py, sys
            with h5py.File(sys.argv[1], 'r+') as f:
                d = f['phase1/grad/classifier.0.linear.weight']
                d[0, 0] = d[0, 0] + 1.0
            """, tampered.path]
        try edit.run()
        edit.waitUntilExit()
        XCTAssertEqual(edit.terminationStatus, 0, "python3 with h5py is needed (make deps)")
        let failing = try DistTrainExecutable.run(["check-reference", tampered.path], outputDirectory: directory)
        XCTAssertEqual(failing.status, 1, failing.standardOutput + failing.standardError)
        let phase1Line = failing.standardOutput.split(separator: "\n").first { $0.hasPrefix("phase1/grad ") }
        XCTAssertTrue(phase1Line?.contains("classifier.0.linear.weight") ?? false, failing.standardOutput)
    }

    /// `DISTTRAIN_KERNELS` forces each kernel path the CPU runs, the run says which, and every one
    /// matches the reference; a path that does not exist is refused in one line.
    func testEveryKernelPathPassesTheReferenceCheckAndABadOneIsRefused() throws {
        for path in KernelPath.supported {
            let outcome = try DistTrainExecutable.run(["check-reference", fixture.path],
                                                      environment: [KernelPath.environmentVariable: path.rawValue],
                                                      outputDirectory: directory)
            XCTAssertEqual(outcome.status, 0, "\(path): " + outcome.standardOutput + outcome.standardError)
        }
        let bench = try DistTrainExecutable.run(["bench", repositoryRoot.appendingPathComponent("cluster/fashion-mnist.json").path,
                                                 "--steps", "1", "--batch-size", "2", "--json"],
                                                environment: [KernelPath.environmentVariable: "portable"], outputDirectory: directory)
        XCTAssertEqual(bench.status, 0, bench.standardError)
        XCTAssertTrue(bench.standardOutput.contains("portable kernels"), bench.standardOutput)
        let lastLine = String(bench.standardOutput.split(separator: "\n").last ?? "")
        let report = try JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any]
        XCTAssertEqual(report?["kernelPath"] as? String, "portable", lastLine)
        for key in ["trainImagesPerSecond", "phase2ImagesPerSecond", "evalImagesPerSecond", "achievedGFLOPs", "sgemmGFLOPs",
                    "peakResidentBytes", "allocationsPerStep"] {
            XCTAssertNotNil(report?[key], "\(key) missing from \(lastLine)")
        }
        let refused = try DistTrainExecutable.run(["info", repositoryRoot.appendingPathComponent("cluster/cifar100.json").path],
                                                  environment: [KernelPath.environmentVariable: "sse9"], outputDirectory: directory)
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.standardError, "error: DISTTRAIN_KERNELS=sse9: expected one of portable, avx2, avx512\n")
    }

    /// A fixture that is not there is a failure (status 1; 2 is for a rejected run file), said plainly.
    func testCheckReferenceOnAMissingFileIsAOneLineError() throws {
        let path = directory.appendingPathComponent("absent.h5").path
        let outcome = try DistTrainExecutable.run(["check-reference", path], outputDirectory: directory)
        XCTAssertEqual(outcome.status, 1)
        XCTAssertEqual(outcome.standardError, "error: cannot open \(path): no such file\n")
    }

    /// Files that are not what a command expects (a directory, a text file posing as HDF5) end in
    /// one readable line from every command that reads them, never a library's stack of messages.
    func testUnreadableInputsAreOneLineForEveryReadingCommand() throws {
        let folder = directory.appendingPathComponent("a-directory.h5")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let text = directory.appendingPathComponent("text.h5")
        try Data("not HDF5\n".utf8).write(to: text)
        for arguments in [["check-reference", folder.path], ["check-reference", text.path], ["plot", text.path]] {
            let outcome = try DistTrainExecutable.run(arguments, outputDirectory: directory)
            XCTAssertEqual(outcome.status, 1, "\(arguments): \(outcome.standardError)")
            XCTAssertTrue(outcome.standardError.hasPrefix("error: "), "\(arguments): \(outcome.standardError)")
            XCTAssertEqual(outcome.standardError.filter { $0 == "\n" }.count, 1, "\(arguments): \(outcome.standardError)")
            XCTAssertLessThan(outcome.standardError.count, 300, "\(arguments): \(outcome.standardError)")
        }
    }
}
