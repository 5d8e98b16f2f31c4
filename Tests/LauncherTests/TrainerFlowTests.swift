import DistTrain
import Foundation
import Storage
import XCTest

/// The trainer's flow at its edges: stops at start-up and at a phase's last step, what a
/// restored checkpoint's phase means for `eval`, checkpoint positions out of range, what
/// `--resume`, `--fresh` and a diverged loss leave behind.
extension TrainingRunTests {
    /// True once `pid` no longer takes `signal`'s default action (it ignores or catches it),
    /// from the SigIgn and SigCgt masks of /proc/PID/status.
    func handlesSignal(_ pid: Int32, _ signal: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        let bit = UInt64(1) << UInt64(signal - 1)
        var masks: [String: UInt64] = [:]
        for line in status.split(separator: "\n") {
            let fields = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            if fields.count == 2, let mask = UInt64(fields[1], radix: 16) { masks[fields[0]] = mask }
        }
        // `StopRequest.install` ignores, blocks while its sources register, then unblocks: a
        // signal counts as handled once that is over (not still blocked in the main thread).
        let taken = ((masks["SigIgn"] ?? 0) | (masks["SigCgt"] ?? 0)) & bit != 0
        return taken && (masks["SigBlk"] ?? 0) & bit == 0
    }

    /// Waits (up to a minute) until `pids()` yields `count` processes that all handle `signal`.
    func waitUntilHandled(_ signal: Int32, count: Int, _ pids: () throws -> [Int32]) rethrows -> [Int32] {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let found = try pids()
            if found.count == count && found.allSatisfy({ handlesSignal($0, signal) }) { return found }
            usleep(1_000)
        }
        XCTFail("no \(count) process(es) handling signal \(signal) within a minute")
        return try pids()
    }

    /// SIGTERM as soon as the process can take it (before MPI has started): status 0, and as
    /// nothing was trained, nothing is written, not even the run directory. On a loaded machine
    /// the start-up can pass its stop check before the signal lands; the stop must then be taken
    /// at the first step, with its checkpoint, and nothing else is acceptable.
    func testSIGTERMAtStartUpExitsZeroWritingNothing() throws {
        let path = try write(configuration(name: "early-term", trainSteps: 400, phase2Epochs: 0, evaluation: false))
        let launched = try DistTrainExecutable.launch(["train", path], outputDirectory: directory)
        let pid = launched.process.processIdentifier
        _ = waitUntilHandled(SIGTERM, count: 1) { [pid] }
        kill(pid, SIGTERM)
        let outcome = finish(launched, within: 60)
        XCTAssertEqual(outcome.status, 0, outcome.standardOutput + outcome.standardError)
        if outcome.standardOutput.contains("stop requested before training started; nothing written") {
            XCTAssertFalse(FileManager.default.fileExists(atPath: runDirectory("early-term").path))
        } else {
            XCTAssertTrue(outcome.standardOutput.contains("stop requested: checkpoint"), outcome.standardOutput)
            XCTAssertEqual(checkpoints("early-term").count, 1, outcome.standardOutput)
        }
    }

    /// SIGTERM to `mpirun-graceful.sh` (a SIGUSR1 to every rank) while the 2 ranks start up.
    func testStopThroughTheLauncherAtStartUpExitsZeroWritingNothing() throws {
        let launcher = Self.repositoryRoot.appendingPathComponent("cluster/mpirun-graceful.sh")
        let path = try write(configuration(name: "early-usr1", trainSteps: 400, phase2Epochs: 0, evaluation: false))
        let launched = try DistTrainExecutable.start(launcher, try launcherArguments(path), outputDirectory: directory)
        let ranks = try waitUntilHandled(SIGUSR1, count: 2) {
            try childProcesses(of: launched.process.processIdentifier, named: "disttrain")
        }
        kill(launched.process.processIdentifier, SIGTERM)
        let outcome = finish(launched, within: 60)
        XCTAssertEqual(outcome.status, 0, outcome.standardOutput + outcome.standardError)
        XCTAssertTrue(outcome.standardOutput.contains("stop requested before training started"), outcome.standardOutput)
        assertGone(ranks)
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDirectory("early-usr1").path))
    }

    /// A stop at the last step of phase I stops there (its epoch-end checkpoint is the stop's);
    /// the rerun goes on with phase II, and a stop at the last step of phase II stops before the
    /// evaluation: both checkpoints equal the uninterrupted run's, bit for bit.
    func testStopAtAPhasesLastStepStopsThereAndResumesBitForBit() throws {
        let straight = try write(configuration(name: "last-straight", evaluation: false))
        assertSuccess(try train([straight]))

        let interrupted = try write(configuration(name: "last-stopped"))
        let first = try train([interrupted, "--stop-after-steps", "3"])
        assertSuccess(first)
        XCTAssertTrue(first.standardOutput.contains("stop requested: checkpoint"), first.standardOutput)
        XCTAssertEqual(checkpoints("last-stopped"), ["phase1-epoch1.h5"])
        let second = try train([interrupted, "--stop-after-steps", "3"])
        assertSuccess(second)
        XCTAssertEqual(checkpoints("last-stopped"), ["phase1-epoch1.h5", "phase2-epoch1.h5"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDirectory("last-stopped").appendingPathComponent("logits.h5").path),
                       "a stop at the end of phase II comes before the evaluation")
        for checkpoint in ["checkpoints/phase1-epoch1.h5", "checkpoints/phase2-epoch1.h5"] {
            try assertSameState(runDirectory("last-straight").appendingPathComponent(checkpoint),
                                runDirectory("last-stopped").appendingPathComponent(checkpoint), statisticsToRounding: false)
        }
        let third = try train([interrupted])
        assertSuccess(third)
        XCTAssertTrue(FileManager.default.fileExists(atPath: runDirectory("last-stopped").appendingPathComponent("logits.h5").path),
                      third.standardOutput)
        XCTAssertEqual(checkpoints("last-stopped"), ["phase1-epoch1.h5", "phase2-epoch1.h5"], "nothing left to train")
    }

    /// Two threads of 16 images each run the batch in two image shards: a run stopped mid-epoch
    /// and resumed ends with the state of the uninterrupted run, bit for bit (the shards meet in
    /// a fixed order, whichever thread comes first).
    func testARunInImageShardsResumesBitForBit() throws {
        let twoThreads: (inout [String: Any]) -> Void = { $0["threadsPerRank"] = 2 }
        let straight = try write(configuration(name: "shards-straight", evaluation: false, edit: twoThreads))
        let whole = try train([straight])
        assertSuccess(whole)
        XCTAssertTrue(whole.standardOutput.contains("2 thread(s) per rank, 2 image shard(s)"), whole.standardOutput)
        let interrupted = try write(configuration(name: "shards-stopped", evaluation: false, edit: twoThreads))
        assertSuccess(try train([interrupted, "--stop-after-steps", "2"]))
        XCTAssertEqual(checkpoints("shards-stopped"), ["phase1-epoch0-step2.h5"])
        assertSuccess(try train([interrupted]))
        for checkpoint in ["checkpoints/phase1-epoch1.h5", "checkpoints/phase2-epoch1.h5"] {
            try assertSameState(runDirectory("shards-straight").appendingPathComponent(checkpoint),
                                runDirectory("shards-stopped").appendingPathComponent(checkpoint), statisticsToRounding: false)
        }
    }

    /// A phase-II checkpoint is evaluated as the IMTA network even when the run file now says
    /// phase2.epochs: 0.
    func testEvalOfAPhaseTwoCheckpointEvaluatesTheIMTANetworkWithoutPhaseTwoEpochs() throws {
        assertSuccess(try train([try write(configuration(name: "imta-eval", evaluation: false))]))
        let withoutPhase2 = try write(configuration(name: "imta-eval", phase2Epochs: 0, evaluation: false))
        let outcome = try DistTrainExecutable.run(["eval", withoutPhase2], outputDirectory: directory)
        assertSuccess(outcome)
        XCTAssertTrue(outcome.standardOutput.contains("test accuracy, phase II:"), outcome.standardOutput)
        XCTAssertFalse(outcome.standardOutput.contains("test accuracy, phase I:"), outcome.standardOutput)
    }

    /// A checkpoint whose phase, epoch, step or worldSize was edited out of range is refused
    /// with one line (status 1) under `--resume`, and skipped with a note when resuming
    /// automatically.
    func testCheckpointPositionOutOfRangeIsRefusedOrSkipped() throws {
        let path = try write(configuration(name: "ranges", phase1Epochs: 2, phase2Epochs: 0, evaluation: false))
        assertSuccess(try train([path, "--stop-after-steps", "3"]))
        let good = runDirectory("ranges").appendingPathComponent("checkpoints/phase1-epoch1.h5")
        func edited(_ attribute: String, _ value: Int64, at destination: URL) throws {
            try FileManager.default.copyItem(at: good, to: destination)
            let file = try HDF5File.open(destination.path, mode: .readWrite)
            try file.root.writeAttribute(attribute, value)
            try file.close()
        }
        let cases: [(String, Int64)] = [("step", -5), ("phase", 3), ("epoch", -1), ("epoch", 1 << 62),
                                        ("step", 1_000_000_000_000), ("worldSize", 0)]
        for (index, (attribute, value)) in cases.enumerated() {
            let copy = directory.appendingPathComponent("edited-\(index).h5")
            try edited(attribute, value, at: copy)
            let outcome = try train([path, "--resume", copy.path])
            XCTAssertEqual(outcome.status, 1, "\(attribute) = \(value): " + outcome.standardOutput + outcome.standardError)
            XCTAssertTrue(outcome.standardError.contains("\(copy.path): checkpoint attribute \(attribute) = \(value), expected"),
                          outcome.standardError)
            XCTAssertEqual(outcome.standardError.split(separator: "\n").count, 1, outcome.standardError)
        }
        XCTAssertEqual(checkpoints("ranges"), ["phase1-epoch1.h5"], "a refused checkpoint trains nothing")

        try edited("phase", 3, at: runDirectory("ranges").appendingPathComponent("checkpoints/phase1-epoch1-step2.h5"))
        let automatic = try train([path, "--stop-after-steps", "1"])
        assertSuccess(automatic)
        XCTAssertTrue(automatic.standardOutput.contains("skipping"), automatic.standardOutput)
        XCTAssertTrue(automatic.standardOutput.contains("checkpoint attribute phase = 3"), automatic.standardOutput)
        XCTAssertTrue(automatic.standardOutput.contains("resuming from \(good.path)"), automatic.standardOutput)
    }

    /// A `--resume` or `eval --checkpoint` path that is missing or not a file is refused before
    /// anything is created.
    func testMissingNamedCheckpointCreatesNothing() throws {
        let path = try write(configuration(name: "named-missing"))
        let missing = directory.appendingPathComponent("nowhere/phase1-epoch3.h5").path
        for arguments in [["train", path, "--resume", missing], ["eval", path, "--checkpoint", missing]] {
            let outcome = try DistTrainExecutable.run(arguments, outputDirectory: directory)
            XCTAssertEqual(outcome.status, 1, outcome.standardError)
            XCTAssertEqual(outcome.standardError, "error: \(missing): no such checkpoint\n")
            XCTAssertFalse(FileManager.default.fileExists(atPath: runDirectory("named-missing").path), "\(arguments)")
        }
        let outcome = try train([path, "--resume", directory.path])
        XCTAssertEqual(outcome.status, 1, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("\(directory.path): unreadable checkpoint: is a directory"), outcome.standardError)
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDirectory("named-missing").path))
    }

    /// A diverged phase II names the last good checkpoint (a plain rerun resumes from it) and
    /// the suspects, not --fresh.
    func testNonFiniteLossInPhaseTwoNamesTheCheckpointARerunResumesFrom() throws {
        let path = try write(configuration(name: "diverging-2", trainSteps: 6, evaluation: false) {
            Self.set("phase2", "lr", to: 1e30, in: &$0)
        })
        let outcome = try train([path])
        XCTAssertEqual(outcome.status, 1, outcome.standardError)
        let checkpoint = runDirectory("diverging-2").appendingPathComponent("checkpoints/phase1-epoch1.h5").path
        XCTAssertTrue(outcome.standardError.contains("phase 2, epoch 1, step"), outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("a plain rerun resumes from \(checkpoint), the last good checkpoint"),
                      outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("phase2.lr too high, or ofa.temperature too small"), outcome.standardError)
        XCTAssertFalse(outcome.standardError.contains("--fresh"), outcome.standardError)
    }
}
