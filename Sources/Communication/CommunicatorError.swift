/// A failed collective operation.
public enum CommunicatorError: Error, CustomStringConvertible {
    /// An MPI call returned `code`; `message` is MPI's own text for it (`MPI_Error_string`).
    case mpiCallFailed(operation: String, code: Int32, message: String)
    /// MPI was already finalised in this process; it cannot be started again.
    case finalized(operation: String)
    /// The root rank of a rooted collective is not a rank of the communicator.
    case invalidRoot(operation: String, root: Int, size: Int)
    /// More elements than one MPI call can address (MPI counts and displacements are 32-bit).
    case countTooLarge(operation: String, count: Int)
    /// The MPI library cannot give the thread support the trainer needs.
    case insufficientThreadSupport(required: String, provided: Int32)

    public var description: String {
        switch self {
        case let .mpiCallFailed(operation, code, message):
            return "MPI: \(operation) failed with error \(code): \(message)"
        case let .finalized(operation):
            return "MPI: cannot \(operation): MPI was already finalised in this process"
        case let .invalidRoot(operation, root, size):
            return "MPI: cannot \(operation): root rank \(root) is not in 0..<\(size)"
        case let .countTooLarge(operation, count):
            return "MPI: cannot \(operation): \(count) elements exceed the 32-bit count MPI can address"
        case let .insufficientThreadSupport(required, provided):
            return "MPI: the library provides thread level \(provided), the trainer needs \(required)"
        }
    }
}
