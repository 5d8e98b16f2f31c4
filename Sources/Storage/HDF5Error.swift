/// A failure of an HDF5 file operation, naming the file, the object inside it and what was being done.
public enum HDF5Error: Error, CustomStringConvertible {
    /// The HDF5 library refused the call; `reason` is its own error stack, innermost cause first
    /// (a corrupted chunk reads as "data error detected by Fletcher32 checksum; filter returned
    /// failure during read; ...").
    case libraryCallFailed(operation: String, file: String, object: String, reason: String)
    /// No group, dataset or attribute exists at `object`.
    case notFound(operation: String, file: String, object: String)
    /// The stored element type cannot be read or written as the requested Swift type.
    case typeMismatch(operation: String, file: String, object: String, expected: String, found: String)
    /// A shape or element count does not match the data or the caller's buffer.
    case sizeMismatch(operation: String, file: String, object: String, expected: String, found: String)
    /// The file was closed before the operation.
    case fileClosed(operation: String, file: String, object: String)

    /// What went wrong, without the operation and file (for messages that name those already).
    public var cause: String {
        switch self {
        case let .libraryCallFailed(_, _, _, reason): return reason
        case let .notFound(operation, _, object): return Self.isFile(operation, object) ? "no such file" : "no such object"
        case let .typeMismatch(_, _, _, expected, found), let .sizeMismatch(_, _, _, expected, found):
            return "expected \(expected), found \(found)"
        case .fileClosed: return "the file is closed"
        }
    }

    public var description: String {
        switch self {
        case let .libraryCallFailed(operation, file, object, reason) where Self.isFile(operation, object):
            return "HDF5: cannot \(operation) \(file): \(reason)"
        case let .libraryCallFailed(operation, file, object, reason):
            return "HDF5: cannot \(operation) '\(object)' in \(file): \(reason)"
        case let .notFound(operation, file, object) where Self.isFile(operation, object):
            return "cannot \(operation.dropLast(" file".count)) \(file): no such file"
        case let .notFound(operation, file, object):
            return "HDF5: cannot \(operation) '\(object)' in \(file): no such object"
        case let .typeMismatch(operation, file, object, expected, found):
            return "HDF5: cannot \(operation) '\(object)' in \(file): expected \(expected), found \(found)"
        case let .sizeMismatch(operation, file, object, expected, found):
            return "HDF5: cannot \(operation) '\(object)' in \(file): expected \(expected), found \(found)"
        case let .fileClosed(operation, file, object):
            return "HDF5: cannot \(operation) '\(object)' in \(file): the file is closed"
        }
    }

    /// An operation on the file itself ("open file" at "/"), not on an object inside it.
    private static func isFile(_ operation: String, _ object: String) -> Bool { object == "/" && operation.hasSuffix(" file") }
}
