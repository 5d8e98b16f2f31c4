import DistTrain
import Evaluation
import Foundation
import Model
import Storage

/// A reference dump that cannot be checked.
public enum ReferenceCheckError: Error, CustomStringConvertible {
    case missingConfiguration(file: String)
    case invalidConfiguration(file: String, key: String, value: String, expected: String)
    case missingTensor(file: String, path: String)
    case shapeMismatch(file: String, path: String, expected: [Int], found: [Int])
    /// A `params/` key the rebuilt model does not have: the architecture differs from the reference's.
    case unknownParameter(file: String, key: String)

    public var description: String {
        switch self {
        case let .missingConfiguration(file):
            return "\(file): no root attribute `config` (JSON with the reference's model arguments)"
        case let .invalidConfiguration(file, key, value, expected):
            return "\(file): config \(key) = \(value) is invalid: expected \(expected)"
        case let .missingTensor(file, path):
            return "\(file): dataset \(path) is missing"
        case let .shapeMismatch(file, path, expected, found):
            return "\(file): \(path) has shape \(found), the rebuilt model expects \(expected)"
        case let .unknownParameter(file, key):
            return "\(file): params/\(key) has no counterpart in the rebuilt model (architecture mismatch)"
        }
    }
}

/// One tensor's agreement with the reference.
public struct ReferenceTensorError: Sendable {
    public var name: String
    /// `max|ours - reference|`.
    public var maximumError: Double
    /// `maximumError` divided by what the tolerance allows (<= 1 passes).
    public var errorOverTolerance: Double
}

/// One compared quantity of a reference dump (e.g. `phase1/grad`).
public struct ReferenceComparison: Sendable {
    public var name: String
    public var tensorCount: Int
    /// Every tensor of the group, in comparison order.
    public var tensors: [ReferenceTensorError] = []
    /// The tensor with the largest `errorOverTolerance`.
    public var worstTensor: String
    /// Over the tensors: `max|ours - reference| / max|reference|` (for gradients the denominator is
    /// at least 1% of the group's largest gradient).
    public var maximumRelativeError: Double
    /// Over the tensors: `max|ours - reference|` divided by what the tolerance allows (<= 1 passes).
    public var errorOverTolerance: Double
    /// The README rule this comparison applies.
    public var tolerance: String

    public var passed: Bool { errorOverTolerance <= 1 }

    /// Adds one tensor whose largest error is `difference` where the tolerance allows `allowed`.
    mutating func record(_ name: String, in group: String, difference: Double, allowed: Double, largest: Double) {
        let ratio = difference / max(allowed, Double(Float.leastNormalMagnitude))
        tensorCount += 1
        tensors.append(ReferenceTensorError(name: group + "/" + name, maximumError: difference, errorOverTolerance: ratio))
        maximumRelativeError = max(maximumRelativeError, largest > 0 ? difference / largest : difference)
        if ratio >= errorOverTolerance {
            errorOverTolerance = ratio
            worstTensor = name
        }
    }
}

/// Every comparison made on one reference dump.
public struct ReferenceCheckReport: CustomStringConvertible, Sendable {
    public var file: String
    public var comparisons: [ReferenceComparison]

    public var passed: Bool { comparisons.allSatisfy(\.passed) }

    public var description: String {
        var lines = ["reference check of \(file)"]
        let width = max(24, (comparisons.map(\.name.count).max() ?? 0) + 2)
        func pad(_ text: String, _ count: Int) -> String { text + String(repeating: " ", count: max(0, count - text.count)) }
        lines.append(pad("group", width) + pad("tensors", 9) + pad("max rel. error", 16) + pad("error/tolerance", 17) + "result  worst tensor")
        for comparison in comparisons {
            lines.append(pad(comparison.name, width) + pad("\(comparison.tensorCount)", 9)
                + pad(String(format: "%.3e", comparison.maximumRelativeError), 16)
                + pad(String(format: "%.3f", comparison.errorOverTolerance), 17)
                + pad(comparison.passed ? "ok" : "FAIL", 8) + comparison.worstTensor)
        }
        lines.append(passed ? "all within tolerance" : "OUT OF TOLERANCE")
        return lines.joined(separator: "\n")
    }

