import CAllocationCounter

/// Heap allocations of this process, all threads together, counted by the `CAllocationCounter`
/// interposer that programs using this module link: a step that allocates nothing adds 0.
public enum AllocationCounter {
    /// Allocations since the process started.
    public static var total: Int { Int(disttrain_allocation_count()) }

    /// Allocations made (by any thread) while `body` runs.
    public static func allocations(during body: () throws -> Void) rethrows -> Int {
        let before = total
        try body()
        return total - before
    }
}
