import CMPIShim

/// The element types collective operations carry.
public enum CommunicatorElementType: Sendable {
    case float32, float64, int32, int64, uint8

    var datatype: MPI_Datatype {
        switch self {
        case .float32: return shim_float()
        case .float64: return shim_double()
        case .int32: return shim_int32()
        case .int64: return shim_int64()
        case .uint8: return shim_uint8()
        }
    }
}

/// A Swift type that MPI can send, receive and reduce element-wise.
///
/// `Int` travels as int64 (it is 64 bits wide on every platform this package builds for).
public protocol CommunicatorElement {
    static var communicatorElementType: CommunicatorElementType { get }
}

extension Float: CommunicatorElement { public static var communicatorElementType: CommunicatorElementType { .float32 } }
extension Double: CommunicatorElement { public static var communicatorElementType: CommunicatorElementType { .float64 } }
extension Int32: CommunicatorElement { public static var communicatorElementType: CommunicatorElementType { .int32 } }
extension Int64: CommunicatorElement { public static var communicatorElementType: CommunicatorElementType { .int64 } }
extension UInt8: CommunicatorElement { public static var communicatorElementType: CommunicatorElementType { .uint8 } }
extension Int: CommunicatorElement { public static var communicatorElementType: CommunicatorElementType { .int64 } }
