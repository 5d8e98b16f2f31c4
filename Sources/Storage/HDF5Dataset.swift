import CHDF5
import Glibc

/// A dataset: an n-dimensional array of one element type, or a list of variable-length byte arrays.
///
/// Reads convert floating point to floating point and integer to integer (int64 into `Int32`,
/// float64 into `Float`, ...); a value out of the target type's range makes the read throw
/// instead of clipping. Reading floating-point data as integers, or the reverse, throws
/// `HDF5Error.typeMismatch`. A chunk whose Fletcher-32 checksum does not match makes the read
/// throw `HDF5Error.libraryCallFailed` ("data error detected by Fletcher32 checksum").
public final class HDF5Dataset: HDF5Object {
    /// The largest chunk `HDF5Group.createDataset` makes (HDF5's default chunk cache is 1 MiB).
    public static let chunkByteLimit = 1 << 20
    /// Elements per chunk of a byte-array dataset (each element is a 16-byte heap reference);
    /// chunking is what lets the dataset grow.
    static let byteArrayChunkLength = 4096

    /// A chunk shape for `shape` of at most `chunkByteLimit` bytes: whole trailing rows are kept
    /// together and the leading axes are halved first.
    static func chunkShape(for shape: [Int], elementSize: Int) -> [Int] {
        var chunk = shape.map { max($0, 1) }
        for axis in chunk.indices {
            while chunk.reduce(elementSize, *) > chunkByteLimit && chunk[axis] > 1 {
                chunk[axis] = (chunk[axis] + 1) / 2
            }
        }
        return chunk
    }

    // MARK: - Description

    /// The dataset's dimensions; `[]` for a scalar.
    public var shape: [Int] {
        get throws { try perform("read the shape of") { site in try dimensions(site) } }
    }

    /// The stored element type, or nil when it is not one of the numeric element types
    /// (variable-length byte arrays, strings, compound types).
    public var elementType: HDF5ElementType? {
        get throws {
            try perform("read the type of") { site in
                let type = try site.check(identifier: H5Dget_type(identifier))
                defer { H5Tclose(type) }
                return HDF5ElementType(storedType: type)
            }
        }
    }

    /// The most bytes a read of this dataset can honestly produce: without a compression filter,
    /// no more than the file holds on disk (1 MB of slack for fill values); with one, what the
    /// machine's memory holds.
    private func readableBytes() throws -> Int {
        let compressed = try filters().contains { $0 != H5Z_FILTER_FLETCHER32 && $0 != H5Z_FILTER_SHUFFLE }
        var status = stat()
        guard !compressed, stat(file.path, &status) == 0 else { return MachineMemory.totalBytes() }
        return Int(status.st_size) + (1 << 20)
    }

    /// Whether the dataset's chunks carry Fletcher-32 checksums.
    public var isChecksummed: Bool {
        get throws { try filters().contains(H5Z_FILTER_FLETCHER32) }
    }

    /// The filters in the dataset's creation property list, in pipeline order.
    private func filters() throws -> [H5Z_filter_t] {
        try perform("read the filters of") { site in
            let creation = try site.check(identifier: H5Dget_create_plist(identifier))
            defer { H5Pclose(creation) }
            let filterCount = H5Pget_nfilters(creation)
            guard filterCount >= 0 else { throw site.failure() }
            return (0..<UInt32(filterCount)).map { index in
                var flags: UInt32 = 0
                var parameterCount = 0
                return H5Pget_filter2(creation, index, &flags, &parameterCount, nil, 0, nil, nil)
            }
        }
    }

    // MARK: - Numeric reads

