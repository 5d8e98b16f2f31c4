@testable import DistTrain
import Foundation
import Model
@testable import Storage
import XCTest

/// The run directory's lock, checkpoints that refuse a diverged state, and the size checks of a
/// run file against a given memory.
final class RunSafetyTests: XCTestCase {
    // MARK: - Run directory lock

    func testSecondLockOnTheSameDirectoryIsRefusedNamingTheHolder() throws {
        let directory = try TemporaryDirectory()
        var first: RunDirectoryLock? = try RunDirectoryLock.acquire(runDirectory: directory.path)
        XCTAssertNotNil(first)
        XCTAssertThrowsError(try RunDirectoryLock.acquire(runDirectory: directory.path)) { error in
            guard case let .runDirectoryInUse(path, holder)? = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, directory.path)
            XCTAssertTrue(holder.hasPrefix("pid \(getpid()) on host "), holder)
        }
        first = nil
        XCTAssertNoThrow(try RunDirectoryLock.acquire(runDirectory: directory.path), "released with its holder")
    }

    /// A lock held by another process blocks; once that process is killed, it does not.
    func testLockOfAKilledProcessDoesNotBlock() throws {
        let directory = try TemporaryDirectory()
        let holder = Process()
        // One process that takes the lock and sleeps (flock(1) would pass it on to a child).
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["python3", "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(600)",
                            directory.path + "/.lock"]
        try holder.run()
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) } }
        var refused = false
        for _ in 0..<100 where !refused {
            do {
                _ = try RunDirectoryLock.acquire(runDirectory: directory.path)
                usleep(50_000)
            } catch TrainingError.runDirectoryInUse {
                refused = true
            }
        }
        XCTAssertTrue(refused, "a live holder in another process blocks")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        XCTAssertNoThrow(try RunDirectoryLock.acquire(runDirectory: directory.path))
    }

    // MARK: - No poisoned checkpoint

    private func tensors(_ values: inout [Float], _ counter: inout Int64) -> [NamedTensor] {
        let pointer = values.withUnsafeMutableBufferPointer { $0.baseAddress! }
        let counterPointer = withUnsafeMutablePointer(to: &counter) { $0 }
        return [NamedTensor(name: "layer.weight", shape: [2], storage: .float(pointer)),
                NamedTensor(name: "layer.running_var", shape: [2], storage: .float(pointer + 2)),
                NamedTensor(name: "layer.num_batches_tracked", shape: [], storage: .int64(counterPointer))]
    }

    func testNonFiniteStateIsNeverWritten() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/phase1-epoch1.h5"
        var values: [Float] = [1, 2, 3, .infinity]
        var counter: Int64 = 4
        let state = tensors(&values, &counter)
        let metadata = CheckpointMetadata(phase: 1, epoch: 1, step: 0, worldSize: 1, seed: 0, configuration: "{}")
        XCTAssertThrowsError(try Checkpoint.write(to: path, metadata: metadata, model: state, momentum: [], validationIndices: [0])) { error in
            XCTAssertEqual(error as? TrainingError, .nonFiniteState(path: path, phase: 1, tensor: "/model/layer.running_var", value: .infinity))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [], "nothing written")
    }

    /// A checkpoint written by an older disttrain with an infinity in it is skipped as unreadable.
    func testCheckpointHoldingNonFiniteValuesDoesNotRestore() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/phase1-epoch1.h5"
        var values: [Float] = [1, 2, 3, 4]
        var counter: Int64 = 4
        let state = tensors(&values, &counter)
        // As an older disttrain wrote it, without the check.
        let file = try HDF5File.create(path)
        let root = try file.root
        try root.writeAttribute("format", CheckpointMetadata.format)
        try root.writeAttribute("version", CheckpointMetadata.version)
        try root.writeAttribute("config", "{}")
        for key in ["phase", "epoch", "step", "worldSize", "seed"] { try root.writeAttribute(key, Int64(1)) }
        try root.createDataset("model/layer.weight", values: [Float(1), 2], shape: [2])
        try root.createDataset("model/layer.running_var", values: [Float.nan, 1], shape: [2])
        try root.createDataset("model/layer.num_batches_tracked", scalar: Int64(4))
        try root.createGroup("optimizer/momentum")
        try root.createDataset("data/validationIndices", values: [Int64(0)], shape: [1])
        try file.close()
        XCTAssertThrowsError(try Checkpoint.restore(from: path, model: state, momentum: [])) { error in
            guard case let .unreadableCheckpoint(_, reason)? = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("/model/layer.running_var holds nan"), reason)
        }
        XCTAssertEqual(values, [1, 2, 3, 4], "nothing restored")
    }

    /// Writing a checkpoint where the disk is full (`/dev/full` as the temporary file) fails
    /// with the system's reason and leaves nothing behind.
    func testFullDiskIsOneReasonAndNoPartialFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/phase1-epoch1.h5"
        try FileManager.default.createSymbolicLink(atPath: path + ".partial", withDestinationPath: "/dev/full")
        var values: [Float] = [1, 2, 3, 4]
        var counter: Int64 = 4
        let metadata = CheckpointMetadata(phase: 1, epoch: 1, step: 0, worldSize: 1, seed: 0, configuration: "{}")
        XCTAssertThrowsError(try Checkpoint.write(to: path, metadata: metadata, model: tensors(&values, &counter), momentum: [],
                                                  validationIndices: [0])) { error in
            XCTAssertEqual(error as? TrainingError, .cannotWrite(path: path, reason: "no space left on device"))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [])
    }

    /// Any HDF5 file (logits, shards) written onto a full disk: the failed close is an error, and
    /// the process lives on. Before `HDF5Library` turned off HDF5's clean-up at exit, libhdf5
    /// closed the half-closed dataset again at exit and segfaulted; the suite's own exit is the check.
    func testHDF5WriteOntoAFullDiskFailsWithTheReasonAndDoesNotCrashAtExit() throws {
        let reason = try writeHDF5OntoAFullDisk()
        XCTAssertTrue(reason.contains("no space left on device"), reason)
    }

    /// After a full disk, HDF5 files still write and read back in the same process. When a
    /// dataset's chunks were only written at its close, the failed close left a freed dataset
    /// registered in libhdf5, and the next strong file close with a dataset open closed that
    /// memory twice and segfaulted (in `H5D_close` from `H5F_try_close`).
    func testHDF5WritesAndReadsAfterAFullDiskWrite() throws {
        let reason = try writeHDF5OntoAFullDisk()
        XCTAssertTrue(reason.contains("no space left on device"), reason)
        let directory = try TemporaryDirectory()
        let path = directory.path + "/after.h5"
        let file = try HDF5File.create(path)
        let datasets = try (0..<8).map { index in
            try file.root.createDataset("tensor\(index)", values: (0..<64).map { Float($0 + 64 * index) }, shape: [8, 8])
        }
        try withExtendedLifetime(datasets) { try file.close() }
        let reopened = try HDF5File.open(path)
        defer { try? reopened.close() }
        for index in 0..<8 {
            let array = try reopened.root.read("tensor\(index)", as: Float.self)
            XCTAssertEqual(array.shape, [8, 8])
            XCTAssertEqual(array.values, (0..<64).map { Float($0 + 64 * index) })
        }
    }

    /// Writes thousands of small datasets into an HDF5 file on a 256 KiB tmpfs and returns the
    /// error that stopped it ("no error" if none did); skips where no tmpfs can be mounted.
    private func writeHDF5OntoAFullDisk() throws -> String {
        let directory = try TemporaryDirectory()
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=256k", "tmpfs", directory.path]
        mount.standardError = FileHandle.nullDevice
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else {
            throw XCTSkip("cannot mount a tmpfs (needs root): the full-disk case is covered by /dev/full in testFullDiskIsOneReasonAndNoPartialFile")
        }
        defer {
            let unmount = Process()
            unmount.executableURL = URL(fileURLWithPath: "/bin/umount")
            unmount.arguments = [directory.path]
            try? unmount.run()
            unmount.waitUntilExit()
        }
        do {
            let file = try HDF5File.create(directory.path + "/logits.h5")
            let values = [Float](repeating: 1, count: 64)
            for index in 0..<4000 {
                try file.root.createDataset("group\(index / 50)/tensor\(index)", values: values, shape: [64])
            }
            try file.close()
        } catch {
            return "\(error)"
        }
        return "no error"
    }

    // MARK: - Sizes

    private func configuration(_ edit: (inout RunConfiguration) -> Void = { _ in }) throws -> RunConfiguration {
        let text = """
            {"name": "sizes", "data": {"dataset": "fashion-mnist", "root": "/nonexistent", "validationHoldout": 64, "limitTrain": 512},
             "model": {"nBlocks": 2, "stepmode": "even", "nChannels": 4, "growthRate": 2},
             "phase1": {"epochs": 1, "batchSize": 32, "lr": 0.1}, "phase2": {"epochs": 1, "batchSize": 32, "lr": 0.1}}
            """
        var configuration = try RunConfiguration(json: Data(text.utf8), file: "run.json")
        edit(&configuration)
        return configuration
    }

    private func assertRefused(_ configuration: RunConfiguration, memory: Int = 1 << 30, key: String, containing fragment: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try configuration.validateSizes(worldSize: 1, file: "run.json", memoryBytes: memory), file: file, line: line) { error in
            XCTAssertEqual((error as? ConfigurationError)?.keyPath, key, "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(fragment), "\(error)", file: file, line: line)
        }
    }

    func testSizesThatFitPass() throws {
        XCTAssertNoThrow(try configuration().validateSizes(worldSize: 1, file: "run.json", memoryBytes: 1 << 30))
    }

    func testMemoryRefusalNamesTheKeyThatGrewAndTheLimit() throws {
        assertRefused(try configuration { $0.phase2.batchSize = 1 << 20; $0.phase2.epochs = 0 }, key: "phase2.batchSize",
                      containing: "this machine has 1.0 GB per rank")
        assertRefused(try configuration { $0.evaluation.batchSize = 1 << 30 }, key: "evaluation.batchSize", containing: "for activations")
        assertRefused(try configuration { $0.model.nChannels = 1 << 16 }, key: "model.nChannels", containing: "for parameters")
        assertRefused(try configuration { $0.model.growthRate = 1 << 40 }, key: "model.growthRate", containing: "needs at least")
        assertRefused(try configuration { $0.model.nChannels = 1 << 62 }, key: "model.nChannels", containing: "needs more than 8 EB")
        assertRefused(try configuration { $0.model.nBlocks = 1 << 40; $0.model.stepmode = .linearGrowth }, key: "model.nBlocks",
                      containing: "needs at least")
        assertRefused(try configuration { $0.model.inputSize = 1 << 20 }, key: "model.inputSize", containing: "for activations")
    }

    func testThreadAndBudgetCountsAreBounded() throws {
        assertRefused(try configuration { $0.threadsPerRank = 1_000_000 }, key: "threadsPerRank", containing: "at most 1024")
        assertRefused(try configuration { $0.data.workers = 5000 }, key: "data.workers", containing: "at most 1024")
        assertRefused(try configuration { $0.evaluation.budgets = 1 << 40 }, key: "evaluation.budgets", containing: "at most 100000")
    }

    func testHoldoutAndBatchAgainstTheTrainingSet() throws {
        assertRefused(try configuration { $0.data.validationHoldout = 512 }, key: "data.validationHoldout", containing: "fewer than the 512")
        assertRefused(try configuration { $0.data.validationHoldout = nil }, key: "data.validationHoldout", containing: "5000 (the default)")
        assertRefused(try configuration { $0.phase2.batchSize = 449 }, key: "phase2.batchSize", containing: "at most the 448 training images")
        XCTAssertNoThrow(try configuration { $0.phase2.batchSize = 449; $0.phase2.epochs = 0 }
            .validateSizes(worldSize: 1, file: "run.json", memoryBytes: 1 << 30), "a phase that does not run")
    }
}
