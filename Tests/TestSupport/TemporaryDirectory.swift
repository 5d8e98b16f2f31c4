import Foundation

/// Makes a fresh temporary directory for one test and removes it afterwards.
public final class TemporaryDirectory {
    public let path: String

    public init(_ name: String = #function) throws {
        let safeName = name.filter { $0.isLetter || $0.isNumber }
        path = NSTemporaryDirectory() + "disttrain-data-\(safeName)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func write(_ name: String, _ bytes: [UInt8]) throws {
        let file = "\(path)/\(name)"
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
