import Foundation
import Model
import Storage

/// Anytime prediction (the paper's Tables 2 and 3): every test sample is classified by every exit,
/// and each exit is reported with its top-1 and top-5 accuracy beside the cumulative MADDs and
/// parameters needed to reach it. Written to `anytime.csv` and printed as a table.
public enum AnytimeReport {
    /// One exit's row.
    public struct ExitRow: Sendable, Equatable {
        public var exit: Int
        /// Percent of samples whose label is the most probable class.
        public var top1: Double
        /// Percent of samples whose label is among the five most probable classes.
        public var top5: Double
        public var multiplyAdds: Int
        public var parameters: Int
    }

    /// Top-1 and top-5 accuracy of every exit of `set`. A class ranks above the label when its
    /// probability is larger, or equal with a smaller class index (ties resolve as `argmax`:
    /// the first maximum wins), so top-1 here is the same count as the per-exit accuracy.
    public static func rows(_ set: BudgetedEvaluation.ExitProbabilities, exitCosts: [ExitCost]) -> [ExitRow] {
        precondition(exitCosts.count == set.exitCount, "one cost per exit")
        let classes = set.classCount
        return (0..<set.exitCount).map { exit in
            var top1 = 0, top5 = 0
            for sample in 0..<set.sampleCount {
                let base = (exit * set.sampleCount + sample) * classes
                let label = set.labels[sample]
                let labelProbability = set.values[base + label]
                var above = 0
                for c in 0..<classes {
                    let value = set.values[base + c]
                    if value > labelProbability || (value == labelProbability && c < label) { above += 1 }
                }
                if above < 1 { top1 += 1 }
                if above < 5 { top5 += 1 }
            }
            let total = Double(max(set.sampleCount, 1))
            return ExitRow(exit: exit, top1: 100 * Double(top1) / total, top5: 100 * Double(top5) / total,
                           multiplyAdds: exitCosts[exit].multiplyAdds, parameters: exitCosts[exit].parameters)
        }
    }

    /// `exit,top1,top5,madds,params` with one row per exit.
    public static func csv(_ rows: [ExitRow]) -> String {
        "exit,top1,top5,madds,params\n" + rows.map {
            String(format: "%d,%.4f,%.4f,%d,%d\n", $0.exit, $0.top1, $0.top5, $0.multiplyAdds, $0.parameters)
        }.joined()
    }

    /// Reads a file written from `csv`.
    public static func read(from path: String) throws -> [ExitRow] {
        let table = try ReportTable(path: path, columns: ["exit", "top1", "top5", "madds", "params"])
        return table.rows.map {
            ExitRow(exit: Int($0[0]), top1: $0[1], top5: $0[2], multiplyAdds: Int($0[3]), parameters: Int($0[4]))
        }
    }

    /// The rows as the final summary prints them.
    public static func table(_ rows: [ExitRow]) -> String {
        var lines = ["anytime prediction (test set):", "  exit   MADDs (M)   params (M)   top-1 %   top-5 %"]
        for row in rows {
            lines.append(String(format: "%6d   %9.2f   %10.3f   %7.2f   %7.2f", row.exit, Double(row.multiplyAdds) / 1e6,
                                Double(row.parameters) / 1e6, row.top1, row.top5))
        }
        return lines.joined(separator: "\n")
    }
}

/// A numeric CSV report read back (`anytime.csv`, `budgets.csv`) for `disttrain plot`: the header
/// must start with `columns`; every cell must be a number.
struct ReportTable {
    let header: [String]
    let rows: [[Double]]

    init(path: String, columns: [String]) throws {
        let text = try ReportError.readText(path)
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard let first = lines.first else { throw ReportError.malformed(path: path, line: 1, expected: "a header line") }
        let header = first.split(separator: ",").map(String.init)
        guard header.starts(with: columns) else {
            throw ReportError.malformed(path: path, line: 1, expected: "a header starting \(columns.joined(separator: ","))")
        }
        self.header = header
        rows = try lines.dropFirst().enumerated().map { index, line in
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
            guard cells.count == header.count, cells.allSatisfy({ $0 != nil }) else {
                throw ReportError.malformed(path: path, line: index + 2, expected: "\(header.count) numbers")
            }
            return cells.map { $0! }
        }
    }
}

/// A report file that `disttrain plot` cannot use.
public enum ReportError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, line: Int, expected: String)
    case nothingToPlot(runDirectory: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .nothingToPlot(runDirectory):
            "\(runDirectory): no metrics.jsonl, budgets.csv or anytime.csv to plot (is it a run directory?)"
        case let .unreadable(path, reason): "\(path): cannot read the file: \(reason)"
        case let .malformed(path, line, expected): "\(path): line \(line): expected \(expected)"
        case let .cannotWrite(path, reason): "\(path): cannot write: \(reason)"
        }
    }
}

extension ReportError {
    /// The text of the report file `path`, or why not: the system's reason ("no such file or
    /// directory"), or the first line that is not UTF-8.
    static func readText(_ path: String) throws -> String {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ReportError.unreadable(path: path, reason: readableReason(error))
        }
        if let text = String(validating: data, as: UTF8.self) { return text }
        // A newline byte never occurs inside a UTF-8 sequence, so lines can be checked one by one.
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let bad = lines.firstIndex { String(validating: $0, as: UTF8.self) == nil } ?? 0
        throw ReportError.unreadable(path: path, reason: "not UTF-8 at line \(bad + 1)")
    }
}
