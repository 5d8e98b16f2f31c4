/// A counter-based random stream: SplitMix64 (Steele, Lea, Flood 2014) started from a hash of
/// (seed, purpose, epoch, index).
///
/// Every sample's augmentation draws from its own stream keyed by (seed, epoch, sample index),
/// so the crops do not depend on the number of ranks, the worker that decodes the sample, or
/// whether the run was resumed mid-epoch.
public struct SampleRandom {
    /// What a stream is for, so that streams keyed by the same numbers stay independent.
    public enum Purpose: UInt64, Sendable {
        case validationHoldout = 1
        case epochPermutation = 2
        case augmentation = 3
    }

    private var state: UInt64

    public init(seed: UInt64, purpose: Purpose, epoch: Int = 0, index: Int = 0) {
        var key = Self.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        key = Self.mix(key ^ purpose.rawValue)
        key = Self.mix(key ^ UInt64(bitPattern: Int64(epoch)))
        key = Self.mix(key ^ UInt64(bitPattern: Int64(index)))
        state = key
    }

    /// SplitMix64's output function (a bijective 64-bit finaliser).
    @inline(__always) static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) mutating func nextUInt64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always) mutating func nextDouble() -> Double {
        Double(nextUInt64() >> 11) * 0x1.0p-53
    }

    /// Uniform in 0..<bound (Lemire's multiply-shift with rejection, so unbiased).
    @inline(__always) mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0)
        let range = UInt64(bound)
        let threshold = (0 &- range) % range
        while true {
            let product = nextUInt64().multipliedFullWidth(by: range)
            if product.low >= threshold { return Int(product.high) }
        }
    }

    /// Uniform in the closed range lower...upper.
    @inline(__always) mutating func nextInt(in lower: Int, _ upper: Int) -> Int {
        lower + nextInt(below: upper - lower + 1)
    }

    /// A uniformly random permutation of 0..<count (Fisher-Yates).
    mutating func permutation(_ count: Int) -> [Int] {
        var values = Array(0..<count)
        if count < 2 { return values }
        for position in stride(from: count - 1, to: 0, by: -1) {
            values.swapAt(position, nextInt(below: position + 1))
        }
        return values
    }
}
