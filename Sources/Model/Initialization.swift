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

/// The initial weights of the networks, drawn from a `SeededGenerator`.
public enum Initialization {
    /// `Conv2d.weight ~ N(0, sqrt(2 / (k * k * out)))` (He et al., fan-out), as the reference's
    /// `_init_weights` intends.
    public static func heNormalConvolution(_ weight: UnsafeMutablePointer<Float>, shape: [Int], using generator: inout SeededGenerator) {
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

    /// Initialises every MSDNet parameter as `architecture.configuration.initialization` says,
    /// drawing from one `SeededGenerator(seed:)` in this order:
    ///
    /// 1. for each convolution unit in registration order: its weight `[out, in, k, k]`, then (the
    ///    ImageNet stem only) its bias `[out]`; BatchNorm weight 1 and bias 0 draw nothing;
    /// 2. for each exit's classifier: its linear weight `[classes, width]`, then (`.reference`
    ///    only) its linear bias `[classes]`.
    ///
    /// With `fanIn = in * k * k` (convolution) or `width` (linear) and `b = 1 / sqrt(fanIn)`:
    ///
    /// - `.reference` (PyTorch's defaults, what the authors' code trains from because its
    ///   `_init_weights` never reaches a leaf layer): convolution weight and bias `U(-b, b)`
    ///   (`kaiming_uniform_(a=sqrt(5))`, variance `b^2 / 3`), linear weight and bias `U(-b, b)`;
    /// - `.heNormal` (what `_init_weights` intends): convolution weight `N(0, sqrt(2 / (k * k * out)))`,
    ///   the stem's convolution bias `U(-b, b)` (`_init_weights` leaves it), linear weight `U(-b, b)`
    ///   and linear bias 0.
    public static func msdnet(_ architecture: MSDNetArchitecture, parameters: ParameterArena, seed: UInt64) {
        let scheme = architecture.configuration.initialization
        var generator = SeededGenerator(seed: seed)
        for unit in architecture.unitsInRegistrationOrder {
            let weight = parameters.values(of: unit.convolutionName + ".weight")
            let fanIn = unit.inputChannels * unit.kernelSize * unit.kernelSize
            switch scheme {
            case .reference:
                defaultUniform(weight, count: unit.weightShape.reduce(1, *), fanIn: fanIn, using: &generator)
            case .heNormal:
                heNormalConvolution(weight, shape: unit.weightShape, using: &generator)
            }
            if unit.hasBias {
                defaultUniform(parameters.values(of: unit.convolutionName + ".bias"), count: unit.outputChannels,
                               fanIn: fanIn, using: &generator)
            }
            batchNorm(weight: parameters.values(of: unit.batchNormName + ".weight"),
                      bias: parameters.values(of: unit.batchNormName + ".bias"), channels: unit.outputChannels)
        }
        for block in architecture.blocks {
            let head = block.classifier
            defaultUniform(parameters.values(of: head.linearName + ".weight"), count: head.classes * head.featureWidth,
                           fanIn: head.featureWidth, using: &generator)
            let bias = parameters.values(of: head.linearName + ".bias")
            switch scheme {
            case .reference:
                defaultUniform(bias, count: head.classes, fanIn: head.featureWidth, using: &generator)
            case .heNormal:
                bias.update(repeating: 0, count: head.classes)
            }
        }
    }
}