    /// Reads the whole dataset.
    public func read<Element: HDF5Element>(as type: Element.Type = Element.self) throws -> HDF5Array<Element> {
        let shape = try self.shape
        // A damaged or hostile file can claim any shape: its size is checked before allocating.
        let count = shape.reduce(1) { total, size in
            let (product, overflow) = total.multipliedReportingOverflow(by: size)
            return overflow ? .max : product
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        let limit = try readableBytes()
        guard !overflow, bytes <= limit else {
            throw HDF5Error.sizeMismatch(operation: "read dataset", file: file.path, object: path,
                                         expected: "at most \(limit) bytes (what the file can hold)", found: "shape \(shape)")
        }
        let values = try [Element](unsafeUninitializedCapacity: count) { buffer, count in
            try read(into: buffer)
            count = buffer.count
        }
        return HDF5Array(shape: shape, values: values)
    }

    /// Reads the whole dataset into `buffer`, which must hold exactly as many elements.
    public func read<Element: HDF5Element>(into buffer: UnsafeMutableBufferPointer<Element>) throws {
        try perform("read dataset") { site in try readElements(rows: nil, into: buffer, site) }
    }

    /// Reads a dataset that holds one element (a scalar or any shape of one element).
    public func readScalar<Element: HDF5Element>(as type: Element.Type = Element.self) throws -> Element {
        let array = try read(as: type)
        guard array.values.count == 1 else {
            throw HDF5Error.sizeMismatch(operation: "read scalar", file: file.path, object: path,
                                         expected: "one element", found: "shape \(array.shape)")
        }
        return array.values[0]
    }

    /// Reads `rows` along the first axis (for example samples `rows` of `/pixels [n, H, W, C]`).
    public func readRows<Element: HDF5Element>(_ rows: Range<Int>,
                                               as type: Element.Type = Element.self) throws -> HDF5Array<Element> {
        let shape = try self.shape
        let rowShape = Array(shape.dropFirst())
        let values = try [Element](unsafeUninitializedCapacity: rows.count * rowShape.reduce(1, *)) { buffer, count in
            try readRows(rows, into: buffer)
            count = buffer.count
        }
        return HDF5Array(shape: [rows.count] + rowShape, values: values)
    }

    /// Reads `rows` along the first axis into `buffer`, which must hold exactly that many elements.
    public func readRows<Element: HDF5Element>(_ rows: Range<Int>, into buffer: UnsafeMutableBufferPointer<Element>) throws {
        try perform("read rows \(rows.lowerBound)..<\(rows.upperBound) of") { site in
            try readElements(rows: rows, into: buffer, site)
        }
    }

    // MARK: - Byte arrays

    /// Reads every element of a variable-length byte-array dataset.
    public func readByteArrays() throws -> [[UInt8]] {
        try perform("read byte arrays from") { site in
            let dimensions = try dimensions(site)
            guard dimensions.count == 1 else {
                throw site.sizeMismatch(expected: "a one-dimensional dataset", found: "shape \(dimensions)")
            }
            return try readByteArrayElements(rows: 0..<dimensions[0], site)
        }
    }

    /// Reads elements `rows` of a variable-length byte-array dataset.
    public func readByteArrays(_ rows: Range<Int>) throws -> [[UInt8]] {
        try perform("read byte arrays \(rows.lowerBound)..<\(rows.upperBound) from") { site in
            try readByteArrayElements(rows: rows, site)
        }
    }

    /// Appends `byteArrays` to the end of a variable-length byte-array dataset.
    public func appendByteArrays(_ byteArrays: [[UInt8]]) throws {
        try perform("append byte arrays to") { site in
            let type = try site.check(identifier: H5Dget_type(identifier))
            defer { H5Tclose(type) }
            try checkByteArrayType(type, site)
            let dimensions = try dimensions(site)
            guard dimensions.count == 1 else {
                throw site.sizeMismatch(expected: "a one-dimensional dataset", found: "shape \(dimensions)")
            }
            guard !byteArrays.isEmpty else { return }
            let start = dimensions[0]
            try site.check(H5Dset_extent(identifier, [hsize_t(start + byteArrays.count)]))
            let fileSpace = try site.check(identifier: H5Dget_space(identifier))
            defer { H5Sclose(fileSpace) }
            try site.check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, [hsize_t(start)], nil,
                                               [hsize_t(byteArrays.count)], nil))
            let memorySpace = try site.check(identifier: H5Screate_simple(1, [hsize_t(byteArrays.count)], nil))
            defer { H5Sclose(memorySpace) }
            let memoryType = try site.check(identifier: H5Tvlen_create(shim_native_uint8()))
            defer { H5Tclose(memoryType) }
            // HDF5 takes (length, pointer) pairs; pointing them into one contiguous copy keeps
            // every pointer valid for the duration of the write.
            var contiguous = byteArrays.flatMap { $0 }
            try contiguous.withUnsafeMutableBytes { bytes in
                var offset = 0
                let descriptors = byteArrays.map { array -> hvl_t in
                    defer { offset += array.count }
                    return hvl_t(len: array.count, p: bytes.baseAddress.map { $0 + offset })
                }
                try site.check(H5Dwrite(identifier, memoryType, memorySpace, fileSpace, shim_h5p_default(),
                                        descriptors))
            }
        }
    }

    // MARK: - Helpers

    private func dimensions(_ site: HDF5Site) throws -> [Int] {
        let space = try site.check(identifier: H5Dget_space(identifier))
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw site.failure() }
        var dimensions = [hsize_t](repeating: 0, count: Int(rank))
        guard H5Sget_simple_extent_dims(space, &dimensions, nil) >= 0 else { throw site.failure() }
        return dimensions.map { Int($0) }
    }

    /// Reads all elements, or `rows` along the first axis, converting to `Element`'s native type.
    private func readElements<Element: HDF5Element>(rows: Range<Int>?, into buffer: UnsafeMutableBufferPointer<Element>,
                                                    _ site: HDF5Site) throws {
        let elementType = Element.hdf5ElementType
        let storedType = try site.check(identifier: H5Dget_type(identifier))
        defer { H5Tclose(storedType) }
        guard canConvert(storedType: storedType, to: elementType) else {
            throw site.typeMismatch(expected: "data readable as \(elementType.rawValue)",
                                    found: describeStoredType(storedType))
        }
        let dimensions = try dimensions(site)
        let fileSpace = try site.check(identifier: H5Dget_space(identifier))
        defer { H5Sclose(fileSpace) }
        var memorySpace = shim_h5s_all()
        var selectedShape = dimensions
        if let rows {
            guard let rowCount = dimensions.first, rows.lowerBound >= 0, rows.upperBound <= rowCount else {
                throw site.sizeMismatch(expected: "rows within the first axis of shape \(dimensions)",
                                        found: "rows \(rows.lowerBound)..<\(rows.upperBound)")
            }
            selectedShape[0] = rows.count
            let start = [hsize_t(rows.lowerBound)] + [hsize_t](repeating: 0, count: dimensions.count - 1)
            try site.check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, start, nil,
                                               selectedShape.map { hsize_t($0) }, nil))
            memorySpace = try site.check(identifier: H5Screate_simple(Int32(selectedShape.count),
                                                                     selectedShape.map { hsize_t($0) }, nil))
        }
        defer { if rows != nil { H5Sclose(memorySpace) } }
        let elementCount = selectedShape.reduce(1, *)
        guard buffer.count == elementCount else {
            throw site.sizeMismatch(expected: "a buffer of \(elementCount) elements (shape \(selectedShape))",
                                    found: "\(buffer.count) elements")
        }
        guard elementCount > 0, let base = buffer.baseAddress else { return }
        let transfer = try site.check(identifier: H5Pcreate(shim_h5p_dataset_xfer()))
        defer { H5Pclose(transfer) }
        try site.check(H5Pset_type_conv_cb(transfer, HDF5Library.rejectOutOfRangeConversion, nil))
        try site.check(H5Dread(identifier, elementType.memoryType, memorySpace,
                               rows == nil ? shim_h5s_all() : fileSpace, transfer, base))
    }

    private func checkByteArrayType(_ type: hid_t, _ site: HDF5Site) throws {
        var isByteArray = false
        if H5Tget_class(type) == H5T_VLEN {
            let base = H5Tget_super(type)
            defer { H5Tclose(base) }
            isByteArray = HDF5ElementType(storedType: base) == .uint8
        }
        guard isByteArray else {
            throw site.typeMismatch(expected: "variable-length sequence of uint8", found: describeStoredType(type))
        }
    }

    private func readByteArrayElements(rows: Range<Int>, _ site: HDF5Site) throws -> [[UInt8]] {
        let storedType = try site.check(identifier: H5Dget_type(identifier))
        defer { H5Tclose(storedType) }
        try checkByteArrayType(storedType, site)
        let dimensions = try dimensions(site)
        guard dimensions.count == 1, rows.lowerBound >= 0, rows.upperBound <= dimensions[0] else {
            throw site.sizeMismatch(expected: "rows within shape \(dimensions)",
                                    found: "rows \(rows.lowerBound)..<\(rows.upperBound)")
        }
        guard !rows.isEmpty else { return [] }
        let fileSpace = try site.check(identifier: H5Dget_space(identifier))
        defer { H5Sclose(fileSpace) }
        try site.check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, [hsize_t(rows.lowerBound)], nil,
                                           [hsize_t(rows.count)], nil))
        let memorySpace = try site.check(identifier: H5Screate_simple(1, [hsize_t(rows.count)], nil))
        defer { H5Sclose(memorySpace) }
        let memoryType = try site.check(identifier: H5Tvlen_create(shim_native_uint8()))
        defer { H5Tclose(memoryType) }
        var descriptors = [hvl_t](repeating: hvl_t(len: 0, p: nil), count: rows.count)
        try site.check(H5Dread(identifier, memoryType, memorySpace, fileSpace, shim_h5p_default(), &descriptors))
        defer { H5Dvlen_reclaim(memoryType, memorySpace, shim_h5p_default(), &descriptors) }
        return descriptors.map { descriptor in
            guard let pointer = descriptor.p, descriptor.len > 0 else { return [] }
            return Array(UnsafeBufferPointer(start: pointer.assumingMemoryBound(to: UInt8.self), count: descriptor.len))
        }
    }
}
