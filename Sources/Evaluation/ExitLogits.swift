import Foundation
import Model
import Storage

/// `<runDir>/logits.h5`: the exit probabilities that the budgeted evaluation reads, so that
/// thresholds can be chosen again (or plotted) without running the network:
/// `/val/probs [k, n, c]`, `/val/labels [n]`, `/test/probs`, `/test/labels`, `/exits/madds [k]`,
/// `/exits/params [k]`.
public enum ExitLogits {
    public static func write(to path: String, validation: BudgetedEvaluation.ExitProbabilities,
                             test: BudgetedEvaluation.ExitProbabilities, exitCosts: [ExitCost]) throws {
        let file = try HDF5File.create(path)
        let root = try file.root
        for (name, set) in [("val", validation), ("test", test)] {
            try root.createDataset("\(name)/probs", values: set.values,
                                   shape: [set.exitCount, set.sampleCount, set.classCount])
            try root.createDataset("\(name)/labels", values: set.labels.map { Int64($0) }, shape: [set.sampleCount])
        }
        try root.createDataset("exits/madds", values: exitCosts.map { Int64($0.multiplyAdds) }, shape: [exitCosts.count])
        try root.createDataset("exits/params", values: exitCosts.map { Int64($0.parameters) }, shape: [exitCosts.count])
        try file.close()
    }

    /// Reads a file written by `write`.
    public static func read(from path: String) throws -> (validation: BudgetedEvaluation.ExitProbabilities,
                                                          test: BudgetedEvaluation.ExitProbabilities,
                                                          exitMADDs: [Double]) {
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        let root = try file.root
        func set(_ name: String) throws -> BudgetedEvaluation.ExitProbabilities {
            let probabilities = try root.read("\(name)/probs", as: Float.self)
            let labels = try root.read("\(name)/labels", as: Int64.self)
            return BudgetedEvaluation.ExitProbabilities(
                exitCount: probabilities.shape[0], sampleCount: probabilities.shape[1],
                classCount: probabilities.shape[2], values: probabilities.values, labels: labels.values.map { Int($0) })
        }
        let madds = try root.read("exits/madds", as: Int64.self).values.map { Double($0) }
        return (try set("val"), try set("test"), madds)
    }
}