    /// Every tensor's error and error/tolerance, group by group, followed by the summary table.
    public var verboseDescription: String {
        var lines: [String] = []
        for comparison in comparisons {
            lines.append("\(comparison.name)  (tolerance: \(comparison.tolerance))")
            for tensor in comparison.tensors {
                lines.append("  " + String(format: "%-64@ max error %.3e  error/tolerance %8.3f  %@", tensor.name as NSString,
                                           tensor.maximumError, tensor.errorOverTolerance, tensor.errorOverTolerance <= 1 ? "ok" : "FAIL"))
            }
        }
        return (lines + [description]).joined(separator: "\n")
    }
}

/// Recomputes what a reference dump (`fixtures/msdnet-cifar-tiny.h5`, written by the authors'
/// PyTorch code) holds and compares it with the README's tolerances: phase-I training forward
/// and gradients with and without Gradient Equilibrium, BatchNorm buffers, evaluation logits, two
/// SGD steps, the IMTA phase-II heads, and the budgeted evaluation on fixed exit probabilities.
public enum ReferenceCheck {
    /// Logits, losses and BN buffers: within this fraction of the tensor's largest magnitude.
    static let valueTolerance = 1e-4
    /// Gradients: `max|G - R| <= 1e-3 max|R| + 1e-5 g`, g the group's largest gradient.
    static let gradientRelativeTolerance = 1e-3
    static let gradientGroupTolerance = 1e-5
    /// SGD weights: `max|W - R| <= 1e-6 (max|R| + max|R - W0|)`, W0 the starting weights.
    /// The second term scales with the update: float32 rounds every term of the update
    /// (`lr (g + wd W)`, the momentum buffer, the Nesterov look-ahead) at its own magnitude, so a
    /// tensor whose two-step update is large against its weights (a bias near zero, a gradient
    /// 10-100x its weights) carries an error of a few ulps (6e-8 each) of the update, which a bound
    /// on the weights alone does not admit: the reference itself, in float32, reached 2.1x of it.
    /// A missing weight decay still shows: it moves the result by `lr wd W (1 + 1.9)`, about 3e-5 of
    /// the weights; a wrong momentum or Nesterov order moves it by a tenth of the update or more.
    static let optimizerWeightTolerance = 1e-6
    static let optimizerUpdateTolerance = 1e-6

