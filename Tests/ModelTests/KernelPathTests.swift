import Foundation
@testable import Model
import XCTest

/// Every kernel path this CPU runs computes what the portable path computes: the dispatched
/// kernels forward and backward, and one whole training step. The paths differ only in rounding
/// (fused multiply-adds, the lane order of the dot products), so they agree to a relative 1e-5.
final class KernelPathTests: XCTestCase {
    static let tolerance: Float = 1e-5

    /// The non-portable paths of this machine; the test says which it could not check.
    func fasterPaths() -> [KernelPath] {
        let missing = KernelPath.allCases.filter { !$0.isSupported }
        if !missing.isEmpty { print("KernelPathTests: this CPU lacks \(missing.map(\.rawValue)); those paths are not checked") }
        return KernelPath.supported.filter { $0 != .portable }
    }

    func assertClose(_ actual: [Float], _ expected: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
        let scale = max(1, expected.map(abs).max() ?? 0)
        let difference = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(difference, Self.tolerance * scale, "\(what): largest difference \(difference) of values up to \(scale)",
                                 file: file, line: line)
    }

    struct ConvolutionResults {
        var output: [Float]
        var inputGradient: [Float]
        var weightGradient: [Float]
    }

    func convolution(_ g: ConvolutionGeometry, _ kernels: ComputeKernels, seed: UInt64) -> ConvolutionResults {
        var random = KernelTestRandom(seed: seed)
        let input = random.array(g.inputCount), weight = random.array(g.weightCount)
        let bias = random.array(g.outputChannels), outputGradient = random.array(g.outputCount)
        var workspace = [Float](repeating: .nan, count: max(1, g.workspaceCount))
        var output = [Float](repeating: .nan, count: g.outputCount)
        Convolution.forward(input: input, weight: weight, bias: bias, output: &output, geometry: g, workspace: &workspace,
                            kernels: kernels)
        var inputGradient = [Float](repeating: 0.5, count: g.inputCount), weightGradient = [Float](repeating: 0.5, count: g.weightCount)
        Convolution.backward(outputGradient: outputGradient, input: input, weight: weight, inputGradient: &inputGradient,
                             weightGradient: &weightGradient, biasGradient: nil, geometry: g, workspace: &workspace, kernels: kernels)
        return ConvolutionResults(output: output, inputGradient: inputGradient, weightGradient: weightGradient)
    }

    /// Geometries of both dispatched kernels: direct convolutions (one and two blocks of six
    /// channels, planes shorter and longer than one step of every path, several images per
    /// weight-gradient chunk) and narrow weight gradients (pointwise, im2col with stride 2, more
    /// positions than one chunk).
    static let geometries = [
        ConvolutionGeometry(inputChannels: 5, outputChannels: 13, kernelSize: 3, stride: 1, padding: 1, batch: 3, inputHeight: 9, inputWidth: 7),
        ConvolutionGeometry(inputChannels: 7, outputChannels: 4, kernelSize: 3, stride: 1, padding: 1, batch: 2, inputHeight: 4, inputWidth: 4),
        ConvolutionGeometry(inputChannels: 3, outputChannels: 6, kernelSize: 3, stride: 1, padding: 0, batch: 2, inputHeight: 30, inputWidth: 29),
        ConvolutionGeometry(inputChannels: 11, outputChannels: 7, kernelSize: 1, batch: 3, inputHeight: 31, inputWidth: 33),
        ConvolutionGeometry(inputChannels: 4, outputChannels: 5, kernelSize: 3, stride: 2, padding: 1, batch: 2, inputHeight: 13, inputWidth: 11),
        ConvolutionGeometry(inputChannels: 9, outputChannels: 40, kernelSize: 3, stride: 2, padding: 1, batch: 3, inputHeight: 29, inputWidth: 27),
        ConvolutionGeometry(inputChannels: 3, outputChannels: 32, kernelSize: 7, stride: 2, padding: 3, batch: 2, inputHeight: 36, inputWidth: 36),
    ]

    func testEveryPathComputesTheConvolutionsOfThePortablePath() {
        let paths = fasterPaths()
        for (index, g) in Self.geometries.enumerated() {
            let portable = convolution(g, ComputeKernels(.portable), seed: UInt64(index))
            for path in paths {
                let results = convolution(g, ComputeKernels(path), seed: UInt64(index))
                assertClose(results.output, portable.output, "\(path) forward \(g)")
                assertClose(results.inputGradient, portable.inputGradient, "\(path) input gradient \(g)")
                assertClose(results.weightGradient, portable.weightGradient, "\(path) weight gradient \(g)")
            }
        }
    }

