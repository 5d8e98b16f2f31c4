import Foundation

/// Wall time per operator kind, accumulated by `MSDNet` while a benchmark sets it.
public final class OperatorProfile {
    public private(set) var seconds: [String: Double] = [:]

    public init() {}

    @inline(__always)
    public func measure<T>(_ name: String, _ body: () -> T) -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        seconds[name, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return result
    }
}
