import CHDF5

/// A group or dataset inside an open `HDF5File`; both can carry attributes.
public class HDF5Object {
    /// The file holding this object (kept open while the object lives).
    public let file: HDF5File
    /// The absolute path of the object inside the file, such as `/model/classifier.2.linear.bias`.
    public let path: String
    let identifier: hid_t

    init(file: HDF5File, path: String, identifier: hid_t) {
        self.file = file
        self.path = path
        self.identifier = identifier
    }

    deinit {
        // After a strong file close HDF5 has already released the identifier.
        if file.isOpen {
            HDF5Library.serialized { _ = H5Oclose(identifier) }
        }
    }

    /// The absolute path of `name` relative to this object (`name` may itself be absolute).
    func childPath(_ name: String) -> String {
        if name.hasPrefix("/") { return name }
        return path == "/" ? "/" + name : path + "/" + name
    }

    /// Runs `body` under the library lock after checking that the file is still open.
    func perform<Result>(_ operation: String, on object: String? = nil,
                         _ body: (HDF5Site) throws -> Result) throws -> Result {
        try HDF5Library.serialized {
            let site = HDF5Site(operation: operation, file: file.path, object: object ?? path)
            guard file.isOpen else {
                throw HDF5Error.fileClosed(operation: operation, file: file.path, object: site.object)
            }
            return try body(site)
        }
    }
}
