import ArgumentParser
import Communication
import DistTrain
import Foundation

/// Loading the run file the way every subcommand does: a rejected file prints its one-line
/// reason to standard error and ends the process with status 2, before anything is written.
enum RunFile {
    /// Exit status for a rejected run file (distinct from 1, a failure while running, and 64,
    /// a malformed command line).
    static let rejectedExitCode = ExitCode(2)

    /// Loads the run file for one process on its own (no ranks to agree with).
    static func load(_ path: String, worldSize: Int, requireDataRoot: Bool = true) throws -> RunConfiguration {
        do {
            return try RunConfiguration.load(path: path, worldSize: worldSize, requireDataRoot: requireDataRoot)
        } catch let error as ConfigurationError {
            printToStandardError(error.description)
            throw rejectedExitCode
        }
    }

    /// Loads the run file on every rank against the world's size, and has the ranks agree: if any
    /// rank rejects it (a data root missing on one node, say), every rank exits with status 2
    /// instead of the others waiting for it forever. The reason is printed once, by rank 0 when
    /// it rejected the file, otherwise by each rank that did, prefixed with its rank.
    static func load(_ path: String, communicator: Communicator, requireDataRoot: Bool = true) throws -> RunConfiguration {
        let outcome: Result<RunConfiguration, ConfigurationError>
        do {
            outcome = .success(try RunConfiguration.load(
                path: path, worldSize: communicator.size, requireDataRoot: requireDataRoot))
        } catch let error as ConfigurationError {
            outcome = .failure(error)
        }
        let rejectedOnRoot = try communicator.broadcast(outcome.isFailure ? 1 : 0, from: 0) == 1
        let rejectingRanks = try communicator.allReduce(outcome.isFailure ? 1 : 0, .sum)
        switch outcome {
        case .success(let configuration) where rejectingRanks == 0:
            return configuration
        case .success:
            throw rejectedExitCode
        case .failure(let error):
            if communicator.isRoot {
                printToStandardError(error.description)
            } else if !rejectedOnRoot {
                printToStandardError("rank \(communicator.rank): \(error.description)")
            }
            throw rejectedExitCode
        }
    }

    private static func printToStandardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

private extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
