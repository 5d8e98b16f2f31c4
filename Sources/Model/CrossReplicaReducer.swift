/// Sums small per-channel statistics across data-parallel replicas (ranks).
///
/// Synchronised batch normalisation needs the batch statistics of the global batch, not of one
/// rank's slice. The Model module never imports MPI, so DistTrain's communicator conforms to this
/// protocol and is handed to the kernels as a value.
public protocol CrossReplicaReducer: AnyObject {
    /// The number of replicas taking part in every reduction.
    var replicaCount: Int { get }
    /// Replaces every element of `values` by its sum over all replicas (an all-reduce with sum).
    /// Every replica calls it with the same count, in the same order.
    func sumInPlace(_ values: UnsafeMutableBufferPointer<Float>)
}
