import DistTrain
import Foundation
import XCTest

/// What clusters do to multi-rank jobs, under `mpirun`: interruptions at every kind of position
/// resumed exactly, a restart on another world size, stop signals through the launcher, a killed
/// rank and a stalled one. Every launch is time-boxed, so a hang fails the test instead of CI.
extension TrainingRunTests {
    /// The longest any one launch in these tests may take before it counts as a hang.
    static let launchTimeLimit: TimeInterval = 180

    /// Runs `disttrain train arguments` on `ranks` ranks to completion, or kills the whole job and
    /// fails after `launchTimeLimit`.
    func trainTimeBoxed(_ arguments: [String], ranks: Int, environment: [String: String] = [:],
                        file: StaticString = #filePath, line: UInt = #line) throws -> DistTrainExecutable.Outcome {
        let launched = try DistTrainExecutable.launch(["train"] + arguments, ranks: ranks, environment: environment,
                                                      outputDirectory: directory)
        return finish(launched, within: Self.launchTimeLimit, file: file, line: line)
    }

    /// Waits for a launched job; after `seconds` kills it and every rank under it, and fails.
    func finish(_ launched: (process: Process, output: URL, error: URL), within seconds: TimeInterval,
                file: StaticString = #filePath, line: UInt = #line) -> DistTrainExecutable.Outcome {
        let deadline = Date().addingTimeInterval(seconds)
        while launched.process.isRunning && Date() < deadline { usleep(50_000) }
        if launched.process.isRunning {
            let ranks = (try? childProcesses(of: launched.process.processIdentifier, named: "disttrain")) ?? []
            for rank in ranks { kill(rank, SIGKILL) }
            kill(launched.process.processIdentifier, SIGKILL)
            XCTFail("the job was still running after \(Int(seconds)) s; killed it", file: file, line: line)
        }
        launched.process.waitUntilExit()
        return DistTrainExecutable.Outcome(
            status: launched.process.terminationStatus,
            standardOutput: (try? String(contentsOf: launched.output, encoding: .utf8)) ?? "",
            standardError: (try? String(contentsOf: launched.error, encoding: .utf8)) ?? "")
    }

    /// Asserts that two checkpoints hold the same weights and momentum, bit for bit. BatchNorm
    /// running statistics must agree bit for bit too, unless `statisticsToRounding`: a stop
    /// writes a checkpoint the uninterrupted run does not, and every checkpoint averages them
    /// over the ranks once more.
    func assertSameState(_ expectedPath: URL, _ actualPath: URL, statisticsToRounding: Bool,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        for group in ["model", "optimizer/momentum"] {
            let expected = try modelTensors(expectedPath, group: group)
            let actual = try modelTensors(actualPath, group: group)
            XCTAssertEqual(Set(expected.keys), Set(actual.keys), file: file, line: line)
            var differing: [String] = []
            for (name, values) in expected {
                let other = actual[name] ?? []
                if statisticsToRounding && name.contains("running_") {
                    let difference = zip(values, other).map { abs($0 - $1) / max(abs($0), 1e-3) }.max() ?? 0
                    if other.count != values.count || difference > 1e-5 { differing.append(name) }
                } else if values.map(\.bitPattern) != other.map(\.bitPattern) {
                    differing.append(name)
                }
            }
            XCTAssertEqual(differing.sorted(), [], "\(group) tensors differ from the uninterrupted run",
                           file: file, line: line)
        }
    }

    /// Sends `signal` to every `disttrain` rank under `launcher` (or only to the last one).
    func signalRanks(under launcher: Int32, _ signal: Int32, onlyLast: Bool = false) throws -> [Int32] {
        let ranks = try childProcesses(of: launcher, named: "disttrain")
        for rank in onlyLast ? Array(ranks.suffix(1)) : ranks { kill(rank, signal) }
        return ranks
    }

    // MARK: - Exact resume on several ranks

    /// Interrupted at a phase-I epoch end, mid-epoch in phase I, at a phase-II epoch end and
    /// mid-epoch in phase II, and resumed each time with --verify-replicas (every rank holds the
    /// same state right after the restore and after every step): the run ends with the weights
    /// and momentum of the uninterrupted run, bit for bit, on 2 and on 3 ranks.
    func testInterruptedRunsResumeBitForBitOnTwoAndThreeRanks() throws {
        for ranks in [2, 3] {
            let straightName = "straight-\(ranks)", interruptedName = "interrupted-\(ranks)"
            let straight = try write(configuration(name: straightName, batch: 48, phase1Epochs: 2, phase2Epochs: 2,
                                                   evaluation: false))
            assertSuccess(try trainTimeBoxed([straight], ranks: ranks))

            let interrupted = try write(configuration(name: interruptedName, batch: 48, phase1Epochs: 2,
                                                      phase2Epochs: 2, evaluation: false))
            // 3 steps per epoch, 6 per phase: each stop lands on the checkpoint named.
            let stops: [(steps: Int?, checkpoint: String)] = [
                (3, "phase1-epoch1.h5"), (2, "phase1-epoch1-step2.h5"), (4, "phase2-epoch1.h5"),
                (1, "phase2-epoch1-step1.h5"), (nil, "phase2-epoch2.h5"),
            ]
            for (index, stop) in stops.enumerated() {
                var arguments = [interrupted]
                if index > 0 { arguments.append("--verify-replicas") }
                if let steps = stop.steps { arguments += ["--stop-after-steps", String(steps)] }
                let outcome = try trainTimeBoxed(arguments, ranks: ranks)
                assertSuccess(outcome)
                XCTAssertTrue(checkpoints(interruptedName).contains(stop.checkpoint),
                              "\(ranks) ranks, launch \(index + 1): no \(stop.checkpoint) in \(checkpoints(interruptedName))")
                if index > 0 {
                    XCTAssertTrue(outcome.standardOutput.contains("resuming from"), outcome.standardOutput)
                }
            }
            try assertSameState(runDirectory(straightName).appendingPathComponent("checkpoints/phase2-epoch2.h5"),
                                runDirectory(interruptedName).appendingPathComponent("checkpoints/phase2-epoch2.h5"),
                                statisticsToRounding: true)
        }
    }

    /// A checkpoint written by 2 ranks resumes on 3: accepted with a one-line note that the
    /// continuation is not bit-exact (each rank normalises its own slice of the global batch).
    func testResumeOnAnotherWorldSizeIsAcceptedWithANote() throws {
        let path = try write(configuration(name: "resized", batch: 48, phase1Epochs: 2, phase2Epochs: 0, evaluation: false))
        assertSuccess(try trainTimeBoxed([path, "--stop-after-steps", "2"], ranks: 2))
        let resumed = try trainTimeBoxed([path, "--verify-replicas"], ranks: 3)
        assertSuccess(resumed)
        XCTAssertTrue(resumed.standardOutput.contains("written by 2 rank(s), this run has 3"), resumed.standardOutput)
        XCTAssertTrue(resumed.standardOutput.contains("not bit-exact"), resumed.standardOutput)
        XCTAssertTrue(checkpoints("resized").contains("phase1-epoch2.h5"))
    }
}
