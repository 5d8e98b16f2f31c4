import Foundation

/// The architecture table `disttrain info` prints, computed from the configuration alone: per
/// block its layers, transitions, scales and channels; per exit the cumulative multiply-adds and
/// parameters (the reference counter's convention, see `CostCounter`).
public struct ArchitectureSummary: CustomStringConvertible, Sendable {
    public let architecture: MSDNetArchitecture
    public let exitCosts: [ExitCost]

    public init(_ configuration: MSDNetConfiguration) throws {
        architecture = try MSDNetArchitecture(configuration)
        exitCosts = CostCounter.exitCosts(architecture)
    }

    public var description: String {
        let c = architecture.configuration
        var lines: [String] = []
        lines.append("MSDNet: \(c.stem.rawValue) stem, \(c.inputChannels) input channel(s), \(c.inputSize)x\(c.inputSize), \(c.classes) classes")
        lines.append("\(c.nBlocks) blocks (\(c.stepmode.rawValue), step \(c.step), base \(c.base)), \(c.scales) scales "
            + "\(architecture.scaleSizes.map { "\($0)x\($0)" }.joined(separator: " / ")), growth \(c.growthRate), "
            + "prune \(c.prune.rawValue), reduction \(c.reduction), bottleneck \(c.bottleneck)")
        func column(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }
        lines.append(column("exit", 6) + column("layers", 8) + column("transitions", 13) + column("channels per scale", 26)
            + column("MADDs (cumulative)", 22) + "parameters (cumulative)")
        for (index, block) in architecture.blocks.enumerated() {
            let channels = block.scaleChannels.map { $0.map(String.init) ?? "-" }.joined(separator: " / ")
            let cost = exitCosts[index]
            lines.append(column("\(index)", 6) + column("\(block.denseLayerCount)", 8) + column("\(block.transitionCount)", 13)
                + column(channels, 26)
                + column(String(format: "%.2fM (%d)", Double(cost.multiplyAdds) / 1e6, cost.multiplyAdds), 22)
                + String(format: "%.3fM (%d)", Double(cost.parameters) / 1e6, cost.parameters))
        }
        lines.append("parameter tensors: \(architecture.parameterTensors.count), BatchNorm layers: \(architecture.batchNormLayers.count)")
        return lines.joined(separator: "\n")
    }
}

