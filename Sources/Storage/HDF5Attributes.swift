import CHDF5

/// Attributes: small named values attached to a group (the root group's are h5py's `file.attrs`)
/// or a dataset. Writing an attribute that exists replaces it.
extension HDF5Object {

    /// The names of the object's attributes in byte-wise name order.
    public func attributeNames() throws -> [String] {
        try perform("list attributes of") { site in
            final class Names { var values: [String] = [] }
            let names = Names()
            let collect: H5A_operator2_t = { _, name, _, context in
                guard let name, let context else { return -1 }
                Unmanaged<Names>.fromOpaque(context).takeUnretainedValue().values.append(String(cString: name))
                return 0
            }
            try site.check(H5Aiterate2(identifier, H5_INDEX_NAME, H5_ITER_INC, nil, collect,
                                       Unmanaged.passUnretained(names).toOpaque()))
            return names.values
        }
    }

    /// Whether the object has an attribute called `name`.
    public func hasAttribute(_ name: String) throws -> Bool {
        try perform("look up attribute '\(name)' of") { site in
            try site.check(truth: H5Aexists(identifier, name))
        }
    }

    /// Writes a UTF-8 string attribute, stored variable-length as h5py stores Python `str`.
    public func writeAttribute(_ name: String, _ value: String) throws {
        try perform("write attribute '\(name)' of") { site in
            let type = try variableLengthStringType(site)
            defer { H5Tclose(type) }
            let space = try site.check(identifier: H5Screate(H5S_SCALAR))
            defer { H5Sclose(space) }
            let attribute = try createAttribute(name, type: type, space: space, site)
            defer { H5Aclose(attribute) }
            try value.withCString { characters in
                var pointer: UnsafePointer<CChar>? = characters
                try site.check(H5Awrite(attribute, type, &pointer))
            }
        }
    }

    /// Writes a scalar numeric attribute.
    public func writeAttribute<Element: HDF5Element>(_ name: String, _ value: Element) throws {
        try writeNumericAttribute(name, values: [value], shape: [])
    }

    /// Writes a one-dimensional numeric attribute.
    public func writeAttribute<Element: HDF5Element>(_ name: String, _ values: [Element]) throws {
        try writeNumericAttribute(name, values: values, shape: [values.count])
    }

    /// Reads a string attribute, stored variable-length (h5py's `str`) or fixed-length
    /// (NumPy `bytes`, null- or space-padded).
    public func readStringAttribute(_ name: String) throws -> String {
        try perform("read attribute '\(name)' of") { site in
            let attribute = try openAttribute(name, site)
            defer { H5Aclose(attribute) }
            let type = try site.check(identifier: H5Aget_type(attribute))
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == H5T_STRING else {
                throw site.typeMismatch(expected: "a string", found: describeStoredType(type))
            }
            let space = try site.check(identifier: H5Aget_space(attribute))
            defer { H5Sclose(space) }
            guard H5Sget_simple_extent_npoints(space) == 1 else {
                throw site.sizeMismatch(expected: "one string", found: "\(H5Sget_simple_extent_npoints(space)) strings")
            }
            if try site.check(truth: H5Tis_variable_str(type)) {
                let memoryType = try variableLengthStringType(site)
                defer { H5Tclose(memoryType) }
                try site.check(H5Tset_cset(memoryType, H5Tget_cset(type)))
                var pointer: UnsafeMutablePointer<CChar>?
                try site.check(H5Aread(attribute, memoryType, &pointer))
                defer { H5free_memory(pointer) }
                return pointer.map { String(cString: $0) } ?? ""
            }
            let size = H5Tget_size(type)
            var bytes = [UInt8](repeating: 0, count: size)
            try site.check(H5Aread(attribute, type, &bytes))
            let text = bytes.prefix { $0 != 0 }
            let padding = H5Tget_strpad(type) == H5T_STR_SPACEPAD ? UInt8(ascii: " ") : 0
            return String(decoding: text.reversed().drop { $0 == padding }.reversed(), as: UTF8.self)
        }
    }