    public static func run(file path: String) throws -> ReferenceCheckReport {
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        let root = try file.root
        let reference = try ReferenceDump(root: root, path: path)
        let settings = try ReferenceSettings(json: reference.configuration, file: path,
                                             inputShape: try reference.shape("input"))
        let n = settings.batch
        let images = try reference.channelMajorImages()
        let labels = try root.read("target", as: Int64.self).values.map { Int32($0) }
        let classes = settings.configuration.classes

        var comparisons: [ReferenceComparison] = []
        let model = try MSDNet(configuration: settings.configuration, gradientEquilibrium: true, maximumBatchSize: n)
        try reference.checkKeys(model)

        for (group, gradientEquilibrium) in [("phase1", true), ("phase1_without_ge", false)] where try root.exists(group) {
            try reference.load(into: model)
            model.gradientEquilibrium = gradientEquilibrium
            var loss = 0.0
            images.withUnsafeBufferPointer { imageBuffer in
                labels.withUnsafeBufferPointer { labelBuffer in
                    loss = model.trainingStep(images: imageBuffer.baseAddress!, labels: labelBuffer.baseAddress!, count: n).loss
                }
            }
            comparisons.append(try reference.compareValues(group + "/logits", (0..<model.exitCount).map {
                ("exit\($0)", Array(UnsafeBufferPointer(start: model.logits(exit: $0), count: n * classes)))
            }))
            comparisons.append(try reference.compareValues(group + "/loss", [("", [Float(loss)])]))
            comparisons.append(try reference.compareGradients(group + "/grad", model.parameters.views.map {
                ($0.name, Array(UnsafeBufferPointer(start: model.parameters.gradients + $0.offset, count: $0.count)))
            }))
            if try root.exists(group + "/buffers_after") {
                comparisons.append(try reference.compareBuffers(group + "/buffers_after", model.buffers))
            }
        }

        if try root.exists("eval") {
            try reference.load(into: model)
            let outputs = (0..<model.exitCount).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: n * classes) }
            defer { outputs.forEach { $0.deallocate() } }
            images.withUnsafeBufferPointer { model.predict(images: $0.baseAddress!, count: n, logits: outputs) }
            comparisons.append(try reference.compareValues("eval/logits", (0..<model.exitCount).map {
                ("exit\($0)", Array(UnsafeBufferPointer(start: outputs[$0], count: n * classes)))
            }))
        }

        if try root.exists("sgd_two_steps") {
            try reference.load(into: model)
            let optimizer = SGD(parameters: model.parameters, momentum: 0.9, nesterov: true, weightDecay: 1e-4)
            for view in model.parameters.views {
                let gradient = try reference.floats("phase1/grad/" + view.name, shape: view.shape)
                (model.parameters.gradients + view.offset).update(from: gradient, count: view.count)
            }
            optimizer.step(learningRate: 0.1)
            optimizer.step(learningRate: 0.1)
            comparisons.append(try reference.compareOptimizer("sgd_two_steps/params", model.parameters.views.map {
                ($0.name, Array(UnsafeBufferPointer(start: model.parameters.values + $0.offset, count: $0.count)))
            }))
        }

        if try root.exists("phase2") {
            try reference.load(into: model)
            let distillation = OneForAllDistillation(temperature: settings.temperature, gamma: settings.gamma,
                                                     reduction: settings.distillationReduction)
            let network = IMTANetwork(backbone: model, distillation: distillation,
                                      detachCollaboration: settings.detachCollaboration, seed: 0)
            try reference.loadHeads(into: network)
            var loss = 0.0
            images.withUnsafeBufferPointer { imageBuffer in
                labels.withUnsafeBufferPointer { labelBuffer in
                    loss = network.trainingStep(images: imageBuffer.baseAddress!, labels: labelBuffer.baseAddress!, count: n).loss
                }
            }
            comparisons.append(try reference.compareValues("phase2/soft_target", [
                ("", Array(UnsafeBufferPointer(start: network.teacher, count: n * classes)))]))
            comparisons.append(try reference.compareValues("phase2/logits", (0..<network.exitCount).map {
                ("exit\($0)", Array(UnsafeBufferPointer(start: network.prediction(exit: $0), count: n * classes)))
            }))
            comparisons.append(try reference.compareValues("phase2/loss", [("", [Float(loss)])]))
            comparisons.append(try reference.compareGradients("phase2/grad", network.heads.views.map {
                ($0.name, Array(UnsafeBufferPointer(start: network.heads.gradients + $0.offset, count: $0.count)))
            }))
        }
        if try root.exists("dynamic/budgets") {
            comparisons.append(try reference.compareBudgets())
        }
        return ReferenceCheckReport(file: path, comparisons: comparisons)
    }
}

/// The model settings a dump's `config` attribute describes, in this project's types.
struct ReferenceSettings {
    var configuration: MSDNetConfiguration
    var batch: Int
    var temperature: Float
    var gamma: Float
    /// `isc_detach` (optional, default false): the run file's `isc.detach`.
    var detachCollaboration: Bool
    /// `ofa_reduction` (optional, default "mean", the reference's): the run file's `ofa.reduction`.
    var distillationReduction: KLDivergence.Reduction

