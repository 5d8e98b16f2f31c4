import Foundation
import XCTest

/// Runs the built `disttrain` executable (and `mpirun` over it) as a user would.
enum DistTrainExecutable {
    struct Outcome {
        let status: Int32
        let standardOutput: String
        let standardError: String
    }

    /// The executable SwiftPM builds next to the test bundle (`.build/<configuration>/disttrain`).
    static func url() throws -> URL {
        let bundleDirectory = Bundle(for: Marker.self).bundleURL.deletingLastPathComponent()
        let candidates = [
            bundleDirectory.appendingPathComponent("disttrain"),
            URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent().appendingPathComponent("disttrain"),
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            XCTFail("no disttrain executable beside the tests in \(candidates.map(\.path)); build all products first")
            throw CocoaError(.fileNoSuchFile)
        }
        return found
    }

    /// The environment of a child: without the variables of an MPI world this test may run in,
    /// plus what Open MPI needs to run as root on more ranks than cores.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var inherited = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMI") && !$0.key.hasPrefix("PMIX")
        }
        inherited["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        inherited["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        inherited.merge(extra) { _, new in new }
        return inherited
    }

    /// Starts `disttrain arguments` (or `mpirun -n ranks ... disttrain arguments`) with its output
    /// going to files, so that a long run cannot block on a full pipe.
    static func launch(_ arguments: [String], ranks: Int? = nil, environment extra: [String: String] = [:],
                       outputDirectory: URL) throws -> (process: Process, output: URL, error: URL) {
        let executable = try url()
        if let ranks {
            return try start(URL(fileURLWithPath: "/usr/bin/env"),
                             ["mpirun", "-n", String(ranks), "--oversubscribe", executable.path] + arguments,
                             environment: extra, outputDirectory: outputDirectory)
        }
        return try start(executable, arguments, environment: extra, outputDirectory: outputDirectory)
    }

    /// Starts any `executable` (a launcher script, say) as `launch` starts `disttrain`.
    static func start(_ executable: URL, _ arguments: [String], environment extra: [String: String] = [:],
                      outputDirectory: URL) throws -> (process: Process, output: URL, error: URL) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment(extra)
        let output = outputDirectory.appendingPathComponent("stdout-\(UUID().uuidString).txt")
        let error = outputDirectory.appendingPathComponent("stderr-\(UUID().uuidString).txt")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: error.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: error)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, output, error)
    }

    /// Runs to completion and returns the exit status and both outputs.
    static func run(_ arguments: [String], ranks: Int? = nil, environment extra: [String: String] = [:],
                    outputDirectory: URL) throws -> Outcome {
        let launched = try launch(arguments, ranks: ranks, environment: extra, outputDirectory: outputDirectory)
        launched.process.waitUntilExit()
        return Outcome(status: launched.process.terminationStatus,
                       standardOutput: (try? String(contentsOf: launched.output, encoding: .utf8)) ?? "",
                       standardError: (try? String(contentsOf: launched.error, encoding: .utf8)) ?? "")
    }

    private final class Marker {}
}
