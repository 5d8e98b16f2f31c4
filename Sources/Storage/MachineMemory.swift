import Foundation

/// The memory of this machine, as the kernel reports it.
public enum MachineMemory {
    /// Physical memory (`MemTotal` of /proc/meminfo, else `sysconf`), in bytes.
    public static func totalBytes() -> Int {
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
           let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") {
            return kilobytes * 1024
        }
        return sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))
    }

    /// The machine's memory shared evenly among the ranks on it (Open MPI's local size).
    public static func bytesPerRank() -> Int {
        let localRanks = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
        return totalBytes() / max(localRanks, 1)
    }
}
