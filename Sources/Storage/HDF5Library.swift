import CHDF5
import Foundation

/// The one door into the HDF5 C library.
///
/// HDF5 keeps process-wide state. Debian's `hdf5-serial` happens to be built thread-safe, but
/// builds without `--enable-threadsafe` must never be entered from two threads at once, so every
/// Storage operation runs inside `serialized`, which holds one process-wide recursive lock. The
/// Storage types can therefore be used from any thread; calls from different threads queue.
enum HDF5Library {
    private static let lock = NSRecursiveLock()

    /// Turns off HDF5's own clean-up at process exit, once, before the library's first use.
    /// When a dataset's close fails (its chunk cannot be written: a full disk), libhdf5 1.10
    /// leaves it registered but half torn down, and the clean-up closes it again and segfaults
    /// in `H5D_close` (from `H5_term_library` at exit), turning a reported error into a crash.
    /// Files are closed by `HDF5File` itself, so the clean-up has nothing else to do.
    private static let noCloseAtExit: Void = { _ = H5dont_atexit() }()

    /// Runs `body` holding the library lock, with HDF5's own printing of error stacks to stderr
    /// turned off (in thread-safe builds that setting is per thread, so it is set on every entry).
    static func serialized<Result>(_ body: () throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        _ = noCloseAtExit
        H5Eset_auto2(shim_h5e_default(), nil, nil)
        return try body()
    }

    /// The calling thread's HDF5 error stack as one short line: the operating system's reason
    /// when a system call failed ("no space left on device", "is a directory"), else the
    /// innermost (most specific) message. The stack is cleared.
    static func takeErrorStack() -> String {
        final class Messages { var lines: [String] = [] }
        let messages = Messages()
        let walker: H5E_walk2_t = { _, error, clientData in
            guard let error, let clientData else { return 0 }
            let messages = Unmanaged<Messages>.fromOpaque(clientData).takeUnretainedValue()
            // Some messages (file-open failures) carry their own line breaks.
            let description = (error.pointee.desc.map { String(cString: $0) } ?? "")
                .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            messages.lines.append(description)
            return 0
        }
        H5Ewalk2(shim_h5e_default(), H5E_WALK_UPWARD, walker, Unmanaged.passUnretained(messages).toOpaque())
        H5Eclear2(shim_h5e_default())
        return readableReason(messages.lines)
    }

    /// The one line a user needs from an error stack (innermost message first): the system's
    /// `error message = '...'` if a system call failed, else the innermost message, shortened.
    static func readableReason(_ stack: [String]) -> String {
        let marker = "error message = '"
        for line in stack {
            guard let start = line.range(of: marker)?.upperBound,
                  let end = line[start...].firstIndex(of: "'") else { continue }
            let reason = String(line[start..<end])
            return reason.prefix(1).lowercased() + reason.dropFirst()
        }
        guard let innermost = stack.first(where: { !$0.isEmpty }) else { return "unknown HDF5 error" }
        return innermost.count > 160 ? String(innermost.prefix(157)) + "..." : innermost
    }

    /// Makes narrowing reads fail instead of clipping: an int64 value that does not fit in Int32,
    /// or a float64 beyond Float's range, aborts the read. Other conversions keep HDF5's default
    /// (float64 to float32 rounds to nearest).
    static let rejectOutOfRangeConversion: H5T_conv_except_func_t = { exception, _, _, _, _, _ in
        switch exception {
        case H5T_CONV_EXCEPT_RANGE_HI, H5T_CONV_EXCEPT_RANGE_LOW:
            return H5T_CONV_ABORT
        default:
            return H5T_CONV_UNHANDLED
        }
    }
}

/// Where an operation happens, for error messages: the file, the object path and the verb.
struct HDF5Site {
    let operation: String
    let file: String
    let object: String

    func failure() -> HDF5Error {
        .libraryCallFailed(operation: operation, file: file, object: object, reason: HDF5Library.takeErrorStack())
    }

    /// Throws the library's error if `status` is negative (HDF5's failure convention).
    func check(_ status: herr_t) throws {
        if status < 0 { throw failure() }
    }

    /// Returns `identifier`, or throws the library's error if it is negative.
    func check(identifier: hid_t) throws -> hid_t {
        if identifier < 0 { throw failure() }
        return identifier
    }

    /// Returns the truth value of an HDF5 tri-state answer, or throws if the call failed.
    func check(truth: htri_t) throws -> Bool {
        if truth < 0 { throw failure() }
        return truth > 0
    }

    func typeMismatch(expected: String, found: String) -> HDF5Error {
        .typeMismatch(operation: operation, file: file, object: object, expected: expected, found: found)
    }

    func sizeMismatch(expected: String, found: String) -> HDF5Error {
        .sizeMismatch(operation: operation, file: file, object: object, expected: expected, found: found)
    }

    func notFound() -> HDF5Error {
        .notFound(operation: operation, file: file, object: object)
    }
}
