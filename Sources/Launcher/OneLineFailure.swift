import ArgumentParser
import DistTrain
import Foundation
import Storage

/// Runs a command's work; any failure becomes one readable line on standard error
/// (`readableReason`) and exit status 1, as the README promises for every command.
func failingWithOneLine<Result>(_ body: () throws -> Result) throws -> Result {
    do {
        return try body()
    } catch {
        FileHandle.standardError.write(Data("error: \(readableReason(error))\n".utf8))
        throw ExitCode.failure
    }
}
