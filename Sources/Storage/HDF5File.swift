import CHDF5
import Foundation

/// An open HDF5 file.
///
/// Groups and datasets opened from it keep it alive; `close()` (or the last reference going away)
/// closes the file and every object still open in it, so the file on disk is complete and
/// unlocked when `close()` returns (HDF5's "strong" close degree). Objects used after that throw
/// `HDF5Error.fileClosed`. All operations are serialised on one process-wide lock
/// (see `HDF5Library`), so any thread may use the file.
public final class HDF5File {
    public enum AccessMode: Sendable {
        case readOnly
        case readWrite
    }

    /// The path the file was created or opened with.
    public let path: String
    let identifier: hid_t
    private(set) public var isOpen: Bool = true

    private init(path: String, identifier: hid_t) {
        self.path = path
        self.identifier = identifier
    }

    /// Creates `path`, replacing any existing file.
    public static func create(_ path: String) throws -> HDF5File {
        try HDF5Library.serialized {
            let site = HDF5Site(operation: "create file", file: path, object: "/")
            let access = try strongCloseAccessList(site)
            defer { H5Pclose(access) }
            let identifier = try site.check(identifier: H5Fcreate(path, shim_h5f_acc_trunc(), shim_h5p_default(), access))
            return HDF5File(path: path, identifier: identifier)
        }
    }

    /// Creates a file that lives only in memory (HDF5's core driver, no backing store); `name`
    /// names it in errors. `image()` returns its bytes. Writers that must survive a full disk
    /// build the file here and write the image themselves: HDF5 then never meets a failed write,
    /// after which libhdf5 1.10 leaves the object whose close failed half torn down (see
    /// `HDF5Library.serialized`) and the file on disk partial.
    public static func createInMemory(name: String) throws -> HDF5File {
        try HDF5Library.serialized {
            let site = HDF5Site(operation: "create file in memory", file: name, object: "/")
            let access = try strongCloseAccessList(site)
            defer { H5Pclose(access) }
            try site.check(H5Pset_fapl_core(access, 1 << 20, false))
            let identifier = try site.check(identifier: H5Fcreate(name, shim_h5f_acc_trunc(), shim_h5p_default(), access))
            return HDF5File(path: name, identifier: identifier)
        }
    }

    /// The bytes of the whole file as it would be on disk (after flushing everything buffered).
    public func image() throws -> [UInt8] {
        try HDF5Library.serialized {
            let site = HDF5Site(operation: "take the image of", file: path, object: "/")
            guard isOpen else { throw HDF5Error.fileClosed(operation: site.operation, file: path, object: "/") }
            try site.check(H5Fflush(identifier, H5F_SCOPE_GLOBAL))
            let size = H5Fget_file_image(identifier, nil, 0)
            guard size >= 0 else { throw site.failure() }
            var bytes = [UInt8](repeating: 0, count: size)
            let copied = bytes.withUnsafeMutableBytes { H5Fget_file_image(identifier, $0.baseAddress, size) }
            guard copied == size else { throw site.failure() }
            return bytes
        }
    }

    /// Opens an existing file.
    public static func open(_ path: String, mode: AccessMode = .readOnly) throws -> HDF5File {
        try HDF5Library.serialized {
            let site = HDF5Site(operation: "open file", file: path, object: "/")
            guard FileManager.default.fileExists(atPath: path) else { throw site.notFound() }
            let access = try strongCloseAccessList(site)
            defer { H5Pclose(access) }
            let flags = mode == .readOnly ? shim_h5f_acc_rdonly() : shim_h5f_acc_rdwr()
            let identifier = try site.check(identifier: H5Fopen(path, flags, access))
            return HDF5File(path: path, identifier: identifier)
        }
    }

    private static func strongCloseAccessList(_ site: HDF5Site) throws -> hid_t {
        let access = try site.check(identifier: H5Pcreate(shim_h5p_file_access()))
        if H5Pset_fclose_degree(access, H5F_CLOSE_STRONG) < 0 {
            H5Pclose(access)
            throw site.failure()
        }
        return access
    }

    /// The root group `/`; file-level attributes (h5py's `file.attrs`) are its attributes.
    public var root: HDF5Group {
        get throws {
            try HDF5Library.serialized {
                let site = HDF5Site(operation: "open group", file: path, object: "/")
                guard isOpen else { throw HDF5Error.fileClosed(operation: site.operation, file: path, object: "/") }
                let group = try site.check(identifier: H5Gopen2(identifier, "/", shim_h5p_default()))
                return HDF5Group(file: self, path: "/", identifier: group)
            }
        }
    }

    /// Writes everything buffered to the file and asks the operating system to put it on disk
    /// (`fsync`), so a rename that follows publishes complete data.
    public func flush() throws {
        try HDF5Library.serialized {
            let site = HDF5Site(operation: "flush file", file: path, object: "/")
            guard isOpen else { throw HDF5Error.fileClosed(operation: site.operation, file: path, object: "/") }
            try site.check(H5Fflush(identifier, H5F_SCOPE_GLOBAL))
            let access = try site.check(identifier: H5Fget_access_plist(identifier))
            defer { H5Pclose(access) }
            var handle: UnsafeMutableRawPointer?
            try site.check(H5Fget_vfd_handle(identifier, access, &handle))
            // The default (sec2) driver's handle is a pointer to its POSIX file descriptor.
            guard let descriptor = handle?.assumingMemoryBound(to: Int32.self).pointee, fsync(descriptor) == 0 else {
                throw HDF5Error.libraryCallFailed(operation: site.operation, file: path, object: "/",
                                                  reason: "fsync failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Closes the file and every object still open in it. Closing a closed file does nothing.
    public func close() throws {
        try HDF5Library.serialized {
            guard isOpen else { return }
            isOpen = false
            try HDF5Site(operation: "close file", file: path, object: "/").check(H5Fclose(identifier))
        }
    }

    deinit {
        if isOpen {
            HDF5Library.serialized { _ = H5Fclose(identifier) }
        }
    }
}
