/// Multiply-adds and parameters up to each exit, counted the way the reference counter
/// (MSDNet-PyTorch `op_counter.py`) counts them for one image:
///
/// - convolution: `in * out * k * k * outH * outW` (bias not counted as operations);
/// - ReLU: elements of its input; BatchNorm: nothing;
/// - max/average pool: `channels * outH * outW * k * k`;
/// - linear: `in * out + out`.
///
/// The figure for exit i is cumulative: everything evaluated before that exit's linear layer,
/// which includes the classifiers of the earlier exits.
public struct ExitCost: Equatable, Sendable {
    public var multiplyAdds: Int
    public var parameters: Int
}

public enum CostCounter {
    /// Cumulative cost of each exit, in exit order.
    public static func exitCosts(_ architecture: MSDNetArchitecture) -> [ExitCost] {
        var multiplyAdds = 0
        var parameters = 0
        var costs: [ExitCost] = []

        func count(_ unit: ConvolutionUnit) {
            let outputSize = unit.outputSize
            multiplyAdds += unit.inputChannels * unit.outputChannels * unit.kernelSize * unit.kernelSize * outputSize * outputSize
            multiplyAdds += unit.outputChannels * outputSize * outputSize
            parameters += unit.inputChannels * unit.outputChannels * unit.kernelSize * unit.kernelSize
            parameters += (unit.hasBias ? unit.outputChannels : 0) + 2 * unit.outputChannels
        }

        for block in architecture.blocks {
            for path in block.paths {
                path.units.forEach(count)
                if path.maxPoolAfter, let unit = path.units.first {
                    let pooled = (unit.outputSize + 2 - 3) / 2 + 1
                    multiplyAdds += unit.outputChannels * pooled * pooled * 9
                }
            }
            let head = block.classifier
            head.units.forEach(count)
            let pooled = head.poolInputSize / 2
            multiplyAdds += head.featureWidth * pooled * pooled * 4
            let linear = head.featureWidth * head.classes + head.classes
            multiplyAdds += linear
            parameters += linear
            costs.append(ExitCost(multiplyAdds: multiplyAdds, parameters: parameters))
        }
        return costs
    }
}
