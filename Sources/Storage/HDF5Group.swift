import CHDF5

/// What a path inside a file names.
public enum HDF5ObjectKind: Sendable {
    case group
    case dataset
    /// A named datatype or another kind of object this store does not use.
    case other
}

/// A group: a directory of named groups and datasets.
///
/// Paths passed to its methods are relative to the group (`"model/blocks.0.0.weight"`) or
/// absolute (`"/model"`); names may contain dots, as the reference `state_dict` keys do.
public final class HDF5Group: HDF5Object {

    // MARK: - Groups

    /// Creates the group at `path`, creating missing intermediate groups too.
    @discardableResult
    public func createGroup(_ path: String) throws -> HDF5Group {
        let groupPath = childPath(path)
        return try perform("create group", on: groupPath) { site in
            let linkCreation = try intermediateGroupLinkList(site)
            defer { H5Pclose(linkCreation) }
            let group = try site.check(identifier: H5Gcreate2(identifier, path, linkCreation,
                                                              shim_h5p_default(), shim_h5p_default()))
            return HDF5Group(file: file, path: groupPath, identifier: group)
        }
    }

    /// Opens the existing group at `path`.
    public func group(_ path: String) throws -> HDF5Group {
        let groupPath = childPath(path)
        return try perform("open group", on: groupPath) { site in
            guard try linkExists(path, site) else { throw site.notFound() }
            let group = try site.check(identifier: H5Gopen2(identifier, path, shim_h5p_default()))
            return HDF5Group(file: file, path: groupPath, identifier: group)
        }
    }

    /// Whether a group or dataset exists at `path` (every intermediate group must exist too).
    public func exists(_ path: String) throws -> Bool {
        try perform("look up", on: childPath(path)) { site in try linkExists(path, site) }
    }

    /// The names of the group's direct members in byte-wise name order.
    public func memberNames() throws -> [String] {
        try perform("list members of") { site in
            var information = H5G_info_t()
            try site.check(H5Gget_info(identifier, &information))
            return try (0..<information.nlinks).map { index in
                let length = H5Lget_name_by_idx(identifier, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0,
                                                shim_h5p_default())
                guard length >= 0 else { throw site.failure() }
                var name = [CChar](repeating: 0, count: Int(length) + 1)
                guard H5Lget_name_by_idx(identifier, ".", H5_INDEX_NAME, H5_ITER_INC, index, &name, name.count,
                                         shim_h5p_default()) >= 0 else { throw site.failure() }
                return name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            }
        }
    }

    /// Whether `path` names a group, a dataset or something else.
    public func kind(of path: String) throws -> HDF5ObjectKind {
        try perform("look up", on: childPath(path)) { site in
            guard try linkExists(path, site) else { throw site.notFound() }
            let object = try site.check(identifier: H5Oopen(identifier, path, shim_h5p_default()))
            defer { H5Oclose(object) }
            switch H5Iget_type(object) {
            case H5I_GROUP: return .group
            case H5I_DATASET: return .dataset
            default: return .other
            }
        }
    }

    // MARK: - Datasets

    /// Opens the existing dataset at `path`.
    public func dataset(_ path: String) throws -> HDF5Dataset {
        let datasetPath = childPath(path)
        return try perform("open dataset", on: datasetPath) { site in
            guard try linkExists(path, site) else { throw site.notFound() }
            let dataset = try site.check(identifier: H5Dopen2(identifier, path, shim_h5p_default()))
            return HDF5Dataset(file: file, path: datasetPath, identifier: dataset)
        }
    }

