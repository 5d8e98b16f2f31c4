import CHDF5

/// The numeric element types this store reads and writes, named as NumPy names them.
public enum HDF5ElementType: String, CaseIterable, Sendable {
    case float32, float64, int32, int64, uint8

    var isFloatingPoint: Bool { self == .float32 || self == .float64 }

    /// The in-memory type HDF5 converts to and from.
    var memoryType: hid_t {
        switch self {
        case .float32: return shim_native_float()
        case .float64: return shim_native_double()
        case .int32: return shim_native_int32()
        case .int64: return shim_native_int64()
        case .uint8: return shim_native_uint8()
        }
    }

    /// The type written to files: little-endian IEEE / two's complement, what h5py writes on x86.
    var fileType: hid_t {
        switch self {
        case .float32: return shim_std_f32le()
        case .float64: return shim_std_f64le()
        case .int32: return shim_std_i32le()
        case .int64: return shim_std_i64le()
        case .uint8: return shim_std_u8le()
        }
    }

    /// The element type of a stored HDF5 datatype, or nil when it is none of the five.
    init?(storedType type: hid_t) {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT where size == 4: self = .float32
        case H5T_FLOAT where size == 8: self = .float64
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            switch (size, signed) {
            case (4, true): self = .int32
            case (8, true): self = .int64
            case (1, false): self = .uint8
            default: return nil
            }
        default: return nil
        }
    }
}

/// A Swift type that can be an element of an HDF5 dataset or attribute.
///
/// `Int` is stored as int64 (it is 64 bits wide on every platform this package builds for).
public protocol HDF5Element {
    static var hdf5ElementType: HDF5ElementType { get }
}

extension Float: HDF5Element { public static var hdf5ElementType: HDF5ElementType { .float32 } }
extension Double: HDF5Element { public static var hdf5ElementType: HDF5ElementType { .float64 } }
extension Int32: HDF5Element { public static var hdf5ElementType: HDF5ElementType { .int32 } }
extension Int64: HDF5Element { public static var hdf5ElementType: HDF5ElementType { .int64 } }
extension UInt8: HDF5Element { public static var hdf5ElementType: HDF5ElementType { .uint8 } }
extension Int: HDF5Element { public static var hdf5ElementType: HDF5ElementType { .int64 } }

/// A readable name for a stored HDF5 datatype, for error messages.
func describeStoredType(_ type: hid_t) -> String {
    if let elementType = HDF5ElementType(storedType: type) { return elementType.rawValue }
    let size = H5Tget_size(type)
    switch H5Tget_class(type) {
    case H5T_INTEGER: return "\(H5Tget_sign(type) == H5T_SGN_2 ? "int" : "uint")\(size * 8)"
    case H5T_FLOAT: return "float\(size * 8)"
    case H5T_STRING: return H5Tis_variable_str(type) > 0 ? "variable-length string" : "fixed-length string"
    case H5T_VLEN:
        let base = H5Tget_super(type)
        defer { H5Tclose(base) }
        return "variable-length sequence of \(describeStoredType(base))"
    case H5T_COMPOUND: return "compound"
    case H5T_ENUM: return "enum"
    default: return "datatype class \(H5Tget_class(type).rawValue)"
    }
}

/// Whether HDF5 may convert stored elements of `stored` type to memory elements of `requested`
/// type: floating point to floating point, integer to integer (range-checked at read time).
func canConvert(storedType type: hid_t, to requested: HDF5ElementType) -> Bool {
    switch H5Tget_class(type) {
    case H5T_FLOAT: return requested.isFloatingPoint
    case H5T_INTEGER: return !requested.isFloatingPoint
    default: return false
    }
}