    init(json: String, file: String, inputShape: [Int]) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw ReferenceCheckError.invalidConfiguration(file: file, key: "config", value: json, expected: "a JSON object")
        }
        func value<T>(_ key: String, _ type: T.Type) throws -> T {
            guard let value = object[key] as? T else {
                throw ReferenceCheckError.invalidConfiguration(file: file, key: key, value: "\(object[key] ?? "nothing")", expected: "\(T.self)")
            }
            return value
        }
        guard inputShape.count == 4, inputShape[2] == inputShape[3] else {
            throw ReferenceCheckError.shapeMismatch(file: file, path: "input", expected: [-1, -1, -1, -1], found: inputShape)
        }
        let data = try value("data", String.self)
        let stem: MSDNetConfiguration.Stem
        if data.hasPrefix("cifar") {
            stem = .cifar
        } else if data == "ImageNet" {
            stem = .imagenet
        } else {
            throw ReferenceCheckError.invalidConfiguration(file: file, key: "data", value: data, expected: "cifar10, cifar100 or ImageNet")
        }
        let stepmodeName = try value("stepmode", String.self)
        guard let stepmode = MSDNetConfiguration.StepMode(rawValue: stepmodeName) else {
            throw ReferenceCheckError.invalidConfiguration(file: file, key: "stepmode", value: stepmodeName, expected: "even or lin_grow")
        }
        let pruneName = try value("prune", String.self)
        guard let prune = MSDNetConfiguration.Prune(rawValue: pruneName) else {
            throw ReferenceCheckError.invalidConfiguration(file: file, key: "prune", value: pruneName, expected: "max or min")
        }
        let defaultClasses = data == "cifar100" ? 100 : data == "ImageNet" ? 1000 : 10
        configuration = MSDNetConfiguration(
            stem: stem, inputChannels: inputShape[1], inputSize: inputShape[2],
            classes: (object["num_classes"] as? Int) ?? defaultClasses,
            nBlocks: try value("nBlocks", Int.self), stepmode: stepmode, step: try value("step", Int.self),
            base: try value("base", Int.self), nChannels: try value("nChannels", Int.self),
            growthRate: try value("growthRate", Int.self), grFactor: try value("grFactor", [Int].self),
            bnFactor: try value("bnFactor", [Int].self), prune: prune, reduction: try value("reduction", Double.self),
            bottleneck: try value("bottleneck", Bool.self))
        batch = inputShape[0]
        temperature = Float((object["T"] as? Double) ?? 1)
        gamma = Float((object["gamma"] as? Double) ?? 0)
        detachCollaboration = (object["isc_detach"] as? Bool) ?? false
        let reductionName = (object["ofa_reduction"] as? String) ?? KLDivergence.Reduction.mean.rawValue
        guard let reduction = KLDivergence.Reduction(rawValue: reductionName) else {
            throw ReferenceCheckError.invalidConfiguration(file: file, key: "ofa_reduction", value: reductionName, expected: "mean or batchmean")
        }
        distillationReduction = reduction
    }
}

/// Reads and compares the tensors of one dump.
struct ReferenceDump {
    let root: HDF5Group
    let path: String
    /// The root attribute `config` (JSON) that every dump carries.
    let configuration: String

    init(root: HDF5Group, path: String) throws {
        guard try root.hasAttribute("config") else { throw ReferenceCheckError.missingConfiguration(file: path) }
        self.root = root
        self.path = path
        configuration = try root.readStringAttribute("config")
    }

    func shape(_ name: String) throws -> [Int] {
        guard try root.exists(name) else { throw ReferenceCheckError.missingTensor(file: path, path: name) }
        return try root.dataset(name).shape
    }

