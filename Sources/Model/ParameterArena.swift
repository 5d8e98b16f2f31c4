/// Where one named tensor lives inside an arena.
public struct ParameterView: Equatable, Sendable {
    /// The reference PyTorch `state_dict` key, e.g. `blocks.0.0.layers.0.net.0.weight`.
    public let name: String
    /// First element, counted in Floats from the start of the arena.
    public let offset: Int
    /// PyTorch layout: conv weights `[out, in, kh, kw]`, linear weights `[out, in]`.
    public let shape: [Int]

    public var count: Int { shape.reduce(1, *) }
}

/// All trainable values of a network in one contiguous Float buffer, and all their gradients in a
/// second buffer with the same layout, so that averaging gradients across ranks is one reduction.
public final class ParameterArena {
    public let views: [ParameterView]
    /// Total number of Floats.
    public let count: Int
    public let values: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    private let indexByName: [String: Int]

    /// Lays the named tensors out one after another in the given order; values and gradients start at zero.
    public init(tensors: [(name: String, shape: [Int])]) {
        var views: [ParameterView] = []
        var offset = 0
        for tensor in tensors {
            let view = ParameterView(name: tensor.name, offset: offset, shape: tensor.shape)
            views.append(view)
            offset += view.count
        }
        self.views = views
        self.count = offset
        self.values = .allocate(capacity: max(offset, 1))
        self.values.initialize(repeating: 0, count: max(offset, 1))
        self.gradients = .allocate(capacity: max(offset, 1))
        self.gradients.initialize(repeating: 0, count: max(offset, 1))
        var indexByName: [String: Int] = [:]
        for (index, view) in views.enumerated() { indexByName[view.name] = index }
        self.indexByName = indexByName
    }

    deinit {
        values.deallocate()
        gradients.deallocate()
    }

    public func view(named name: String) -> ParameterView? {
        indexByName[name].map { views[$0] }
    }

    /// Pointer to the first value of the tensor `name`. The name must exist (a programming error otherwise).
    public func values(of name: String) -> UnsafeMutablePointer<Float> {
        guard let view = view(named: name) else { preconditionFailure("no parameter named \(name)") }
        return values + view.offset
    }

    public func gradients(of name: String) -> UnsafeMutablePointer<Float> {
        guard let view = view(named: name) else { preconditionFailure("no parameter named \(name)") }
        return gradients + view.offset
    }

    public func zeroGradients() {
        gradients.update(repeating: 0, count: count)
    }
}

/// The non-trainable state of BatchNorm layers: `running_mean` and `running_var` (Floats, one
/// contiguous buffer) and one Int64 `num_batches_tracked` per layer, all by reference key.
public final class BufferArena {
    /// Views of `…running_mean` and `…running_var` tensors.
    public let views: [ParameterView]
    public let count: Int
    public let values: UnsafeMutablePointer<Float>
    /// Reference keys of the counters, `…num_batches_tracked`, one per BatchNorm layer.
    public let counterNames: [String]
    public let counters: UnsafeMutablePointer<Int64>
    private let indexByName: [String: Int]
    private let counterIndexByName: [String: Int]

    /// One BatchNorm layer per entry: `prefix` is the layer's key (e.g. `blocks.0.0.layers.0.net.1`).
    /// Running means start at 0, running variances at 1, counters at 0 (PyTorch's defaults).
    public init(batchNormLayers: [(prefix: String, channels: Int)]) {
        var views: [ParameterView] = []
        var offset = 0
        for layer in batchNormLayers {
            views.append(ParameterView(name: layer.prefix + ".running_mean", offset: offset, shape: [layer.channels]))
            offset += layer.channels
            views.append(ParameterView(name: layer.prefix + ".running_var", offset: offset, shape: [layer.channels]))
            offset += layer.channels
        }
        self.views = views
        self.count = offset
        self.values = .allocate(capacity: max(offset, 1))
        self.values.initialize(repeating: 0, count: max(offset, 1))
        for view in views where view.name.hasSuffix(".running_var") {
            (values + view.offset).update(repeating: 1, count: view.count)
        }
        self.counterNames = batchNormLayers.map { $0.prefix + ".num_batches_tracked" }
        self.counters = .allocate(capacity: max(batchNormLayers.count, 1))
        self.counters.initialize(repeating: 0, count: max(batchNormLayers.count, 1))
        var indexByName: [String: Int] = [:]
        for (index, view) in views.enumerated() { indexByName[view.name] = index }
        self.indexByName = indexByName
        var counterIndexByName: [String: Int] = [:]
        for (index, name) in counterNames.enumerated() { counterIndexByName[name] = index }
        self.counterIndexByName = counterIndexByName
    }

    deinit {
        values.deallocate()
        counters.deallocate()
    }

    public func view(named name: String) -> ParameterView? {
        indexByName[name].map { views[$0] }
    }

    public func values(of name: String) -> UnsafeMutablePointer<Float> {
        guard let view = view(named: name) else { preconditionFailure("no buffer named \(name)") }
        return values + view.offset
    }

    /// Pointer to the `num_batches_tracked` counter with the given full key.
    public func counter(named name: String) -> UnsafeMutablePointer<Int64>? {
        counterIndexByName[name].map { counters + $0 }
    }
}

/// One tensor to checkpoint or compare, by reference `state_dict` key.
public struct NamedTensor {
    public enum Storage {
        case float(UnsafeMutablePointer<Float>)
        /// `num_batches_tracked` (shape `[]`).
        case int64(UnsafeMutablePointer<Int64>)
    }

    public let name: String
    public let shape: [Int]
    public let storage: Storage

    public init(name: String, shape: [Int], storage: Storage) {
        self.name = name
        self.shape = shape
        self.storage = storage
    }

    public var count: Int { shape.reduce(1, *) }
}

extension ParameterArena {
    /// The values as checkpoint tensors, prefixed (e.g. `net.` for the phase-II backbone).
    public func namedTensors(prefix: String = "") -> [NamedTensor] {
        views.map { NamedTensor(name: prefix + $0.name, shape: $0.shape, storage: .float(values + $0.offset)) }
    }
}

extension BufferArena {
    /// Running statistics and counters as checkpoint tensors, prefixed.
    public func namedTensors(prefix: String = "") -> [NamedTensor] {
        views.map { NamedTensor(name: prefix + $0.name, shape: $0.shape, storage: .float(values + $0.offset)) }
            + counterNames.enumerated().map { NamedTensor(name: prefix + $0.element, shape: [], storage: .int64(counters + $0.offset)) }
    }
}
