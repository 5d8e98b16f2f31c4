/// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay, with
/// PyTorch's `torch.optim.SGD` semantics (dampening 0), element by element over a `ParameterArena`:
///
///     d = g + weightDecay * w
///     b = d                         on the first step, else  b = momentum * b + d
///     d = d + momentum * b          (Nesterov)               else  d = b
///     w = w - learningRate * d
///
/// The momentum buffer `b` has the arena's layout, so it is checkpointed under the same keys.
public final class SGD {
    public let parameters: ParameterArena
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float
    /// `b`, laid out as `parameters.values`.
    public let momentumBuffer: UnsafeMutablePointer<Float>
    /// False until the first step (PyTorch creates the buffer then); set it after restoring a buffer.
    public var momentumBufferInitialized = false

    public init(parameters: ParameterArena, momentum: Float, nesterov: Bool, weightDecay: Float) {
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs a positive momentum")
        self.parameters = parameters
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        momentumBuffer = .allocate(capacity: max(parameters.count, 1))
        momentumBuffer.initialize(repeating: 0, count: max(parameters.count, 1))
    }

    deinit { momentumBuffer.deallocate() }

    /// The momentum buffer as checkpoint tensors, by parameter key.
    public var momentumTensors: [NamedTensor] {
        parameters.views.map { NamedTensor(name: $0.name, shape: $0.shape, storage: .float(momentumBuffer + $0.offset)) }
    }

    /// Applies one update from `parameters.gradients`.
    public func step(learningRate: Float) {
        let values = parameters.values, gradients = parameters.gradients, buffer = momentumBuffer
        let momentum = momentum, weightDecay = weightDecay, nesterov = nesterov
        let first = !momentumBufferInitialized
        ComputeThreads.parallelFor(parameters.count) { range in
            for index in range {
                var direction = gradients[index]
                if weightDecay != 0 { direction += weightDecay * values[index] }
                if momentum != 0 {
                    let velocity = first ? direction : momentum * buffer[index] + direction
                    buffer[index] = velocity
                    direction = nesterov ? direction + momentum * velocity : velocity
                }
                values[index] -= learningRate * direction
            }
        }
        momentumBufferInitialized = true
    }
}
