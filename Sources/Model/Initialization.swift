import Foundation

/// A deterministic 64-bit generator (SplitMix64, Steele, Lea and Flood 2014): the same seed gives
/// the same weights on every rank and every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * nextUnit()
    }

    /// Standard normal by the Box-Muller transform (one of the pair is used, so the sequence does
    /// not depend on whether a tensor's element count is even).
    public mutating func normal() -> Double {
        let u1 = 1.0 - nextUnit()
        let u2 = nextUnit()
        return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
    }
}

/// The reference initialisation (MSDNet `_init_weights` and PyTorch's layer defaults).
public enum Initialization {
    /// `Conv2d.weight ~ N(0, sqrt(2 / (k * k * out)))` (He et al., fan-out).
    public static func convolution(_ weight: UnsafeMutablePointer<Float>, shape: [Int], using generator: inout SeededGenerator) {
        let (out, kernelHeight, kernelWidth) = (shape[0], shape[2], shape[3])
        let deviation = (2.0 / Double(kernelHeight * kernelWidth * out)).squareRoot()
        for index in 0..<shape.reduce(1, *) { weight[index] = Float(deviation * generator.normal()) }
    }

    /// PyTorch's default `Linear`/`Conv2d` weight and bias: `U(-1/sqrt(fanIn), 1/sqrt(fanIn))`
    /// (`kaiming_uniform_(a=sqrt(5))` reduces to this bound).
    public static func defaultUniform(_ values: UnsafeMutablePointer<Float>, count: Int, fanIn: Int, using generator: inout SeededGenerator) {
        let bound = 1.0 / Double(fanIn).squareRoot()
        for index in 0..<count { values[index] = Float(generator.uniform(-bound, bound)) }
    }

    /// BatchNorm affine: weight 1, bias 0.
    public static func batchNorm(weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>, channels: Int) {
        weight.update(repeating: 1, count: channels)
        bias.update(repeating: 0, count: channels)
    }

    /// Initialises every MSDNet parameter in registration order: convolutions N(0, sqrt(2/(k k out))),
    /// the ImageNet stem's convolution bias PyTorch-default uniform (the reference leaves it),
    /// BatchNorm 1/0, classifier linear weights PyTorch-default uniform and biases 0.
    public static func msdnet(_ architecture: MSDNetArchitecture, parameters: ParameterArena, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for unit in architecture.unitsInRegistrationOrder {
            convolution(parameters.values(of: unit.convolutionName + ".weight"), shape: unit.weightShape, using: &generator)
            if unit.hasBias {
                defaultUniform(parameters.values(of: unit.convolutionName + ".bias"), count: unit.outputChannels,
                               fanIn: unit.inputChannels * unit.kernelSize * unit.kernelSize, using: &generator)
            }
            batchNorm(weight: parameters.values(of: unit.batchNormName + ".weight"),
                      bias: parameters.values(of: unit.batchNormName + ".bias"), channels: unit.outputChannels)
        }
        for block in architecture.blocks {
            let head = block.classifier
            defaultUniform(parameters.values(of: head.linearName + ".weight"), count: head.classes * head.featureWidth,
                           fanIn: head.featureWidth, using: &generator)
            parameters.values(of: head.linearName + ".bias").update(repeating: 0, count: head.classes)
        }
    }
}
