import CKernels
import Foundation

/// The instruction set the hand-written compute kernels (`CKernels`: the direct convolution, the
/// narrow weight gradient's dot products and BatchNorm's rows) run on. One binary carries all three; the best the
/// CPU supports is taken unless `DISTTRAIN_KERNELS` names a lower one (for tests and comparisons).
/// The rest of the program is built for baseline x86-64, and OpenBLAS chooses its own kernels.
public enum KernelPath: String, CaseIterable, Sendable {
    /// Four-float vectors of baseline x86-64 (SSE2), separate multiply and add.
    case portable
    /// Eight-float AVX2 vectors with fused multiply-add.
    case avx2
    /// Sixteen-float AVX-512F vectors with fused multiply-add.
    case avx512

    /// The environment variable that forces a path.
    public static let environmentVariable = "DISTTRAIN_KERNELS"

    var cPath: DisttrainKernelPath {
        switch self {
        case .portable: DisttrainKernelPathPortable
        case .avx2: DisttrainKernelPathAVX2
        case .avx512: DisttrainKernelPathAVX512
        }
    }

    /// Whether this CPU and operating system run the path (from CPUID).
    public var isSupported: Bool { disttrain_cpu_supports(cPath) != 0 }

    /// The paths this machine runs, portable first.
    public static var supported: [KernelPath] { allCases.filter(\.isSupported) }

    /// `value` if it names a path this CPU runs, the best supported path when it is nil or empty.
    public static func choose(environmentValue value: String?) throws(KernelPathError) -> KernelPath {
        guard let value, !value.isEmpty else { return supported.last ?? .portable }
        guard let path = KernelPath(rawValue: value) else { throw .unknown(value) }
        guard path.isSupported else { throw .unsupported(path, supported: supported) }
        return path
    }

    /// The process's path, decided once at first use from the CPU and `DISTTRAIN_KERNELS`.
    /// Programs check the variable first with `choose` to refuse a bad value in one line; reaching
    /// this with one stops the process with the same line.
    public static let selected: KernelPath = {
        do {
            return try choose(environmentValue: ProcessInfo.processInfo.environment[environmentVariable])
        } catch {
            fatalError("\(error)")
        }
    }()
}

/// A `DISTTRAIN_KERNELS` value that cannot be used.
public enum KernelPathError: Error, CustomStringConvertible, Equatable {
    case unknown(String)
    case unsupported(KernelPath, supported: [KernelPath])

    public var description: String {
        switch self {
        case let .unknown(value):
            "\(KernelPath.environmentVariable)=\(value): expected one of "
                + KernelPath.allCases.map(\.rawValue).joined(separator: ", ")
        case let .unsupported(path, supported):
            "\(KernelPath.environmentVariable)=\(path.rawValue): this CPU lacks the instructions; it runs "
                + supported.map(\.rawValue).joined(separator: ", ")
        }
    }
}

/// The kernels of one `KernelPath`, looked up once: a value the network keeps and passes down to
/// `Convolution`, so a test can run the same network on two paths in one process.
public struct ComputeKernels: Sendable {
    public let path: KernelPath
    let correlate: DisttrainCorrelate
    let dotProducts3x3: DisttrainDotProducts3x3
    /// BatchNorm's row kernels (bit-identical on every path).
    let rowSum: DisttrainRowSum
    let rowSquaredDeviations: DisttrainRowSquaredDeviations
    let rowShiftedMoments: DisttrainRowShiftedMoments
    let rowAffine: DisttrainRowAffine
    let rowGradientSums: DisttrainRowGradientSums
    let rowInputGradient: DisttrainRowInputGradient

    /// The kernels of `path`, which this CPU must support.
    public init(_ path: KernelPath) {
        precondition(path.isSupported, KernelPathError.unsupported(path, supported: KernelPath.supported).description)
        let table = disttrain_kernel_table(path.cPath)
        self.path = path
        correlate = table.correlate
        dotProducts3x3 = table.dotProducts3x3
        rowSum = table.rowSum
        rowSquaredDeviations = table.rowSquaredDeviations
        rowShiftedMoments = table.rowShiftedMoments
        rowAffine = table.rowAffine
        rowGradientSums = table.rowGradientSums
        rowInputGradient = table.rowInputGradient
    }

    /// The kernels of `KernelPath.selected`.
    public static let selected = ComputeKernels(.selected)
}
