import DistTrain
import Foundation
import Storage
import XCTest

/// The inputs and faults of a hostile but realistic user (issue 10), through the `disttrain`
/// executable: each is refused or ends in a named state, with one line on standard error, the
/// documented status, nothing created by a refusal, and the last good checkpoint kept.
final class HostileInputTests: TemporaryDirectoryTestCase {
    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"

    /// A run file for a tiny two-exit network on 64 + `trainSteps` * 32 Fashion-MNIST images,
    /// one epoch of phase I, no phase II; `members` are added to (or replace) its sections.
    private func runFile(_ name: String = "run", trainSteps: Int = 2, dataRoot: String = fashionMNIST, runDir: URL? = nil,
                         members: [String: [String: Any]] = [:], rawTail: String = "") throws -> String {
        var sections: [String: [String: Any]] = [
            "data": ["dataset": "fashion-mnist", "root": dataRoot, "validationHoldout": 64,
                     "limitTrain": 64 + trainSteps * 32, "limitTest": 64],
            "model": ["nBlocks": 2, "stepmode": "even", "step": 1, "base": 1, "nChannels": 4, "growthRate": 2],
            "phase1": ["epochs": 1, "batchSize": 32, "lr": 0.1],
            "phase2": ["epochs": 0, "batchSize": 32, "lr": 0.1],
            "evaluation": ["enabled": false, "batchSize": 32],
        ]
        for (section, values) in members { sections[section, default: [:]].merge(values) { _, new in new } }
        var object: [String: Any] = sections
        object["name"] = name
        object["runDir"] = (runDir ?? runDirectory(name)).path
        object["seed"] = 3
        object["threadsPerRank"] = 1
        var text = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        if !rawTail.isEmpty { text = String(text.dropLast()) + ", " + rawTail + "}" }
        // Not named after `name`, which may be one a path cannot hold.
        let url = directory.appendingPathComponent("run-\(UUID().uuidString).json")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    private func runDirectory(_ name: String) -> URL { directory.appendingPathComponent(name) }

    private func checkpoints(_ name: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: runDirectory(name).appendingPathComponent("checkpoints").path)) ?? []).sorted()
    }

    private func disttrain(_ arguments: [String], ranks: Int? = nil) throws -> DistTrainExecutable.Outcome {
        try DistTrainExecutable.run(arguments, ranks: ranks, environment: ["OPENBLAS_NUM_THREADS": "1"], outputDirectory: directory)
    }

    /// Status `status` and exactly one line on standard error containing every one of `fragments`.
    private func assertOneLine(_ outcome: DistTrainExecutable.Outcome, status: Int32, containing fragments: [String],
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(outcome.status, status, outcome.standardError, file: file, line: line)
        let lines = outcome.standardError.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "one line: \(outcome.standardError)", file: file, line: line)
        XCTAssertLessThan(outcome.standardError.count, 400, "a short line: \(outcome.standardError)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(outcome.standardError.contains(fragment), "\(fragment) in: \(outcome.standardError)", file: file, line: line)
        }
    }

    /// A refused run file: status 2, one line naming the key, no run directory.
    private func assertRefused(_ arguments: [String], key: String, containing fragments: [String] = [],
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let outcome = try disttrain(arguments)
        assertOneLine(outcome, status: 2, containing: [": \(key): expected "] + fragments, file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDirectory("run").path), "nothing created", file: file, line: line)
    }

    // MARK: - Sizes checked before allocation

    func testBatchOfABillionIsRefusedForMemoryBeforeAnythingIsWritten() throws {
        try assertRefused([try runFile(members: ["phase1": ["batchSize": 1_000_000_000]])],
                          key: "phase1.batchSize", containing: ["for activations", "this machine has"])
    }

    func testBenchBatchOfABillionIsRefusedForMemoryAsTheRunFilesIs() throws {
        let outcome = try disttrain(["bench", try runFile(), "--batch-size", "1000000000", "--steps", "1"])
        assertOneLine(outcome, status: 64, containing: ["--batch-size: expected ", "for activations", "this machine has"])
    }

    /// `bench --data` measures on the run file's Fashion-MNIST, not on a path of its own.
    func testBenchDataReadsFashionMNISTFromTheRunFile() throws {
        let missing = directory.appendingPathComponent("no-fashion-mnist").path
        let outcome = try disttrain(["bench", try runFile(dataRoot: missing), "--data"])
        assertOneLine(outcome, status: 1, containing: [missing, "Fashion-MNIST"])
        let cifar = try disttrain(["bench", try runFile(members: ["data": ["dataset": "cifar10"]]), "--data"])
        assertOneLine(cifar, status: 1, containing: ["data.dataset: expected \"fashion-mnist\"", "got \"cifar10\""])
    }

    func testNamesThatAreNotOnePathComponentAreRefusedBeforeAnythingIsWritten() throws {
        for name in ["qa\u{0}evil", "..", ".", String(repeating: "n", count: 300)] {
            try assertRefused([try runFile(name, runDir: runDirectory("run"))], key: "name", containing: ["one path component"])
        }
    }

    /// p^i of a budget outside single precision was 0/0 or inf/inf, and `Int(NaN)` trapped.
    func testBudgetWhosePowersLeaveSinglePrecisionIsRefusedByPredict() throws {
        for budget in ["1e-300", "1e300", "1e20"] {
            let outcome = try disttrain(["predict", try runFile(), "--budget", budget, "/nonexistent.png"])
            XCTAssertEqual(outcome.status, 64, outcome.standardError)
            XCTAssertTrue(outcome.standardError.contains("--budget must be within 1.17549435"), outcome.standardError)
            XCTAssertTrue(outcome.standardError.contains("for this network's 2 exits"), outcome.standardError)
        }
    }

    func testBatchLargerThanTheTrainingSplitAfterTheHoldoutIsRefused() throws {
        try assertRefused([try runFile(members: ["data": ["limitTrain": 512], "phase1": ["batchSize": 1024]])],
                          key: "phase1.batchSize", containing: ["448 training images left"])
    }

    func testHoldoutAsLargeAsTheTrainingSetIsRefused() throws {
        try assertRefused([try runFile(members: ["data": ["limitTrain": 512, "validationHoldout": 512]])],
                          key: "data.validationHoldout", containing: ["fewer than the 512"])
    }

    func testBillionChannelsAreRefusedByTrainAndByInfo() throws {
        let path = try runFile(members: ["model": ["nChannels": 1_000_000_000]])
        try assertRefused([path], key: "model.nChannels", containing: ["this machine has"])
        try assertRefused(["info", path], key: "model.nChannels", containing: ["this machine has"])
    }

    /// 10^5 lin_grow blocks are 5 * 10^9 layers: `info` must answer without walking them.
    func testHundredThousandBlocksAreRefusedByInfo() throws {
        let path = try runFile(members: ["model": ["nBlocks": 100_000, "stepmode": "lin_grow"]])
        try assertRefused(["info", path], key: "model.nBlocks", containing: ["this machine has"])
        try assertRefused([path], key: "model.nBlocks")
    }

    // MARK: - Run file

    func testKeyRepeatedInOneObjectIsRefusedByName() throws {
        try assertRefused([try runFile(rawTail: #""seed": 7"#)], key: "seed", containing: ["once per object"])
    }

    func testFiftyMegabyteArrayInGrFactorIsRefusedByLength() throws {
        let huge = "[" + Array(repeating: "1", count: 25_000_000).joined(separator: ",") + "]"
        let path = try runFile()
        let text = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: #""growthRate":2"#, with: #""growthRate":2,"grFactor":\#(huge)"#)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try assertRefused([path], key: "model.grFactor", containing: ["at most 65536 elements"])
        // Within the parser's limit, the length is still checked before the elements.
        let long = "[" + Array(repeating: "0", count: 60_000).joined(separator: ",") + "]"
        let text60k = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: huge, with: long)
        try Data(text60k.utf8).write(to: URL(fileURLWithPath: path))
        try assertRefused([path], key: "model.grFactor", containing: ["at most 6 entries", "an array of 60000"])
    }

    // MARK: - Corrupt data

    /// A data root whose training images are the real file cut in half.
    func testTruncatedGzipIsReportedNamingTheFile() throws {
        let root = directory.appendingPathComponent("cut-data")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for name in ["train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent(name).path,
                                                       withDestinationPath: "\(Self.fashionMNIST)/\(name)")
        }
        let images = try Data(contentsOf: URL(fileURLWithPath: "\(Self.fashionMNIST)/train-images-idx3-ubyte.gz"))
        let cut = root.appendingPathComponent("train-images-idx3-ubyte.gz")
        try images.prefix(images.count / 2).write(to: cut)
        let outcome = try disttrain([try runFile(dataRoot: root.path)])
        assertOneLine(outcome, status: 1, containing: [cut.path, "truncated"])
    }

    // MARK: - Disk full

    /// A real full disk: an 8 MB tmpfs (as root), else a checkpoint file that is `/dev/full`.
    /// The first epoch's checkpoint (2.8 MB) fits; the second's does not.
    func testDiskFullDuringACheckpointWriteKeepsThePreviousOneUnderOneAndTwoRanks() throws {
        for ranks in [nil, 2] as [Int?] {
            let name = ranks == nil ? "full" : "full-mpi"
            let mount = directory.appendingPathComponent("\(name)-disk")
            try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
            let mounted = run("/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mount.path]) == 0
            defer { if mounted { _ = run("/bin/umount", [mount.path]) } }
            let runDir = mounted ? mount.appendingPathComponent("run") : runDirectory(name)
            func file(epochs: Int) throws -> String { try runFile(name, runDir: runDir, members: ["phase1": ["epochs": epochs]]) }
            let firstRun = try disttrain([try file(epochs: 1)], ranks: ranks)
            XCTAssertEqual(firstRun.status, 0, firstRun.standardError)
            let checkpoints = runDir.appendingPathComponent("checkpoints")
            let first = checkpoints.appendingPathComponent("phase1-epoch1.h5")
            let firstBytes = try Data(contentsOf: first)
            if mounted {
                // Fill the disk but for a few pages: metrics lines fit, a checkpoint does not.
                let filler = mount.appendingPathComponent("filler")
                _ = run("/bin/dd", ["if=/dev/zero", "of=\(filler.path)", "bs=4096"])
                _ = run("/usr/bin/truncate", ["-s", "-32K", filler.path])
            } else {
                print("no tmpfs (mount refused; not root?): the disk-full checkpoint is /dev/full instead")
                try FileManager.default.createSymbolicLink(atPath: checkpoints.appendingPathComponent("phase1-epoch2.h5.partial").path,
                                                           withDestinationPath: "/dev/full")
            }
            let outcome = try disttrain([try file(epochs: 2)], ranks: ranks)
            XCTAssertEqual(outcome.status, 1, outcome.standardError)
            let reasons = outcome.standardError.split(separator: "\n").filter { $0.contains("phase1-epoch2.h5") }
            XCTAssertEqual(reasons.count, 1, outcome.standardError)
            XCTAssertTrue(reasons.first?.contains("no space left on device") ?? false, outcome.standardError)
            if ranks == nil { XCTAssertEqual(outcome.standardError.split(separator: "\n").count, 1, outcome.standardError) }
            let left = try FileManager.default.contentsOfDirectory(atPath: checkpoints.path).sorted()
            XCTAssertEqual(left, ["phase1-epoch1.h5"], "no partial file")
            XCTAssertEqual(try Data(contentsOf: first), firstBytes, "the previous checkpoint is intact")
        }
    }

    // MARK: - One run per run directory

    func testSecondRunOnALiveRunDirectoryRefusesNamingTheHolder() throws {
        let path = try runFile(trainSteps: 400)
        let first = try DistTrainExecutable.launch(["train", path], environment: ["OPENBLAS_NUM_THREADS": "1"], outputDirectory: directory)
        defer { if first.process.isRunning { kill(first.process.processIdentifier, SIGKILL) } }
        let metrics = runDirectory("run").appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, ((try? Data(contentsOf: metrics))?.count ?? 0) == 0 { usleep(100_000) }
        let second = try disttrain(["train", path])
        assertOneLine(second, status: 1, containing: ["in use", "pid \(first.process.processIdentifier) on host"])
        let metricsBefore = try Data(contentsOf: metrics)

        // Killed outright, the first run leaves its record behind but not its lock.
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        XCTAssertTrue(FileManager.default.fileExists(atPath: runDirectory("run").appendingPathComponent(".lock").path))
        let third = try disttrain(["train", path, "--stop-after-steps", "1"])
        XCTAssertEqual(third.status, 0, third.standardError)
        XCTAssertTrue((try Data(contentsOf: metrics)).count >= metricsBefore.count)
    }

    // MARK: - No poisoned checkpoint

    /// At lr 1e6 the loss stays finite for a few steps while BatchNorm variances overflow; no
    /// checkpoint may hold them, and the advice (a lower lr) then works.
    func testDivergedStateIsNeverCheckpointedAndALowerLearningRateRecovers() throws {
        let diverging = try runFile(trainSteps: 6, members: ["phase1": ["lr": 1e6, "epochs": 2], "checkpoint": ["everySteps": 1]])
        let outcome = try disttrain([diverging])
        XCTAssertEqual(outcome.status, 1, outcome.standardError)
        XCTAssertEqual(outcome.standardError.split(separator: "\n").count, 1, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("phase1.lr too high"), outcome.standardError)
        for name in checkpoints("run") {
            let file = try HDF5File.open(runDirectory("run").appendingPathComponent("checkpoints/\(name)").path)
            defer { try? file.close() }
            for group in ["model", "optimizer/momentum"] {
                let tensors = try file.root.group(group)
                for member in try tensors.memberNames() where try tensors.dataset(member).elementType == .float32 {
                    XCTAssertTrue(try tensors.read(member, as: Float.self).values.allSatisfy(\.isFinite), "\(name): \(group)/\(member)")
                }
            }
        }
        let recovering = try runFile(trainSteps: 6, members: ["phase1": ["lr": 0.1, "epochs": 2], "checkpoint": ["everySteps": 1]])
        let rerun = try disttrain([recovering, "--fresh"])
        XCTAssertEqual(rerun.status, 0, rerun.standardError)
    }

    // MARK: - eval and --resume

    func testEvalWithoutACheckpointRefusesAndCreatesNothing() throws {
        let outcome = try disttrain(["eval", try runFile()])
        assertOneLine(outcome, status: 1, containing: ["no checkpoint to evaluate", "disttrain train"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDirectory("run").path))
    }

    func testResumeFromADirectoryIsOneReadableLine() throws {
        let outcome = try disttrain(["train", try runFile(), "--resume", directory.path])
        assertOneLine(outcome, status: 1, containing: [directory.path, "is a directory"])
    }

    private func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