    /// The dataset `name` as Floats, checked against `shape` (nil: any shape).
    func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        let found = try shape(name)
        if let expected, found != expected {
            throw ReferenceCheckError.shapeMismatch(file: path, path: name, expected: expected, found: found)
        }
        return try root.read(name, as: Float.self).values
    }

    /// `input` `[N, C, H, W]` transposed to the model's channel-major `[C, N, H, W]`.
    func channelMajorImages() throws -> [Float] {
        let shape = try shape("input")
        let values = try floats("input")
        let (batch, channels, plane) = (shape[0], shape[1], shape[2] * shape[3])
        var images = [Float](repeating: 0, count: values.count)
        for image in 0..<batch {
            for channel in 0..<channels {
                for position in 0..<plane {
                    images[(channel * batch + image) * plane + position] = values[(image * channels + channel) * plane + position]
                }
            }
        }
        return images
    }

    /// Every `params/` key must be a parameter or buffer of `model`, and every one of those must be present.
    func checkKeys(_ model: MSDNet) throws {
        let known = Set(model.stateTensors.map(\.name))
        for key in try root.group("params").memberNames() where !known.contains(key) {
            throw ReferenceCheckError.unknownParameter(file: path, key: key)
        }
        for name in known where !(try root.exists("params/" + name)) {
            throw ReferenceCheckError.missingTensor(file: path, path: "params/" + name)
        }
    }

    /// Loads `params/` weights, running statistics and counters into `model`.
    func load(into model: MSDNet) throws {
        for view in model.parameters.views {
            let values = try floats("params/" + view.name, shape: view.shape)
            (model.parameters.values + view.offset).update(from: values, count: view.count)
        }
        try loadBuffers(model.buffers, group: "params/")
    }

    /// Loads the `phase2/params/` heads, ISC modules and their BatchNorm buffers into `network`.
    func loadHeads(into network: IMTANetwork) throws {
        for view in network.heads.views {
            let values = try floats("phase2/params/" + view.name, shape: view.shape)
            (network.heads.values + view.offset).update(from: values, count: view.count)
        }
        try loadBuffers(network.headBuffers, group: "phase2/params/")
    }

    func loadBuffers(_ buffers: BufferArena, group: String) throws {
        for view in buffers.views {
            let values = try floats(group + view.name, shape: view.shape)
            (buffers.values + view.offset).update(from: values, count: view.count)
        }
        for (index, name) in buffers.counterNames.enumerated() {
            guard try root.exists(group + name) else { throw ReferenceCheckError.missingTensor(file: path, path: group + name) }
            buffers.counters[index] = try root.dataset(group + name).readScalar(as: Int64.self)
        }
    }

    /// `max|ours - reference| <= tolerance * max|reference|` per tensor (`group/name`).
    func compareValues(_ group: String, _ tensors: [(name: String, values: [Float])],
                       tolerance: Double = ReferenceCheck.valueTolerance) throws -> ReferenceComparison {
        var comparison = ReferenceComparison(name: group, tensorCount: 0, worstTensor: "", maximumRelativeError: 0,
                                             errorOverTolerance: 0, tolerance: "\(tolerance) x max|R| per tensor")
        for tensor in tensors {
            let name = tensor.name.isEmpty ? group : group + "/" + tensor.name
            let expected = try root.read(name, as: Float.self).values
            guard expected.count == tensor.values.count else {
                throw ReferenceCheckError.shapeMismatch(file: path, path: name, expected: [tensor.values.count], found: [expected.count])
            }
            let (difference, largest) = Self.differenceAndLargest(tensor.values, expected)
            let relative = largest > 0 ? difference / largest : difference
            let ratio = difference / max(tolerance * largest, Double(Float.leastNormalMagnitude))
            comparison.tensorCount += 1
            comparison.tensors.append(ReferenceTensorError(name: name, maximumError: difference, errorOverTolerance: ratio))
            comparison.maximumRelativeError = max(comparison.maximumRelativeError, relative)
            if ratio >= comparison.errorOverTolerance {
                comparison.errorOverTolerance = ratio
                comparison.worstTensor = tensor.name.isEmpty ? group : tensor.name
            }
        }
        return comparison
    }

    /// `max|G - R| <= 1e-3 max|R| + 1e-5 g` per tensor, g the largest |R| in the group.
    func compareGradients(_ group: String, _ tensors: [(name: String, values: [Float])]) throws -> ReferenceComparison {
        var expectedByName: [String: [Float]] = [:]
        var groupLargest = 0.0
        for tensor in tensors {
            let expected = try floats(group + "/" + tensor.name)
            guard expected.count == tensor.values.count else {
                throw ReferenceCheckError.shapeMismatch(file: path, path: group + "/" + tensor.name,
                                                        expected: [tensor.values.count], found: [expected.count])
            }
            expectedByName[tensor.name] = expected
            groupLargest = max(groupLargest, expected.reduce(0.0) { max($0, Double(abs($1))) })
        }
        var comparison = ReferenceComparison(
            name: group, tensorCount: 0, worstTensor: "", maximumRelativeError: 0, errorOverTolerance: 0,
            tolerance: "\(ReferenceCheck.gradientRelativeTolerance) x max|R| + \(ReferenceCheck.gradientGroupTolerance) x max group |R|")
        for tensor in tensors {
            let (difference, largest) = Self.differenceAndLargest(tensor.values, expectedByName[tensor.name] ?? [])
            let allowed = ReferenceCheck.gradientRelativeTolerance * largest + ReferenceCheck.gradientGroupTolerance * groupLargest
            let ratio = difference / max(allowed, Double(Float.leastNormalMagnitude))
            comparison.tensorCount += 1
            comparison.tensors.append(ReferenceTensorError(name: group + "/" + tensor.name, maximumError: difference, errorOverTolerance: ratio))
            // Relative to the same floor the tolerance has, so a gradient that is zero in exact
            // arithmetic (a bias feeding a BatchNorm) does not report a meaningless ratio.
            let scale = max(largest, ReferenceCheck.gradientGroupTolerance / ReferenceCheck.gradientRelativeTolerance * groupLargest)
            comparison.maximumRelativeError = max(comparison.maximumRelativeError, scale > 0 ? difference / scale : difference)
            if ratio >= comparison.errorOverTolerance {
                comparison.errorOverTolerance = ratio
                comparison.worstTensor = tensor.name
            }
        }
        return comparison
    }

    /// `max|W - R| <= 1e-6 (max|R| + max|R - W0|)` per tensor, W0 its `params/` value.
    func compareOptimizer(_ group: String, _ tensors: [(name: String, values: [Float])]) throws -> ReferenceComparison {
        var comparison = ReferenceComparison(
            name: group, tensorCount: 0, worstTensor: "", maximumRelativeError: 0, errorOverTolerance: 0,
            tolerance: "\(ReferenceCheck.optimizerWeightTolerance) x max|R| + \(ReferenceCheck.optimizerUpdateTolerance) x max|R - W0| per tensor")
        for tensor in tensors {
            let expected = try floats(group + "/" + tensor.name)
            let start = try floats("params/" + tensor.name)
            guard expected.count == tensor.values.count, start.count == expected.count else {
                throw ReferenceCheckError.shapeMismatch(file: path, path: group + "/" + tensor.name,
                                                        expected: [tensor.values.count], found: [expected.count])
            }
            let (difference, largest) = Self.differenceAndLargest(tensor.values, expected)
            let (update, _) = Self.differenceAndLargest(start, expected)
            comparison.record(tensor.name, in: group, difference: difference,
                              allowed: ReferenceCheck.optimizerWeightTolerance * largest + ReferenceCheck.optimizerUpdateTolerance * update,
                              largest: largest)
        }
        return comparison
    }

    /// Running statistics within the value tolerance; `num_batches_tracked` exactly.
    func compareBuffers(_ group: String, _ buffers: BufferArena) throws -> ReferenceComparison {
        var present: [(name: String, values: [Float])] = []
        for view in buffers.views where try root.exists(group + "/" + view.name) {
            present.append((view.name, Array(UnsafeBufferPointer(start: buffers.values + view.offset, count: view.count))))
        }
        var comparison = try compareValues(group, present)
        for (index, name) in buffers.counterNames.enumerated() where try root.exists(group + "/" + name) {
            let expected = try root.dataset(group + "/" + name).readScalar(as: Int64.self)
            comparison.tensorCount += 1
            if expected != buffers.counters[index] {
                comparison.errorOverTolerance = .infinity
                comparison.worstTensor = name
            }
        }
        return comparison
    }

    /// The budgeted evaluation on the dump's fixed exit probabilities: per budget p, the
    /// validation and test accuracies (within 1e-9 percent), the expected MADDs (relative 1e-12)
    /// and the thresholds (exactly: they are values taken from the data).
    func compareBudgets() throws -> ReferenceComparison {
        func probabilities(_ split: String) throws -> BudgetedEvaluation.ExitProbabilities {
            let values = try root.read("dynamic/\(split)_probs", as: Float.self)
            let labels = try root.read("dynamic/\(split)_labels", as: Int64.self)
            return BudgetedEvaluation.ExitProbabilities(exitCount: values.shape[0], sampleCount: values.shape[1],
                                                        classCount: values.shape[2], values: values.values,
                                                        labels: labels.values.map { Int($0) })
        }
        let validation = try probabilities("val")
        let test = try probabilities("test")
        let madds = try root.read("dynamic/flops", as: Double.self).values
        let expected = try root.read("dynamic/budgets", as: Double.self)
        let columns = 4 + validation.exitCount
        guard expected.shape.count == 2, expected.shape[1] == columns else {
            throw ReferenceCheckError.shapeMismatch(file: path, path: "dynamic/budgets", expected: [40, columns], found: expected.shape)
        }
        let points = BudgetedEvaluation.evaluate(validation: validation, test: test, exitMADDs: madds,
                                                 budgets: (0..<expected.shape[0]).map { expected.values[$0 * columns] })
        var comparison = ReferenceComparison(name: "dynamic/budgets", tensorCount: points.count, worstTensor: "-",
                                             maximumRelativeError: 0, errorOverTolerance: 0,
                                             tolerance: "accuracies 1e-9, MADDs relative 1e-12, thresholds exact")
        for (index, point) in points.enumerated() {
            let row = Array(expected.values[(index * columns)..<((index + 1) * columns)])
            var ratios = [abs(point.validationAccuracy - row[1]) / 1e-9, abs(point.testAccuracy - row[2]) / 1e-9,
                          abs(point.expectedMADDs - row[3]) / max(1e-12 * abs(row[3]), Double.leastNormalMagnitude)]
            for exit in 0..<validation.exitCount {
                ratios.append(point.thresholds[exit] == Float(row[4 + exit]) ? 0 : .infinity)
            }
            let relative = [abs(point.validationAccuracy - row[1]) / max(abs(row[1]), 1),
                            abs(point.testAccuracy - row[2]) / max(abs(row[2]), 1),
                            abs(point.expectedMADDs - row[3]) / max(abs(row[3]), 1)].max() ?? 0
            comparison.maximumRelativeError = max(comparison.maximumRelativeError, relative)
            if let worst = ratios.max(), worst > comparison.errorOverTolerance {
                comparison.errorOverTolerance = worst
                comparison.worstTensor = "budget p = \(row[0])"
            }
        }
        return comparison
    }

    static func differenceAndLargest(_ actual: [Float], _ expected: [Float]) -> (difference: Double, largest: Double) {
        var difference = 0.0
        var largest = 0.0
        for index in 0..<min(actual.count, expected.count) {
            difference = max(difference, Double(abs(actual[index] - expected[index])))
            largest = max(largest, Double(abs(expected[index])))
        }
        if actual.contains(where: { !$0.isFinite }) { difference = .infinity }
        return (difference, largest)
    }
}
