/// Told by a network's backward pass as its parameter gradients become final, so that
/// data-parallel training can start averaging the finished part across ranks while the rest is
/// still being computed (communication overlapped with the backward pass). The Model module never
/// imports MPI, so DistTrain conforms and the network is handed the observer as a value.
///
/// A gradient is final once no later backward step writes it. Gradient Equilibrium rescales
/// activation gradients between blocks, never parameter gradients, so it does not delay this.
public protocol GradientReadyObserver: AnyObject {
    /// Every gradient at offsets `offset..<count` of the trainable arena is final for the current
    /// backward pass. Called after every backward step, with an offset that never grows within a
    /// pass (repeats included: the observer also uses each call to progress its communication);
    /// the pass's last call has offset 0.
    func gradientsAreFinal(from offset: Int)
}

/// Where the final tail of a gradient arena starts after each step of a backward pass that runs
/// a fixed list of steps.
struct GradientReadiness {
    /// `boundaries[k]`: after the backward step k (in execution order), every gradient at an
    /// offset >= `boundaries[k]` is final. Offsets no step writes count as final from the start.
    let boundaries: [Int]

    /// `writes[k]` lists the arena ranges that backward step k (in execution order) writes.
    init(writes: [[Range<Int>]]) {
        var lastWrite: [Range<Int>: Int] = [:]
        for (step, ranges) in writes.enumerated() {
            for range in ranges where !range.isEmpty { lastWrite[range] = step }
        }
        // Walking from the end of the arena, a range is final once it and everything after it is.
        var finalAfter: [(range: Range<Int>, step: Int)] = []
        var latest = -1
        for (range, step) in lastWrite.sorted(by: { $0.key.lowerBound > $1.key.lowerBound }) {
            latest = max(latest, step)
            finalAfter.append((range, latest))
        }
        boundaries = writes.indices.map { step in
            finalAfter.first { $0.step > step }?.range.upperBound ?? 0
        }
    }
}

extension ExecutionPlan {
    /// The parameter gradients each step writes, for the backward pass (steps reversed).
    func backwardGradientWrites(gradientBase: UnsafeMutablePointer<Float>) -> [[Range<Int>]] {
        func range(_ gradient: UnsafeMutablePointer<Float>?, _ count: Int) -> Range<Int> {
            guard let gradient else { return 0..<0 }
            let start = gradient - gradientBase
            return start..<(start + count)
        }
        return steps.reversed().map { step in
            switch step {
            case let .unit(index):
                let unit = units[index], geometry = unit.geometry
                let channels = geometry.outputChannels
                var ranges = [range(unit.batchNormWeightGradient, channels), range(unit.batchNormBiasGradient, channels),
                              range(unit.biasGradient, channels)]
                if unit.group == nil {
                    ranges.append(range(unit.weightGradient, channels * geometry.inputChannels * geometry.kernelSize * geometry.kernelSize))
                }
                return ranges
            case let .pointwiseGroup(index):
                let geometry = groups[index].geometry
                return [range(groups[index].weightGradient, geometry.outputChannels * geometry.inputChannels)]
            case let .classifierOutput(exit, _):
                let linear = linears[exit]
                return [range(linear.weightGradient, linear.inputFeatures * linear.outputFeatures),
                        range(linear.biasGradient, linear.outputFeatures)]
            case .maxPool, .gradientRescale:
                return []
            }
        }
    }
}

extension MSDNetArchitecture {
    /// `parameterTensors` with each exit's classifier moved right after its block: the order
    /// the forward pass uses them in. The backward pass then finishes the arena from its end
    /// backwards, so the gradient all-reduce can start on the tail while earlier blocks are
    /// still being backpropagated (tensors are identified by key, never by position).
    public var parameterTensorsInForwardOrder: [(name: String, shape: [Int])] {
        let tensors = parameterTensors
        func tensorCount(_ units: [ConvolutionUnit]) -> Int { units.reduce(0) { $0 + ($1.hasBias ? 4 : 3) } }
        var blockStart = 0
        var classifierStart = blocks.reduce(0) { $0 + tensorCount($1.paths.flatMap(\.units)) }
        var ordered: [(name: String, shape: [Int])] = []
        for block in blocks {
            let blockCount = tensorCount(block.paths.flatMap(\.units))
            // A classifier's units, then its linear weight and bias.
            let classifierCount = tensorCount(block.classifier.units) + 2
            ordered += tensors[blockStart..<(blockStart + blockCount)]
            ordered += tensors[classifierStart..<(classifierStart + classifierCount)]
            blockStart += blockCount
            classifierStart += classifierCount
        }
        precondition(ordered.count == tensors.count, "the forward order must hold every parameter once")
        return ordered
    }
}
