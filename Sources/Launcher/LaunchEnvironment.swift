import Foundation

/// What the process can learn about its launch before MPI starts.
enum LaunchEnvironment {
    /// Ranks in the world as the launcher announced them: Open MPI's `mpirun` sets
    /// `OMPI_COMM_WORLD_SIZE`, PMI-based launchers (MPICH, Slurm's `srun --mpi=pmi2`) set
    /// `PMI_SIZE`; without a launcher the process is a world of one.
    static func worldSize(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
            if let value = environment[key].flatMap(Int.init), value >= 1 { return value }
        }
        return 1
    }
}