    /// The portable path itself against a plain sum in Double, so that agreeing with it means something.
    func testPortableDirectConvolutionMatchesAPlainSum() {
        let g = Self.geometries[0]
        XCTAssertTrue(DirectConvolution.isApplicable(g))
        var random = KernelTestRandom(seed: 0)
        let input = random.array(g.inputCount), weight = random.array(g.weightCount), bias = random.array(g.outputChannels)
        let portable = convolution(g, ComputeKernels(.portable), seed: 0)
        var expected = [Float](repeating: 0, count: g.outputCount)
        let k = g.kernelSize, oh = g.outputHeight, ow = g.outputWidth
        for co in 0..<g.outputChannels {
            for n in 0..<g.batch {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var sum = Double(bias[co])
                        for ci in 0..<g.inputChannels {
                            for ky in 0..<k {
                                for kx in 0..<k {
                                    let y = oy - g.padding + ky, x = ox - g.padding + kx
                                    guard y >= 0, y < g.inputHeight, x >= 0, x < g.inputWidth else { continue }
                                    sum += Double(weight[((co * g.inputChannels + ci) * k + ky) * k + kx])
                                        * Double(input[((ci * g.batch + n) * g.inputHeight + y) * g.inputWidth + x])
                                }
                            }
                        }
                        expected[((co * g.batch + n) * oh + oy) * ow + ox] = Float(sum)
                    }
                }
            }
        }
        assertClose(portable.output, expected, "portable forward against a plain sum")
    }

    func testEveryPathTakesTheSameTrainingStepAsThePortablePath() throws {
        let configuration = MSDNetGradientTests.small
        let batch = MSDNetGradientTests.batch(configuration, count: 3, seed: 7)
        func step(_ path: KernelPath) throws -> (network: MSDNet, loss: Double) {
            let network = try MSDNet(configuration: configuration, gradientEquilibrium: true, maximumBatchSize: 3, seed: 5,
                                     kernels: ComputeKernels(path))
            XCTAssertEqual(network.kernelPath, path)
            network.parameters.zeroGradients()
            return (network, MSDNetGradientTests.step(network, batch).loss)
        }
        let portable = try step(.portable)
        let portableGradients = Array(UnsafeBufferPointer(start: portable.network.parameters.gradients, count: portable.network.parameters.count))
        for path in fasterPaths() {
            let result = try step(path)
            XCTAssertEqual(result.loss, portable.loss, accuracy: Double(Self.tolerance) * max(1, abs(portable.loss)), "\(path) loss")
            for view in portable.network.parameters.views {
                let expected = Array(portableGradients[view.offset..<(view.offset + view.count)])
                let actual = Array(UnsafeBufferPointer(start: result.network.parameters.gradients(of: view.name), count: view.count))
                assertClose(actual, expected, "\(path) gradient of \(view.name)")
            }
        }
    }

    func testAnUnknownOrMissingPathIsRefusedInOneLine() {
        XCTAssertEqual(try KernelPath.choose(environmentValue: nil), KernelPath.supported.last)
        XCTAssertEqual(try KernelPath.choose(environmentValue: "portable"), .portable)
        XCTAssertThrowsError(try KernelPath.choose(environmentValue: "avx")) { error in
            XCTAssertEqual("\(error)", "DISTTRAIN_KERNELS=avx: expected one of portable, avx2, avx512")
        }
        let missing = KernelPath.allCases.filter { !$0.isSupported }
        for path in missing {
            XCTAssertThrowsError(try KernelPath.choose(environmentValue: path.rawValue))
        }
        if missing.isEmpty { print("KernelPathTests: this CPU runs every path; the refusal of a missing one is not exercised") }
    }

    /// The AVX-512 copy really uses 512-bit registers and the portable copy no AVX at all (no
    /// VEX- or EVEX-encoded instruction, whose mnemonics start with "v").
    func testTheCompiledPathsUseTheirInstructionSets() throws {
        let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        func instructions(_ symbol: String) throws -> [String] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["objdump", "-d", "--no-show-raw-insn", "--disassemble=\(symbol)", binary]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw XCTSkip("objdump is not available: cannot inspect \(binary)") }
            return text.split(separator: "\n").compactMap { line in
                let fields = line.split(separator: "\t")
                return fields.count >= 2 && line.hasPrefix(" ") ? String(fields[1]) : nil
            }
        }
        for kernel in ["correlate", "dotProducts3x3"] {
            let portable = try instructions("portable_\(kernel)")
            XCTAssertFalse(portable.isEmpty, "portable_\(kernel) not found in \(binary)")
            XCTAssertEqual(portable.filter { $0.hasPrefix("v") || $0.contains("%ymm") || $0.contains("%zmm") }, [], "portable_\(kernel)")
            let avx512 = try instructions("avx512_\(kernel)")
            XCTAssertTrue(avx512.contains { $0.hasPrefix("vfmadd") && $0.contains("%zmm") }, "avx512_\(kernel) has no 512-bit FMA")
            let avx2 = try instructions("avx2_\(kernel)")
            XCTAssertTrue(avx2.contains { $0.hasPrefix("vfmadd") && $0.contains("%ymm") }, "avx2_\(kernel) has no 256-bit FMA")
            XCTAssertFalse(avx2.contains { $0.contains("%zmm") }, "avx2_\(kernel) uses 512-bit registers")
        }
    }
    /// BatchNorm's row kernels give bit-identical results on every path (the same Double lanes,
    /// nothing fused), and those results are the Double sums and Float expressions they stand for:
    /// rows shorter and longer than one vector step, a ReLU mask, a NaN through the ReLU.
    func testBatchNormRowKernelsAreIdenticalOnEveryPathAndRight() {
        var random = KernelTestRandom(seed: 12)
        for count in [1, 15, 16, 37, 1000] {
            let x = (0..<count).map { _ in random.uniform() * 3 + 0.5 }
            let dy = (0..<count).map { _ in random.uniform() }
            let scale: Float = 1.7, shift: Float = -0.8, mean: Float = 0.4, center = 0.4
            var expectedSquares = 0.0, expectedShiftedSum = 0.0, expectedShiftedSquares = 0.0
            var expectedGradient = 0.0, expectedCentered = 0.0
            for m in 0..<count {
                let d = Double(x[m]) - center, s = Double(x[m]) - Double(x[0])
                expectedSquares += d * d
                expectedShiftedSum += s
                expectedShiftedSquares += s * s
                let g = x[m] * scale + shift > 0 ? dy[m] : 0
                expectedGradient += Double(g)
                expectedCentered += Double(g) * d
            }
            let expectedSum = x.reduce(0.0) { $0 + Double($1) }
            var results: [KernelPath: [Double]] = [:]
            var rows: [KernelPath: [Float]] = [:]
            for path in KernelPath.supported {
                let kernels = ComputeKernels(path)
                var shiftedSum = 0.0, shiftedSquares = 0.0, gradientSum = 0.0, centeredSum = 0.0
                kernels.rowShiftedMoments(x, count, Double(x[0]), &shiftedSum, &shiftedSquares)
                kernels.rowGradientSums(dy, x, count, scale, shift, center, 1, &gradientSum, &centeredSum)
                results[path] = [kernels.rowSum(x, count), kernels.rowSquaredDeviations(x, count, center), shiftedSum, shiftedSquares,
                                 gradientSum, centeredSum]
                var affine = [Float](repeating: 0, count: count)
                kernels.rowAffine(x, &affine, count, scale, shift, 1)
                var inputGradient = [Float](repeating: 0.25, count: count)
                kernels.rowInputGradient(dy, x, &inputGradient, count, mean, scale, shift, 1, 0.1, 0.2)
                rows[path] = affine + inputGradient
            }
            let portable = results[.portable]!
            for (name, pair) in zip(["sum", "squared deviations", "shifted sum", "shifted squares", "gradient sum", "centered sum"],
                                    zip(portable, [expectedSum, expectedSquares, expectedShiftedSum, expectedShiftedSquares,
                                                   expectedGradient, expectedCentered])) {
                XCTAssertEqual(pair.0, pair.1, accuracy: 1e-12 * max(1, abs(pair.1)), "\(name), \(count) values")
            }
            let affine = x.map { value -> Float in
                let y = value * scale + shift
                return 0 >= y ? 0 : y
            }
            let inputGradient = (0..<count).map { m -> Float in
                let g: Float = x[m] * scale + shift > 0 ? dy[m] : 0
                return 0.25 + (g - 0.1 - (x[m] - mean) * 0.2) * scale
            }
            XCTAssertEqual(rows[.portable]!, affine + inputGradient, "\(count) values")
            for path in KernelPath.supported where path != .portable {
                XCTAssertEqual(results[path]!.map(\.bitPattern), portable.map(\.bitPattern), "\(path), \(count) values")
                XCTAssertEqual(rows[path]!.map(\.bitPattern), rows[.portable]!.map(\.bitPattern), "\(path), \(count) values")
            }
        }
        var nan: [Float] = [.nan, -1, 2]
        ComputeKernels(.portable).rowAffine(nan, &nan, 3, 1, 0, 1)
        XCTAssertTrue(nan[0].isNaN, "a NaN passes through the ReLU, as it does through max(_:_:)")
        XCTAssertEqual(Array(nan[1...]), [0, 2])
    }
}
