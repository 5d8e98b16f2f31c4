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

    /// Two ranks of two threads, each rank's 32 images in two image shards, with BatchNorm
    /// synchronised across the ranks (the shards' statistics merged, then all-reduced): interrupted
    /// mid-epoch in phase I and resumed with --verify-replicas, the run ends bit for bit where the
    /// uninterrupted one does.
    func testARunInImageShardsOnTwoRanksResumesBitForBit() throws {
        let shardsAndSyncBatchNorm: (inout [String: Any]) -> Void = {
            $0["threadsPerRank"] = 2
            $0["syncBatchNorm"] = true
        }
        let straight = try write(configuration(name: "ranks-shards-straight", batch: 64, phase1Epochs: 1, phase2Epochs: 1,
                                               evaluation: false, edit: shardsAndSyncBatchNorm))
        let whole = try trainTimeBoxed([straight], ranks: 2)
        assertSuccess(whole)
        XCTAssertTrue(whole.standardOutput.contains("2 image shard(s)"), whole.standardOutput)
        let interrupted = try write(configuration(name: "ranks-shards-stopped", batch: 64, phase1Epochs: 1, phase2Epochs: 1,
                                                  evaluation: false, edit: shardsAndSyncBatchNorm))
        assertSuccess(try trainTimeBoxed([interrupted, "--stop-after-steps", "2"], ranks: 2))
        let resumed = try trainTimeBoxed([interrupted, "--verify-replicas"], ranks: 2)
        assertSuccess(resumed)
        XCTAssertTrue(resumed.standardOutput.contains("resuming from"), resumed.standardOutput)
        try assertSameState(runDirectory("ranks-shards-straight").appendingPathComponent("checkpoints/phase2-epoch1.h5"),
                            runDirectory("ranks-shards-stopped").appendingPathComponent("checkpoints/phase2-epoch1.h5"),
                            statisticsToRounding: true)
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

    // MARK: - Stop signals through the launcher

    /// The checkout this test was built from (cluster/ scripts).
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The process group of `pid`, from /proc.
    func processGroup(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        return fields.count > 2 ? Int32(fields[2]) : nil
    }

    /// Fails for every process of `pids` still alive (a zombie counts as gone).
    func assertGone(_ pids: [Int32], file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date().addingTimeInterval(10)
        func alive() -> [Int32] {
            pids.filter { pid in
                guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { return false }
                return !stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
            }
        }
        while !alive().isEmpty && Date() < deadline { usleep(100_000) }
        XCTAssertEqual(alive(), [], "processes left behind", file: file, line: line)
    }

    /// Starts a long 2-rank phase-I run with `launch`, waits until it trains, sends the stop with
    /// `deliver` and checks the outcome: status 0, a mid-epoch checkpoint, no rank left. Returns
    /// the run file and the checkpoint's name.
    @discardableResult
    func assertStopsWithACheckpoint(
        _ name: String, launch: (String) throws -> (process: Process, output: URL, error: URL),
        deliver: (Process) throws -> Void, file: StaticString = #filePath, line: UInt = #line
    ) throws -> (path: String, checkpoint: String) {
        let path = try write(configuration(name: name, trainSteps: 400, phase2Epochs: 0, evaluation: false))
        let launched = try launch(path)
        waitUntilTraining(name)
        let ranks = try childProcesses(of: launched.process.processIdentifier, named: "disttrain")
        XCTAssertEqual(ranks.count, 2, "expected two disttrain ranks", file: file, line: line)
        try deliver(launched.process)
        let outcome = finish(launched, within: 60, file: file, line: line)
        XCTAssertEqual(outcome.status, 0, outcome.standardOutput + outcome.standardError, file: file, line: line)
        XCTAssertTrue(outcome.standardOutput.contains("stop requested"), outcome.standardOutput, file: file, line: line)
        assertGone(ranks, file: file, line: line)
        let written = checkpoints(name)
        XCTAssertEqual(written.count, 1, "\(written)", file: file, line: line)
        XCTAssertTrue(written.first?.hasPrefix("phase1-epoch0-step") ?? false, "\(written)", file: file, line: line)
        return (path, written.first ?? "")
    }

    /// The launcher arguments of a 2-rank `disttrain train path` job.
    func launcherArguments(_ path: String) throws -> [String] {
        ["-n", "2", "--oversubscribe", try DistTrainExecutable.url().path, "train", path]
    }

    /// SIGTERM to the launcher: a clean stop with status 0; the resumed run (--verify-replicas)
    /// continues as the uninterrupted one does.
    func testSIGTERMToTheLauncherStopsEveryRankAfterACheckpoint() throws {
        let launcher = Self.repositoryRoot.appendingPathComponent("cluster/mpirun-graceful.sh")
        let stopped = try assertStopsWithACheckpoint("launcher-term", launch: { path in
            try DistTrainExecutable.start(launcher, try self.launcherArguments(path), outputDirectory: self.directory)
        }, deliver: { kill($0.processIdentifier, SIGTERM) })

        let stepsDone = Int(stopped.checkpoint.dropFirst("phase1-epoch0-step".count).dropLast(".h5".count)) ?? 0
        assertSuccess(try trainTimeBoxed([stopped.path, "--verify-replicas", "--stop-after-steps", "2"], ranks: 2))
        let straight = try write(configuration(name: "launcher-straight", trainSteps: 400, phase2Epochs: 0, evaluation: false))
        assertSuccess(try trainTimeBoxed([straight, "--stop-after-steps", String(stepsDone + 2)], ranks: 2))
        let checkpoint = "checkpoints/phase1-epoch0-step\(stepsDone + 2).h5"
        try assertSameState(runDirectory("launcher-straight").appendingPathComponent(checkpoint),
                            runDirectory("launcher-term").appendingPathComponent(checkpoint), statisticsToRounding: true)
    }

    /// SIGINT to the launcher's whole process group (Ctrl-C in a terminal).
    func testSIGINTToTheProcessGroupStopsEveryRankAfterACheckpoint() throws {
        let launcher = Self.repositoryRoot.appendingPathComponent("cluster/mpirun-graceful.sh")
        try assertStopsWithACheckpoint("group-int", launch: { path in
            try DistTrainExecutable.start(launcher, try self.launcherArguments(path), outputDirectory: self.directory)
        }, deliver: { process in
            // Foundation starts a child as the leader of a new process group, as a shell starts a job.
            let group = try XCTUnwrap(self.processGroup(of: process.processIdentifier))
            XCTAssertEqual(group, process.processIdentifier, "the launcher must lead a process group of its own")
            if group == process.processIdentifier && group != getpgrp() { kill(-group, SIGINT) }
        })
    }

    /// SIGTERM to one rank alone: every rank stops after the same step (the request travels
    /// with the step's all-reduce).
    func testSIGTERMToOneRankStopsEveryRankAfterACheckpoint() throws {
        try assertStopsWithACheckpoint("rank-term", launch: { path in
            try DistTrainExecutable.launch(["train", path], ranks: 2, outputDirectory: self.directory)
        }, deliver: { _ = try self.signalRanks(under: $0.processIdentifier, SIGTERM, onlyLast: true) })
    }

    /// SIGUSR1 to a plain mpirun, which forwards it to every rank (what the launcher relies on).
    func testSIGUSR1ToMpirunStopsEveryRankAfterACheckpoint() throws {
        try assertStopsWithACheckpoint("mpirun-usr1", launch: { path in
            try DistTrainExecutable.launch(["train", path], ranks: 2, outputDirectory: self.directory)
        }, deliver: { kill($0.processIdentifier, SIGUSR1) })  // /usr/bin/env has become mpirun
    }

    /// cluster/slurm.sbatch as Slurm runs it (environment of a 1-node, 2-task job; a stand-in
    /// `scontrol` records its arguments): the warning signal stops the ranks after a checkpoint
    /// and requeues the job; the requeued script resumes from that checkpoint.
    func testSlurmScriptForwardsTheWarningSignalAndRequeues() throws {
        guard ProcessInfo.processInfo.activeProcessorCount >= 2 else {
            print("skipped: the batch script binds 2 ranks to a core each; this machine has 1 core")
            return
        }
        let bin = directory.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let log = directory.appendingPathComponent("scontrol.log")
        let scontrol = bin.appendingPathComponent("scontrol")
        try Data("#!/bin/sh\necho \"$@\" >> '\(log.path)'\n".utf8).write(to: scontrol)
        chmod(scontrol.path, 0o755)
        let environment = [
            "PATH": bin.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
            "SLURM_SUBMIT_DIR": Self.repositoryRoot.path, "SLURM_JOB_ID": "4242", "SLURM_NTASKS_PER_NODE": "2",
            "SLURM_CPUS_PER_TASK": "1", "DISTTRAIN": try DistTrainExecutable.url().path,
        ]
        let script = Self.repositoryRoot.appendingPathComponent("cluster/slurm.sbatch")
        let stopped = try assertStopsWithACheckpoint("slurm", launch: { path in
            try DistTrainExecutable.start(URL(fileURLWithPath: "/bin/bash"), [script.path, path], environment: environment,
                                          outputDirectory: self.directory)
        }, deliver: { kill($0.processIdentifier, SIGUSR1) })
        XCTAssertEqual(try String(contentsOf: log, encoding: .utf8), "requeue 4242\n")

        let requeued = try DistTrainExecutable.start(URL(fileURLWithPath: "/bin/bash"), [script.path, stopped.path],
                                                     environment: environment, outputDirectory: directory)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, !((try? String(contentsOf: requeued.output, encoding: .utf8)) ?? "").contains("resuming from") {
            usleep(100_000)
        }
        kill(requeued.process.processIdentifier, SIGUSR1)
        let outcome = finish(requeued, within: 60)
        XCTAssertEqual(outcome.status, 0, outcome.standardOutput + outcome.standardError)
        XCTAssertTrue(outcome.standardOutput.contains("resuming from \(runDirectory("slurm").path)/checkpoints/\(stopped.checkpoint)"),
                      outcome.standardOutput)
        XCTAssertEqual(try String(contentsOf: log, encoding: .utf8), "requeue 4242\nrequeue 4242\n")
    }

    // MARK: - A killed rank

    /// SIGKILL of one rank mid-epoch ends the whole job within 30 s, non-zero, with no process
    /// left; the same command then resumes from the newest periodic checkpoint and ends with the
    /// uninterrupted run's state, bit for bit (BatchNorm statistics included).
    func testKilledRankEndsTheJobAndTheRerunResumesBitForBit() throws {
        let make = { (name: String) in
            try self.write(self.configuration(name: name, trainSteps: 40, phase2Epochs: 0, evaluation: false) {
                $0["checkpoint"] = ["everySteps": 4, "keep": 3]
            })
        }
        let straight = try make("unkilled")
        assertSuccess(try trainTimeBoxed([straight], ranks: 2))

        let path = try make("killed-rank")
        let launched = try DistTrainExecutable.launch(["train", path], ranks: 2, outputDirectory: directory)
        let deadline = Date().addingTimeInterval(Self.launchTimeLimit)
        while Date() < deadline && launched.process.isRunning && checkpoints("killed-rank").isEmpty { usleep(10_000) }
        let ranks = try childProcesses(of: launched.process.processIdentifier, named: "disttrain")
        XCTAssertEqual(ranks.count, 2, "expected two ranks still training after the first checkpoint")
        let killed = Date()
        if let victim = ranks.last { kill(victim, SIGKILL) }
        let outcome = finish(launched, within: 30)
        let seconds = Date().timeIntervalSince(killed)
        print("kill of one rank to the end of the job: \(String(format: "%.1f", seconds)) s")
        XCTAssertNotEqual(outcome.status, 0)
        assertGone(ranks)
        XCTAssertFalse(checkpoints("killed-rank").contains("phase1-epoch1.h5"), "the job ended before the epoch did")

        let rerun = try trainTimeBoxed([path, "--verify-replicas"], ranks: 2)
        assertSuccess(rerun)
        XCTAssertTrue(rerun.standardOutput.contains("resuming from \(runDirectory("killed-rank").path)/checkpoints/phase1-epoch0-step"),
                      rerun.standardOutput)
        try assertSameState(runDirectory("unkilled").appendingPathComponent("checkpoints/phase1-epoch1.h5"),
                            runDirectory("killed-rank").appendingPathComponent("checkpoints/phase1-epoch1.h5"),
                            statisticsToRounding: false)
    }

    // MARK: - A stalled rank

    /// The rank number of a `disttrain` process under mpirun (its OMPI_COMM_WORLD_RANK).
    func worldRank(of pid: Int32) -> Int? {
        guard let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        return environment.split(separator: 0).lazy.compactMap { entry -> Int? in
            let text = String(decoding: entry, as: UTF8.self)
            guard text.hasPrefix("OMPI_COMM_WORLD_RANK=") else { return nil }
            return Int(text.dropFirst("OMPI_COMM_WORLD_RANK=".count))
        }.first
    }

    /// SIGSTOP of one rank: within the stall timeout (plus the query's grace) the other rank names
    /// it with its phase, epoch and step, the job aborts non-zero with no process left, and a
    /// rerun resumes from the newest checkpoint, which verifies.
    func testStoppedRankIsNamedAndTheJobAborts() throws {
        let path = try write(configuration(name: "stalled", trainSteps: 400, phase2Epochs: 0, evaluation: false) {
            $0["checkpoint"] = ["everySteps": 10, "keep": 2]
            $0["distributed"] = ["stallTimeout": 3]
        })
        let launched = try DistTrainExecutable.launch(["train", path], ranks: 2, outputDirectory: directory)
        waitUntilTraining("stalled")
        let ranks = try childProcesses(of: launched.process.processIdentifier, named: "disttrain")
        XCTAssertEqual(ranks.count, 2, "expected two disttrain ranks")
        let victim = try XCTUnwrap(ranks.last)
        let victimRank = try XCTUnwrap(worldRank(of: victim))
        let stopped = Date()
        kill(victim, SIGSTOP)
        let outcome = finish(launched, within: 60)
        let seconds = Date().timeIntervalSince(stopped)
        print("SIGSTOP of rank \(victimRank) to the end of the job (stallTimeout 3 s): \(String(format: "%.1f", seconds)) s")
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.standardError.contains("error: rank \(victimRank) stalled at phase 1, epoch 1, step "),
                      outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("(distributed.stallTimeout)"), outcome.standardError)
        assertGone(ranks)

        let rerun = try trainTimeBoxed([path, "--stop-after-steps", "1", "--verify-replicas"], ranks: 2)
        assertSuccess(rerun)
        XCTAssertTrue(rerun.standardOutput.contains("resuming from \(runDirectory("stalled").path)/checkpoints/phase1-epoch0-step"),
                      rerun.standardOutput)
        XCTAssertFalse(rerun.standardOutput.contains("skipping"), rerun.standardOutput)
    }

    /// SIGSTOP of one rank during `eval`: the other rank names it with the evaluation task it
    /// stalled in (not "setting up", where `eval` never trained), and the job aborts.
    func testRankStoppedDuringEvalIsNamedWithTheEvaluation() throws {
        let path = try write(configuration(name: "stalled-evaluation", evaluation: false) {
            Self.set("data", "limitTest", to: 10_000, in: &$0)
            Self.set("evaluation", "batchSize", to: 1, in: &$0)
            $0["distributed"] = ["stallTimeout": 3]
        })
        assertSuccess(try trainTimeBoxed([path], ranks: 2))
        let launched = try DistTrainExecutable.launch(["eval", path], ranks: 2, outputDirectory: directory)
        // Past the restore's broadcasts and the data loading first (a stop there is named at
        // "setting up"): rank 0 says when the test accuracy starts.
        waitForOutput(launched, containing: "computing the test accuracy")
        let ranks = try childProcesses(of: launched.process.processIdentifier, named: "disttrain")
        let victim = try XCTUnwrap(ranks.last)
        let victimRank = try XCTUnwrap(worldRank(of: victim))
        for _ in 0..<10 where launched.process.isRunning {
            kill(victim, SIGSTOP)
            let deadline = Date().addingTimeInterval(10)
            while launched.process.isRunning && Date() < deadline { usleep(50_000) }
            guard launched.process.isRunning else { break }
            kill(victim, SIGCONT)
            sleep(2)
        }
        let outcome = finish(launched, within: 60)
        XCTAssertNotEqual(outcome.status, 0)
        // Stopped in the test accuracy or, if the retries outlasted it, in the budgeted evaluation after it.
        XCTAssertTrue(["the test accuracy", "the budgeted evaluation"].contains {
            outcome.standardError.contains("error: rank \(victimRank) stalled at \($0): no progress for ")
        }, outcome.standardError)
        assertGone(ranks)
    }

    /// With a 2 s stall timeout, a whole run on 3 ranks, where rank 0 alone writes a checkpoint
    /// after every step and runs the budgeted evaluation while the others wait, is not mistaken
    /// for a stall.
    func testStallWatchWaitsForRankZerosOwnWork() throws {
        let path = try write(configuration(name: "busy-root", batch: 48) {
            $0["checkpoint"] = ["everySteps": 1, "keep": 2]
            $0["distributed"] = ["stallTimeout": 2]
            Self.set("evaluation", "budgets", to: 200, in: &$0)
        })
        let outcome = try trainTimeBoxed([path, "--verify-replicas"], ranks: 3)
        assertSuccess(outcome)
        XCTAssertTrue(checkpoints("busy-root").contains("phase2-epoch1.h5"))
    }

    // MARK: - Overlapped gradient all-reduce

    /// Gradients averaged in small buckets during the backward pass (phases I and II, with
    /// synchronised BatchNorm) end with the weights of one all-reduce after it, bit for bit, on
    /// 2 and 3 ranks.
    func testBucketsDuringBackwardEndBitIdenticalToOneAllReduceAfterIt() throws {
        for ranks in [2, 3] {
            for (name, bucketBytes) in [("after-backward-\(ranks)", 0), ("overlapped-\(ranks)", 256)] {
                let path = try write(configuration(name: name, batch: 48, phase1Epochs: 1, phase2Epochs: 1, evaluation: false) {
                    $0["syncBatchNorm"] = true
                    $0["distributed"] = ["bucketBytes": bucketBytes]
                })
                assertSuccess(try trainTimeBoxed([path, "--verify-replicas"], ranks: ranks))
            }
            try assertSameState(runDirectory("after-backward-\(ranks)").appendingPathComponent("checkpoints/phase2-epoch1.h5"),
                                runDirectory("overlapped-\(ranks)").appendingPathComponent("checkpoints/phase2-epoch1.h5"),
                                statisticsToRounding: false)
        }
    }

    /// On 4 ranks, with buckets of 64 KB and more (where Open MPI reduces by reduce-scatter and
    /// all-gather instead of a binomial tree), every rank holds the same weights after every
    /// step (--verify-replicas) and a second run ends with the first one's weights, bit for bit.
    func testBucketsOnFourRanksKeepTheRanksIdenticalAndRepeatBitForBit() throws {
        for name in ["four-ranks-first", "four-ranks-second"] {
            let path = try write(configuration(name: name, batch: 48, phase1Epochs: 1, phase2Epochs: 1, evaluation: false) {
                Self.set("model", "nChannels", to: 16, in: &$0)
                Self.set("model", "growthRate", to: 8, in: &$0)
                $0["distributed"] = ["bucketBytes": 65536]
            })
            assertSuccess(try trainTimeBoxed([path, "--verify-replicas"], ranks: 4))
        }
        try assertSameState(runDirectory("four-ranks-first").appendingPathComponent("checkpoints/phase2-epoch1.h5"),
                            runDirectory("four-ranks-second").appendingPathComponent("checkpoints/phase2-epoch1.h5"),
                            statisticsToRounding: false)
    }

    /// `bench --overlap` on 2 ranks times the three kinds of step and says how many buckets
    /// started during the backward pass; it refuses to be combined with another measurement, and
    /// to run on one rank, where there is nothing to hide.
    func testOverlapBenchmarkReportsTheHiddenFractionOnTwoRanks() throws {
        let path = try write(configuration(name: "overlap-bench") { $0["distributed"] = ["bucketBytes": 256] })
        let launched = try DistTrainExecutable.launch(["bench", path, "--overlap", "--steps", "2", "--batch-size", "4",
                                                       "--threads", "1"], ranks: 2, outputDirectory: directory)
        let outcome = finish(launched, within: Self.launchTimeLimit)
        assertSuccess(outcome)
        for text in ["2 rank(s), batch 4 per rank", "compute only (no all-reduce)", "all-reduce after the backward pass",
                     "buckets during the backward pass", "all-reduce time hidden:"] {
            XCTAssertTrue(outcome.standardOutput.contains(text), "no \"\(text)\" in\n\(outcome.standardOutput)")
        }
        let buckets = outcome.standardOutput.firstMatch(of: /(\d+) buckets of 256 bytes \(([0-9.]+) started during/)
        XCTAssertGreaterThan(Int(buckets?.output.1 ?? "") ?? 0, 10, outcome.standardOutput)
        XCTAssertGreaterThan(Double(buckets?.output.2 ?? "") ?? 0, 5, outcome.standardOutput)

        let combined = try DistTrainExecutable.run(["bench", path, "--overlap", "--all-reduce"], outputDirectory: directory)
        XCTAssertEqual(combined.status, 64, combined.standardError)
        XCTAssertTrue(combined.standardError.contains("--overlap measures only the overlap"), combined.standardError)

        let alone = try DistTrainExecutable.run(["bench", path, "--overlap", "--steps", "1"], outputDirectory: directory)
        XCTAssertEqual(alone.status, 64, alone.standardOutput + alone.standardError)
        XCTAssertTrue(alone.standardError.contains("run it under mpirun -n P with P >= 2"), alone.standardError)
    }

    // MARK: - Stopping the evaluation

    /// Waits (up to two minutes) until the job's standard output contains `text`.
    func waitForOutput(_ launched: (process: Process, output: URL, error: URL), containing text: String) {
        let deadline = Date().addingTimeInterval(120)
        while launched.process.isRunning && Date() < deadline,
              !((try? String(contentsOf: launched.output, encoding: .utf8)) ?? "").contains(text) { usleep(50_000) }
    }

    /// Steps recorded in the run's metrics.jsonl.
    func stepsLogged(_ name: String) throws -> Int {
        let text = try String(contentsOf: runDirectory(name).appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").filter { line in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return object?["kind"] as? String == "step"
        }.count
    }

    /// SIGTERM to the ranks during the evaluation after training stops it at the next batch with
    /// status 0 and one line saying so; the rerun trains nothing and redoes only the evaluation.
    /// SIGINT to the ranks during `eval` stops it with status 3; its rerun evaluates.
    func testStopDuringTheEvaluationIsHonouredAndTheRerunOnlyEvaluates() throws {
        // One image per evaluation batch over the whole test set: seconds of evaluation to land in.
        func runFile(evaluation: Bool) -> [String: Any] {
            configuration(name: "stopped-evaluation", evaluation: evaluation) {
                Self.set("data", "limitTest", to: 10_000, in: &$0)
                Self.set("evaluation", "batchSize", to: 1, in: &$0)
            }
        }
        // Trained to the end first, so that the signal can wait for the restore: after it comes
        // nothing but the evaluation (the signal is honoured at its first batch at the latest).
        let path = try write(runFile(evaluation: false))
        assertSuccess(try trainTimeBoxed([path], ranks: 2))
        try JSONSerialization.data(withJSONObject: runFile(evaluation: true)).write(to: URL(fileURLWithPath: path))
        let steps = try stepsLogged("stopped-evaluation")
        let written = checkpoints("stopped-evaluation")

        let training = try DistTrainExecutable.launch(["train", path], ranks: 2, outputDirectory: directory)
        waitForOutput(training, containing: "resuming from")
        let trainingRanks = try signalRanks(under: training.process.processIdentifier, SIGTERM)
        let stopped = finish(training, within: Self.launchTimeLimit)
        XCTAssertEqual(stopped.status, 0, stopped.standardOutput + stopped.standardError)
        XCTAssertTrue(stopped.standardOutput.contains("stopped during the budgeted evaluation"), stopped.standardOutput)
        XCTAssertTrue(stopped.standardOutput.contains(
            "training is complete and checkpointed (\(runDirectory("stopped-evaluation").path)/checkpoints/phase2-epoch1.h5); "
                + "run the same command to redo only the evaluation"), stopped.standardOutput)
        assertGone(trainingRanks)
        let logits = runDirectory("stopped-evaluation").appendingPathComponent("logits.h5")
        XCTAssertFalse(FileManager.default.fileExists(atPath: logits.path), "the interrupted evaluation wrote logits.h5")

        let rerun = try trainTimeBoxed([path], ranks: 2)
        assertSuccess(rerun)
        XCTAssertEqual(try stepsLogged("stopped-evaluation"), steps, "the rerun trained again")
        XCTAssertEqual(checkpoints("stopped-evaluation"), written, "the rerun wrote checkpoints")
        XCTAssertTrue(FileManager.default.fileExists(atPath: logits.path), rerun.standardOutput)
        XCTAssertTrue(rerun.standardOutput.contains("exit MADDs"), rerun.standardOutput)

        let evaluation = try DistTrainExecutable.launch(["eval", path], ranks: 2, outputDirectory: directory)
        waitForOutput(evaluation, containing: "resuming from")
        let evaluationRanks = try signalRanks(under: evaluation.process.processIdentifier, SIGINT)
        let interrupted = finish(evaluation, within: Self.launchTimeLimit)
        XCTAssertEqual(interrupted.status, 3, interrupted.standardOutput + interrupted.standardError)
        XCTAssertTrue(interrupted.standardOutput.contains("stopped during the test accuracy; nothing of the evaluation was written"),
                      interrupted.standardOutput)
        assertGone(evaluationRanks)
        let evaluated = try DistTrainExecutable.launch(["eval", path], ranks: 2, outputDirectory: directory)
        assertSuccess(finish(evaluated, within: Self.launchTimeLimit))
    }

    // MARK: - Several hosts

    /// cluster/local-hosts.sh: 2 hosts (network namespaces joined by a bridge, Open MPI over TCP
    /// between them) x 1 rank end with the weights of 1 host x 2 ranks, bit for bit. Needs root
    /// and `ip netns`; skipped with the reason otherwise.
    func testTwoHostsEndBitIdenticalToTwoRanksOnOneHost() throws {
        guard getuid() == 0 else {
            print("skipped: creating network namespaces needs root")
            return
        }
        let script = Self.repositoryRoot.appendingPathComponent("cluster/local-hosts.sh")
        let bash = URL(fileURLWithPath: "/bin/bash")
        // Namespaces of this process alone: another checkout's test suite running at the same
        // time would otherwise remove them (its `up` starts with `down`) under this run's mpirun.
        let namespaces = "dt\(getpid())h"
        let up = finish(try DistTrainExecutable.start(bash, [script.path, "up", "2"], environment: ["NAMESPACES": namespaces],
                                                      outputDirectory: directory), within: 60)
        defer {
            if let down = try? DistTrainExecutable.start(bash, [script.path, "down", "2"], environment: ["NAMESPACES": namespaces],
                                                         outputDirectory: directory) {
                _ = finish(down, within: 60)
            }
        }
        guard up.status == 0 else {
            print("skipped: cluster/local-hosts.sh up 2 failed (no ip netns here?): \(up.standardError)")
            return
        }
        // `up` returns only once each host's interface is up with its address (mpirun started
        // before that found no network interface).
        for host in 0..<2 {
            let addresses = finish(try DistTrainExecutable.start(URL(fileURLWithPath: "/usr/bin/env"),
                                                                 ["ip", "-n", "\(namespaces)\(host)", "-o", "addr", "show", "dev", "eth0", "up"],
                                                                 outputDirectory: directory), within: 60)
            XCTAssertTrue(addresses.standardOutput.contains("inet 10.77.0.\(host + 1)/24 "), "host \(host): \(addresses.standardOutput)")
        }
        let hosts = try write(configuration(name: "two-hosts", evaluation: false))
        let launched = try DistTrainExecutable.start(bash, [script.path, "run", "2", hosts],
                                                     environment: ["DISTTRAIN": try DistTrainExecutable.url().path, "NAMESPACES": namespaces],
                                                     outputDirectory: directory)
        assertSuccess(finish(launched, within: Self.launchTimeLimit))
        assertSuccess(try trainTimeBoxed([try write(configuration(name: "one-host", evaluation: false))], ranks: 2))
        try assertSameState(runDirectory("one-host").appendingPathComponent("checkpoints/phase2-epoch1.h5"),
                            runDirectory("two-hosts").appendingPathComponent("checkpoints/phase2-epoch1.h5"),
                            statisticsToRounding: false)
    }
}
