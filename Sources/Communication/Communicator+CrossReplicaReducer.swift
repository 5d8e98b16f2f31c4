import Foundation
import Model

/// Lets the Model module's synchronised batch normalisation sum its statistics across ranks.
extension Communicator: CrossReplicaReducer {
    public var replicaCount: Int { size }

    /// An all-reduce with sum. The protocol cannot throw; a failed collective leaves the other
    /// ranks waiting in it, so the whole job is aborted after printing the reason.
    public func sumInPlace(_ values: UnsafeMutableBufferPointer<Float>) {
        do {
            try allReduce(values, .sum)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            abort(code: 1)
        }
    }
}