    /// Creates a dataset at `path` (and any missing intermediate groups) holding `values` laid out
    /// row-major in `shape` (`[]` for a scalar).
    ///
    /// Every dataset that holds at least one element and has rank ≥ 1 is stored in chunks of at
    /// most `HDF5Dataset.chunkByteLimit` bytes, each carrying a Fletcher-32 checksum that HDF5
    /// verifies on every read. Scalar datasets cannot be chunked in HDF5 and carry no checksum.
    @discardableResult
    public func createDataset<Element: HDF5Element>(_ path: String, values: UnsafeBufferPointer<Element>,
                                                    shape: [Int]) throws -> HDF5Dataset {
        let datasetPath = childPath(path)
        return try perform("create dataset", on: datasetPath) { site in
            guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
                throw site.sizeMismatch(expected: "\(shape.reduce(1, *)) values for shape \(shape)",
                                        found: "\(values.count) values")
            }
            let elementType = Element.hdf5ElementType
            let space = try site.check(identifier: shape.isEmpty
                ? H5Screate(H5S_SCALAR)
                : H5Screate_simple(Int32(shape.count), shape.map { hsize_t($0) }, nil))
            defer { H5Sclose(space) }
            let creation = try site.check(identifier: H5Pcreate(shim_h5p_dataset_create()))
            defer { H5Pclose(creation) }
            if !shape.isEmpty && values.count > 0 {
                let chunk = HDF5Dataset.chunkShape(for: shape, elementSize: MemoryLayout<Element>.stride)
                try site.check(H5Pset_chunk(creation, Int32(shape.count), chunk.map { hsize_t($0) }))
                try site.check(H5Pset_fletcher32(creation))
            }
            let linkCreation = try intermediateGroupLinkList(site)
            defer { H5Pclose(linkCreation) }
            let access = try writeThroughAccessList(site)
            defer { H5Pclose(access) }
            let dataset = try site.check(identifier: H5Dcreate2(identifier, path, elementType.fileType, space,
                                                                linkCreation, creation, access))
            let created = HDF5Dataset(file: file, path: datasetPath, identifier: dataset)
            if let base = values.baseAddress, values.count > 0 {
                try site.check(H5Dwrite(dataset, elementType.memoryType, shim_h5s_all(), shim_h5s_all(),
                                        shim_h5p_default(), base))
            }
            return created
        }
    }

    /// Creates a dataset from an array of values laid out row-major in `shape`.
    @discardableResult
    public func createDataset<Element: HDF5Element>(_ path: String, values: [Element],
                                                    shape: [Int]) throws -> HDF5Dataset {
        try values.withUnsafeBufferPointer { try createDataset(path, values: $0, shape: shape) }
    }

    /// Creates a dataset holding `array`.
    @discardableResult
    public func createDataset<Element: HDF5Element>(_ path: String, array: HDF5Array<Element>) throws -> HDF5Dataset {
        try createDataset(path, values: array.values, shape: array.shape)
    }

    /// Creates a scalar (shape `[]`) dataset, as PyTorch's `num_batches_tracked` is stored.
    @discardableResult
    public func createDataset<Element: HDF5Element>(_ path: String, scalar value: Element) throws -> HDF5Dataset {
        try createDataset(path, values: [value], shape: [])
    }

    /// Creates a one-dimensional dataset of variable-length byte arrays (h5py:
    /// `h5py.vlen_dtype(numpy.uint8)`), such as the original JPEG files of a data shard.
    ///
    /// The dataset can grow with `HDF5Dataset.appendByteArrays(_:)`. It carries no checksum:
    /// HDF5 refuses filters, Fletcher-32 included, on variable-length types ("not suitable for
    /// filters"; h5py fails the same way), and keeps the bytes in the file's global heap.
    @discardableResult
    public func createByteArrayDataset(_ path: String, byteArrays: [[UInt8]] = []) throws -> HDF5Dataset {
        let datasetPath = childPath(path)
        let dataset: HDF5Dataset = try perform("create dataset", on: datasetPath) { site in
            let space = try site.check(identifier: H5Screate_simple(1, [0], [shim_unlimited()]))
            defer { H5Sclose(space) }
            let creation = try site.check(identifier: H5Pcreate(shim_h5p_dataset_create()))
            defer { H5Pclose(creation) }
            try site.check(H5Pset_chunk(creation, 1, [hsize_t(HDF5Dataset.byteArrayChunkLength)]))
            let linkCreation = try intermediateGroupLinkList(site)
            defer { H5Pclose(linkCreation) }
            let type = try site.check(identifier: H5Tvlen_create(shim_std_u8le()))
            defer { H5Tclose(type) }
            let access = try writeThroughAccessList(site)
            defer { H5Pclose(access) }
            let dataset = try site.check(identifier: H5Dcreate2(identifier, path, type, space, linkCreation,
                                                                creation, access))
            return HDF5Dataset(file: file, path: datasetPath, identifier: dataset)
        }
        if !byteArrays.isEmpty { try dataset.appendByteArrays(byteArrays) }
        return dataset
    }

    /// Reads the whole dataset at `path`.
    public func read<Element: HDF5Element>(_ path: String, as type: Element.Type = Element.self) throws -> HDF5Array<Element> {
        try dataset(path).read(as: type)
    }

    // MARK: - Helpers

    /// A link-creation property list that creates missing intermediate groups.
    private func intermediateGroupLinkList(_ site: HDF5Site) throws -> hid_t {
        let list = try site.check(identifier: H5Pcreate(shim_h5p_link_create()))
        if H5Pset_create_intermediate_group(list, 1) < 0 {
            H5Pclose(list)
            throw site.failure()
        }
        return list
    }

    /// A dataset-access property list without a chunk cache, so that every write puts its chunks
    /// in the file at once and a full disk fails that write. With a cache, the chunks are written
    /// when the dataset closes; if that fails, libhdf5 1.10 frees the dataset but keeps its
    /// identifier, the memory is reused for a later dataset of another file, and that file's
    /// strong close closes it twice (a segfault in `H5D_close`). Each write here is a whole
    /// dataset or an append of many rows, so the cache saved nothing.
    private func writeThroughAccessList(_ site: HDF5Site) throws -> hid_t {
        let list = try site.check(identifier: H5Pcreate(shim_h5p_dataset_access()))
        if H5Pset_chunk_cache(list, 0, 0, 1) < 0 {
            H5Pclose(list)
            throw site.failure()
        }
        return list
    }

    /// Checks each prefix of `path` in turn, because `H5Lexists` fails rather than answering
    /// false when an intermediate group is missing.
    private func linkExists(_ path: String, _ site: HDF5Site) throws -> Bool {
        let absolute = path.hasPrefix("/")
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        if components.isEmpty { return true }
        var prefix = absolute ? "" : "."
        for component in components {
            prefix += "/" + component
            let exists = H5Lexists(identifier, prefix, shim_h5p_default())
            if exists < 0 {
                // An intermediate component that is a dataset, not a group.
                H5Eclear2(shim_h5e_default())
                return false
            }
            if exists == 0 { return false }
        }
        return true
    }
}
