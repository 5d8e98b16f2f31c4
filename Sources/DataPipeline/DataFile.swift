import Foundation

/// Reading whole data files, gunzipping those that start with the gzip magic bytes.
public enum DataFile {
    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.unreadableFile(path: path)
        }
        let bytes = [UInt8](data)
        guard Gzip.isGzip(bytes) else { return bytes }
        do {
            return try Gzip.decompress(bytes)
        } catch let error as GzipError {
            throw DataError.compressedFile(path: path, reason: error)
        }
    }

    /// The first of `candidates` that exists.
    static func firstExisting(_ candidates: [String], what: String) throws -> String {
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw DataError.missingFile(what: what, candidates: candidates)
        }
        return path
    }

    public static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
