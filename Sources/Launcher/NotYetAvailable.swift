/// A command whose implementation belongs to an issue that has not landed yet. Thrown from
/// `run()`, it prints `Error: not yet available: <what> (issue N)` and exits with status 1, so
/// that no script mistakes it for success.
enum NotYetAvailable: Error, CustomStringConvertible {
    case training
    case information
    case evaluation
    case imagenetPreparation
    case benchmark
    case referenceCheck

    var description: String {
        switch self {
        case .training: return "not yet available: training (issue 6, the two-phase trainer)"
        case .information: return "not yet available: network information (issue 4, the MSDNet model)"
        case .evaluation: return "not yet available: budgeted evaluation (issue 7, evaluation)"
        case .imagenetPreparation: return "not yet available: ImageNet shard preparation (issue 5, data)"
        case .benchmark: return "not yet available: benchmark (issue 8, throughput)"
        case .referenceCheck: return "not yet available: reference check (issue 4, the MSDNet model)"
        }
    }
}
