import Foundation

/// A line chart as SVG text, like the paper's figures: axes with ticks at round values, axis
/// labels, a title, a legend, and series drawn as lines, markers or both. Several charts can
/// share one document (`document(width:height:panels:)`).
struct SVGChart {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        var color: String
        var line = true
        var markers = false
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]
    /// Dashed vertical lines with a label at the top (e.g. where phase II starts).
    var verticalMarkers: [(x: Double, label: String)] = []
    /// x counts something whole (epochs): no ticks between integers.
    var integerX = false

    /// matplotlib's default colour cycle, one colour per exit.
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                          "#bcbd22", "#17becf"]

    static func color(_ index: Int) -> String { palette[index % palette.count] }

    /// A whole SVG document of `panels`, each drawn in its rectangle.
    static func document(width: Int, height: Int, panels: [(chart: SVGChart, x: Double, y: Double, width: Double, height: Double)]) -> String {
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        for panel in panels {
            svg += panel.chart.render(x: panel.x, y: panel.y, width: panel.width, height: panel.height)
        }
        return svg + "</svg>\n"
    }

    /// Round tick values covering `low...high`: steps of 1, 2 or 5 times a power of ten, about five ticks.
    static func ticks(_ low: Double, _ high: Double, integer: Bool = false) -> (values: [Double], low: Double, high: Double) {
        let span = max(high - low, 1e-9)
        let raw = integer ? max(span / 5, 1) : span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let first = floor(low / step) * step, last = ceil(high / step) * step
        let count = Int(((last - first) / step).rounded())
        return ((0...count).map { first + Double($0) * step }, first, last)
    }

    static func label(_ value: Double, step: Double) -> String {
        let decimals = max(0, min(4, Int(-floor(log10(step)))))
        return String(format: "%.\(decimals)f", value)
    }

    /// Coordinates with one decimal.
    static func number(_ value: Double) -> String { String(format: "%.1f", value) }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ attributes: String) -> String {
        "<line x1=\"\(number(x1))\" y1=\"\(number(y1))\" x2=\"\(number(x2))\" y2=\"\(number(y2))\" \(attributes)/>\n"
    }

    static func text(_ x: Double, _ y: Double, _ content: String, _ attributes: String = "") -> String {
        let escaped = content.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        return "<text x=\"\(number(x))\" y=\"\(number(y))\" \(attributes)>\(escaped)</text>\n"
    }

    static func circle(_ x: Double, _ y: Double, color: String) -> String {
        "<circle cx=\"\(number(x))\" cy=\"\(number(y))\" r=\"4\" fill=\"\(color)\" stroke=\"black\" stroke-width=\"0.5\"/>\n"
    }

    static func rectangle(_ x: Double, _ y: Double, _ width: Double, _ height: Double, _ attributes: String) -> String {
        "<rect x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(number(width))\" height=\"\(number(height))\" \(attributes)/>\n"
    }

    /// The chart's elements inside the rectangle (x, y, width, height).
    func render(x left: Double, y top: Double, width: Double, height: Double) -> String {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else {
            return Self.text(left + width / 2, top + height / 2, "\(title): no data", "text-anchor=\"middle\"")
        }
        let xs = all.map(\.x) + verticalMarkers.map(\.x), ys = all.map(\.y)
        let xTicks = Self.ticks(xs.min()!, xs.max()! == xs.min()! ? xs.min()! + 1 : xs.max()!, integer: integerX)
        let yTicks = Self.ticks(ys.min()!, ys.max()! == ys.min()! ? ys.min()! + 1 : ys.max()!)
        let plotLeft = left + 62, plotRight = left + width - 12, plotTop = top + 34, plotBottom = top + height - 46
        func px(_ value: Double) -> Double { plotLeft + (value - xTicks.low) / (xTicks.high - xTicks.low) * (plotRight - plotLeft) }
        func py(_ value: Double) -> Double { plotBottom - (value - yTicks.low) / (yTicks.high - yTicks.low) * (plotBottom - plotTop) }

        var svg = Self.text((plotLeft + plotRight) / 2, top + 20, title, "text-anchor=\"middle\" font-size=\"14\"")
        let xStep = xTicks.values.count > 1 ? xTicks.values[1] - xTicks.values[0] : 1
        let yStep = yTicks.values.count > 1 ? yTicks.values[1] - yTicks.values[0] : 1
        for value in xTicks.values {
            svg += Self.line(px(value), plotTop, px(value), plotBottom, "stroke=\"#dddddd\"")
            svg += Self.line(px(value), plotBottom, px(value), plotBottom + 5, "stroke=\"black\"")
            svg += Self.text(px(value), plotBottom + 18, Self.label(value, step: xStep), "text-anchor=\"middle\"")
        }
        for value in yTicks.values {
            svg += Self.line(plotLeft, py(value), plotRight, py(value), "stroke=\"#dddddd\"")
            svg += Self.line(plotLeft - 5, py(value), plotLeft, py(value), "stroke=\"black\"")
            svg += Self.text(plotLeft - 8, py(value) + 4, Self.label(value, step: yStep), "text-anchor=\"end\"")
        }
        svg += Self.rectangle(plotLeft, plotTop, plotRight - plotLeft, plotBottom - plotTop, "fill=\"none\" stroke=\"black\"")
        svg += Self.text((plotLeft + plotRight) / 2, plotBottom + 38, xLabel, "text-anchor=\"middle\"")
        let yMiddle = (plotTop + plotBottom) / 2
        svg += Self.text(left + 16, yMiddle, yLabel,
                         "text-anchor=\"middle\" transform=\"rotate(-90 \(Self.number(left + 16)) \(Self.number(yMiddle)))\"")
        for marker in verticalMarkers {
            svg += Self.line(px(marker.x), plotTop, px(marker.x), plotBottom, "stroke=\"#555555\" stroke-dasharray=\"5,4\"")
            svg += Self.text(px(marker.x) + 4, plotTop + 13, marker.label, "font-size=\"11\" fill=\"#555555\"")
        }
        for entry in series {
            if entry.line && entry.points.count > 1 {
                let path = entry.points.map { "\(Self.number(px($0.x))),\(Self.number(py($0.y)))" }.joined(separator: " ")
                svg += "<polyline fill=\"none\" stroke=\"\(entry.color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            }
            if entry.markers || entry.points.count == 1 {
                for point in entry.points { svg += Self.circle(px(point.x), py(point.y), color: entry.color) }
            }
        }
        // The legend goes in the corner that covers the fewest points (lower right on ties).
        let legendWidth = 44 + 7 * Double(series.map(\.name.count).max() ?? 0)
        let legendHeight = 8 + 18 * Double(series.count)
        let corners = [(plotRight - legendWidth - 8, plotBottom - legendHeight - 8), (plotLeft + 8, plotBottom - legendHeight - 8),
                       (plotRight - legendWidth - 8, plotTop + 8), (plotLeft + 8, plotTop + 8)]
        let covered = corners.map { corner in
            all.filter { point in
                let x = px(point.x), y = py(point.y)
                return x >= corner.0 - 6 && x <= corner.0 + legendWidth + 6 && y >= corner.1 - 6 && y <= corner.1 + legendHeight + 6
            }.count
        }
        let (legendLeft, legendTop) = corners[covered.indices.min { covered[$0] < covered[$1] }!]
        svg += Self.rectangle(legendLeft, legendTop, legendWidth, legendHeight,
                              "fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999999\"")
        for (index, entry) in series.enumerated() {
            let rowY = legendTop + 16 + 18 * Double(index)
            if entry.line {
                svg += Self.line(legendLeft + 8, rowY - 4, legendLeft + 30, rowY - 4, "stroke=\"\(entry.color)\" stroke-width=\"2\"")
            }
            if entry.markers || !entry.line { svg += Self.circle(legendLeft + 19, rowY - 4, color: entry.color) }
            svg += Self.text(legendLeft + 36, rowY, entry.name)
        }
        return svg
    }
}
