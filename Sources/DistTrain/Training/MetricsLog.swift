import Foundation

/// Appends one JSON object per line to `<runDir>/metrics.jsonl` (rank 0 only): one record per
/// logging interval and one per epoch, so a run can be plotted or tailed while it trains.
public final class MetricsLog {
    private let handle: FileHandle
    public let path: String

    public init(path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw TrainingError.cannotWrite(path: path, reason: "could not create the metrics file")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.cannotWrite(path: path, reason: "could not open the metrics file for appending")
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    deinit { try? handle.close() }

    /// Writes `record` as one line of JSON with sorted keys.
    public func append(_ record: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
        handle.write(data)
        handle.write(Data([0x0A]))
    }
}
