import Foundation

/// Row-wise softmax over `[rows, columns]` with a temperature:
/// `softmax(x / T)_j = exp(x_j / T - m) / sum_i exp(x_i / T - m)`, `m = max_i x_i / T`.
public enum Softmax {
    /// OVERWRITES `output` (may alias `input`).
    public static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                               rows: Int, columns: Int, temperature: Float = 1) {
        for r in 0..<rows {
            SoftmaxRow.softmax(input + r * columns, output + r * columns, columns: columns, temperature: temperature)
        }
    }

    /// `dx += (y * (dy - sum(dy * y))) / T` per row, with `y` the forward's output (ACCUMULATES).
    public static func backward(outputGradient: UnsafePointer<Float>, output: UnsafePointer<Float>,
                                inputGradient: UnsafeMutablePointer<Float>,
                                rows: Int, columns: Int, temperature: Float = 1) {
        for r in 0..<rows {
            let y = output + r * columns, dy = outputGradient + r * columns, dx = inputGradient + r * columns
            var inner: Float = 0
            for j in 0..<columns { inner += dy[j] * y[j] }
            for j in 0..<columns { dx[j] += y[j] * (dy[j] - inner) / temperature }
        }
    }
}

/// Row-wise log-softmax over `[rows, columns]` with a temperature:
/// `log_softmax(x / T)_j = x_j / T - m - log sum_i exp(x_i / T - m)`.
public enum LogSoftmax {
    /// OVERWRITES `output` (may alias `input`).
    public static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                               rows: Int, columns: Int, temperature: Float = 1) {
        for r in 0..<rows {
            SoftmaxRow.logSoftmax(input + r * columns, output + r * columns, columns: columns, temperature: temperature)
        }
    }

    /// `dx += (dy - exp(y) * sum(dy)) / T` per row, with `y` the forward's output (ACCUMULATES).
    public static func backward(outputGradient: UnsafePointer<Float>, output: UnsafePointer<Float>,
                                inputGradient: UnsafeMutablePointer<Float>,
                                rows: Int, columns: Int, temperature: Float = 1) {
        for r in 0..<rows {
            let y = output + r * columns, dy = outputGradient + r * columns, dx = inputGradient + r * columns
            var total: Float = 0
            for j in 0..<columns { total += dy[j] }
            for j in 0..<columns { dx[j] += (dy[j] - exp(y[j]) * total) / temperature }
        }
    }
}

/// One row of softmax / log-softmax, shared by the losses.
enum SoftmaxRow {
    /// `(m, log sum_i exp(x_i / T - m))` with `m = max_i x_i / T`.
    @inline(__always)
    static func logNormalizer(_ x: UnsafePointer<Float>, columns: Int, temperature: Float) -> (maximum: Float, logSum: Float) {
        let inverseTemperature = 1 / temperature
        var maximum = -Float.infinity
        for j in 0..<columns { maximum = max(maximum, x[j] * inverseTemperature) }
        var total: Float = 0
        for j in 0..<columns { total += exp(x[j] * inverseTemperature - maximum) }
        return (maximum, log(total))
    }

    /// `exp(x_j / T - m) / sum`, the sum taken in class order, as PyTorch's CPU softmax divides.
    @inline(__always)
    static func softmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, columns: Int, temperature: Float) {
        let inverseTemperature = 1 / temperature
        var maximum = -Float.infinity
        for j in 0..<columns { maximum = max(maximum, x[j] * inverseTemperature) }
        var total: Float = 0
        for j in 0..<columns {
            y[j] = exp(x[j] * inverseTemperature - maximum)
            total += y[j]
        }
        for j in 0..<columns { y[j] /= total }
    }

    @inline(__always)
    static func logSoftmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, columns: Int, temperature: Float) {
        let (maximum, logSum) = logNormalizer(x, columns: columns, temperature: temperature)
        let inverseTemperature = 1 / temperature
        for j in 0..<columns { y[j] = x[j] * inverseTemperature - maximum - logSum }
    }
}