    /// Reads a numeric attribute that holds one element.
    public func readAttribute<Element: HDF5Element>(_ name: String, as type: Element.Type = Element.self) throws -> Element {
        let values = try readArrayAttribute(name, as: type)
        guard values.count == 1 else {
            throw HDF5Error.sizeMismatch(operation: "read attribute '\(name)' of", file: file.path, object: path,
                                         expected: "one element", found: "\(values.count) elements")
        }
        return values[0]
    }

    /// Reads a numeric attribute of any shape as its elements in row-major order.
    public func readArrayAttribute<Element: HDF5Element>(_ name: String,
                                                         as type: Element.Type = Element.self) throws -> [Element] {
        try perform("read attribute '\(name)' of") { site in
            let attribute = try openAttribute(name, site)
            defer { H5Aclose(attribute) }
            let storedType = try site.check(identifier: H5Aget_type(attribute))
            defer { H5Tclose(storedType) }
            let elementType = Element.hdf5ElementType
            guard canConvert(storedType: storedType, to: elementType) else {
                throw site.typeMismatch(expected: "data readable as \(elementType.rawValue)",
                                        found: describeStoredType(storedType))
            }
            let space = try site.check(identifier: H5Aget_space(attribute))
            defer { H5Sclose(space) }
            let count = H5Sget_simple_extent_npoints(space)
            guard count >= 0 else { throw site.failure() }
            guard count > 0 else { return [] }
            // H5Aread takes no transfer property list, so it would clip out-of-range values.
            // Read the stored bytes unconverted, then convert under the range-checking callback.
            // The conversion happens in place, so the buffer holds the wider of the two layouts.
            let stride = MemoryLayout<Element>.stride
            let capacity = (Int(count) * max(H5Tget_size(storedType), stride) + stride - 1) / stride
            let transfer = try site.check(identifier: H5Pcreate(shim_h5p_dataset_xfer()))
            defer { H5Pclose(transfer) }
            try site.check(H5Pset_type_conv_cb(transfer, HDF5Library.rejectOutOfRangeConversion, nil))
            return try [Element](unsafeUninitializedCapacity: capacity) { buffer, initialized in
                try site.check(H5Aread(attribute, storedType, buffer.baseAddress))
                try site.check(H5Tconvert(storedType, elementType.memoryType, Int(count), buffer.baseAddress, nil,
                                          transfer))
                initialized = Int(count)
            }
        }
    }

    // MARK: - Helpers

    private func writeNumericAttribute<Element: HDF5Element>(_ name: String, values: [Element], shape: [Int]) throws {
        try perform("write attribute '\(name)' of") { site in
            let elementType = Element.hdf5ElementType
            let space = try site.check(identifier: shape.isEmpty
                ? H5Screate(H5S_SCALAR)
                : H5Screate_simple(Int32(shape.count), shape.map { hsize_t($0) }, nil))
            defer { H5Sclose(space) }
            let attribute = try createAttribute(name, type: elementType.fileType, space: space, site)
            defer { H5Aclose(attribute) }
            try values.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress {
                    try site.check(H5Awrite(attribute, elementType.memoryType, base))
                }
            }
        }
    }

    /// Creates attribute `name`, deleting an existing one of that name first.
    private func createAttribute(_ name: String, type: hid_t, space: hid_t, _ site: HDF5Site) throws -> hid_t {
        if try site.check(truth: H5Aexists(identifier, name)) {
            try site.check(H5Adelete(identifier, name))
        }
        return try site.check(identifier: H5Acreate2(identifier, name, type, space, shim_h5p_default(), shim_h5p_default()))
    }

    private func openAttribute(_ name: String, _ site: HDF5Site) throws -> hid_t {
        guard try site.check(truth: H5Aexists(identifier, name)) else {
            // The operation names the attribute already ("read attribute 'phase' of").
            throw site.notFound()
        }
        return try site.check(identifier: H5Aopen(identifier, name, shim_h5p_default()))
    }

    private func variableLengthStringType(_ site: HDF5Site) throws -> hid_t {
        let type = try site.check(identifier: H5Tcopy(shim_c_s1()))
        guard H5Tset_size(type, shim_variable()) >= 0, H5Tset_cset(type, H5T_CSET_UTF8) >= 0 else {
            H5Tclose(type)
            throw site.failure()
        }
        return type
    }
}
