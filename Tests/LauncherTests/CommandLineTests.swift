import Foundation
import TestSupport
import XCTest

/// Runs the built `disttrain` executable as a user would and checks what the user sees: exit
/// statuses, one-line errors on standard error, and a true `--help` for every command.
final class CommandLineTests: TemporaryDirectoryTestCase {
    private func run(_ arguments: [String], ranks: Int? = nil) throws -> DistTrainExecutable.Outcome {
        try DistTrainExecutable.run(arguments, ranks: ranks, environment: ["OPENBLAS_NUM_THREADS": "1"],
                                    outputDirectory: directory)
    }

    /// A valid run file whose data root is the test's directory, with `change` applied to its text.
    private func runFile(replacing target: String = "", with replacement: String = "") throws -> String {
        var text = """
            {
              "name": "cli-test",
              "runDir": "\(directory.appendingPathComponent("run").path)",
              "data": { "dataset": "fashion-mnist", "root": "\(directory.path)" },
              "model": { "nBlocks": 2, "stepmode": "even", "step": 1, "base": 1, "nChannels": 4 },
              "phase1": { "epochs": 1, "batchSize": 64, "lr": 0.1 },
              "phase2": { "epochs": 1, "batchSize": 64, "lr": 0.1 }
            }
            """
        if !target.isEmpty {
            XCTAssertTrue(text.contains(target))
            text = text.replacingOccurrences(of: target, with: replacement)
        }
        let path = directory.appendingPathComponent("run.json").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func assertRejected(
        _ outcome: DistTrainExecutable.Outcome, naming keyPath: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(outcome.status, 2, outcome.standardError, file: file, line: line)
        let lines = outcome.standardError.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "one line: \(outcome.standardError)", file: file, line: line)
        XCTAssertTrue(outcome.standardError.contains(": \(keyPath): expected "), outcome.standardError, file: file, line: line)
        XCTAssertEqual(outcome.standardOutput, "", file: file, line: line)
    }

    func testRejectedRunFileExitsWithStatusTwoAndOneLineNamingTheKey() throws {
        let path = try runFile(replacing: #""batchSize": 64, "lr": 0.1 },"#, with: #""batchSize": "64", "lr": 0.1 },"#)
        let outcome = try run([path])
        assertRejected(outcome, naming: "phase1.batchSize")
        XCTAssertTrue(outcome.standardError.hasSuffix(#"expected a positive integer, got "64""# + "\n"), outcome.standardError)
    }

    func testTrainSubcommandRejectsUnknownNestedKey() throws {
        let outcome = try run(["train", try runFile(replacing: #""nChannels": 4"#, with: #""nChannels": 4, "nchannels": 4"#)])
        assertRejected(outcome, naming: "model.nchannels")
    }

    func testRejectionHappensBeforeAnythingIsWritten() throws {
        let outcome = try run([try runFile(replacing: #""epochs": 1, "batchSize": 64"#, with: #""epochs": -1, "batchSize": 64"#)])
        assertRejected(outcome, naming: "phase1.epochs")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("run").path))
    }

    func testWorldSizeUnderMpirunMustDivideTheGlobalBatch() throws {
        let outcome = try run([try runFile()], ranks: 3)
        XCTAssertEqual(outcome.status, 2, outcome.standardError)
        // mpirun adds its own report of the failed job; the run file's reason appears once.
        let reasons = outcome.standardError.split(separator: "\n").filter { $0.contains(": phase1.batchSize: expected ") }
        XCTAssertEqual(reasons.count, 1, outcome.standardError)
        XCTAssertTrue(reasons.first?.contains("world size 3") ?? false, outcome.standardError)
    }

    func testMissingDataRootIsRejected() throws {
        let outcome = try run([try runFile(replacing: #""root": "\#(directory.path)""#, with: #""root": "/nonexistent/fashion-mnist""#)])
        assertRejected(outcome, naming: "data.root")
    }

    func testFreshAndResumeExcludeEachOther() throws {
        let outcome = try run(["train", try runFile(), "--fresh", "--resume", "checkpoint.h5"])
        XCTAssertEqual(outcome.status, 64, outcome.standardError)
        XCTAssertTrue(outcome.standardError.contains("--fresh and --resume"), outcome.standardError)
    }

    /// The README's Commands block lists every option each subcommand's `--help` lists, no more.
    func testReadmeCommandsBlockListsEveryOption() throws {
        let readme = try String(contentsOf: FixtureLocation.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let block = readme.components(separatedBy: "## Commands\n").dropFirst().first?.components(separatedBy: "\n| command").first ?? ""
        func options(_ text: some StringProtocol) -> Set<String> {
            Set(String(text).matches(of: /--[a-z][a-z-]*/).map { String($0.output) }).subtracting(["--help", "--version"])
        }
        for subcommand in [["train"], ["info"], ["eval"], ["predict"], ["plot"], ["prepare", "imagenet"], ["bench"], ["check-reference"]] {
            let line = block.split(separator: "\n").first { $0.hasPrefix("    disttrain " + subcommand.joined(separator: " ") + " ") }
            XCTAssertNotNil(line, "\(subcommand) in the Commands block")
            let help = try run(subcommand + ["--help"]).standardOutput
            // Only the option list's own lines ("  -x, --name <value>  ..."), not the prose.
            let listed = help.split(separator: "\n").filter { $0.hasPrefix("  -") }.map { $0.split(separator: " ").first { $0.hasPrefix("--") } ?? "" }
            XCTAssertEqual(options(line ?? ""), options(listed.joined(separator: " ")), "\(subcommand): README vs --help")
        }
    }

    func testEveryCommandHasHelp() throws {
        let commands: [([String], String)] = [
            ([], "USAGE: disttrain <subcommand>"),
            (["train"], "USAGE: disttrain train <config> [--resume <path>] [--fresh]"),
            (["info"], "USAGE: disttrain info <config>"),
            (["eval"], "USAGE: disttrain eval <config>"),
            (["prepare"], "USAGE: disttrain prepare <subcommand>"),
            (["prepare", "imagenet"], "USAGE: disttrain prepare imagenet"),
            (["bench"], "USAGE: disttrain bench <config>"),
            (["check-reference"], "USAGE: disttrain check-reference <file.h5>"),
        ]
        for (command, usage) in commands {
            let outcome = try run(command + ["--help"])
            XCTAssertEqual(outcome.status, 0, "\(command): \(outcome.standardError)")
            XCTAssertTrue(outcome.standardOutput.contains(usage), "\(command): \(outcome.standardOutput)")
        }
        let overview = try run(["--help"]).standardOutput
        for subcommand in ["train (default)", "info", "eval", "prepare", "bench", "check-reference"] {
            XCTAssertTrue(overview.contains("  \(subcommand) "), "\(subcommand) listed: \(overview)")
        }
    }
}
