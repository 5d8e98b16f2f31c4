import ArgumentParser
import DistTrain
import Foundation

/// Loading the run file the way every subcommand does: a rejected file prints its one-line
/// reason to standard error and ends the process with status 2, before anything is written.
enum RunFile {
    /// Exit status for a rejected run file (distinct from 1, a failure while running, and 64,
    /// a malformed command line).
    static let rejectedExitCode = ExitCode(2)

    static func load(_ path: String, worldSize: Int, requireDataRoot: Bool = true) throws -> RunConfiguration {
        do {
            return try RunConfiguration.load(path: path, worldSize: worldSize, requireDataRoot: requireDataRoot)
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw rejectedExitCode
        }
    }
}
