import Foundation

/// Knowledge-distillation divergence `KL(teacher || student)` at temperature `T`, as PyTorch's
/// `KLDivLoss(reduction)(log_softmax(s / T), softmax(t / T))` (IMTA's OFA loss, DESIGN.md):
/// `sum_{n,j} p_nj * (log p_nj - log q_nj)` with `p = softmax(t / T)`, `q = softmax(s / T)`
/// (terms with `p = 0` contribute 0), divided by the reduction's denominator. The teacher is
/// treated as a constant (detached).
public enum KLDivergence {
    public enum Reduction: String, Sendable, CaseIterable {
        /// PyTorch `KLDivLoss()` default: divide by `batch * classes` (what the reference uses).
        case mean
        /// Divide by `batch` (the mathematically proper KL per sample).
        case batchmean

        func denominator(batch: Int, classes: Int) -> Double {
            switch self {
            case .mean: return Double(batch * classes)
            case .batchmean: return Double(batch)
            }
        }
    }

    /// The reduced divergence (not multiplied by `T^2` or a loss weight).
    public static func forward(studentLogits: UnsafePointer<Float>, teacherLogits: UnsafePointer<Float>,
                               batch: Int, classes: Int, temperature: Float,
                               reduction: Reduction = .mean) -> Double {
        var total = 0.0
        for n in 0..<batch {
            let student = studentLogits + n * classes, teacher = teacherLogits + n * classes
            let (studentMaximum, studentLogSum) = SoftmaxRow.logNormalizer(student, columns: classes, temperature: temperature)
            let (teacherMaximum, teacherLogSum) = SoftmaxRow.logNormalizer(teacher, columns: classes, temperature: temperature)
            var row: Float = 0
            for j in 0..<classes {
                let logTeacher = teacher[j] / temperature - teacherMaximum - teacherLogSum
                let logStudent = student[j] / temperature - studentMaximum - studentLogSum
                let probability = exp(logTeacher)
                if probability > 0 { row += probability * (logTeacher - logStudent) }
            }
            total += Double(row)
        }
        return total / reduction.denominator(batch: batch, classes: classes)
    }

    /// `studentGradient += scale * (softmax(s / T) - softmax(t / T)) / (T * denominator)`
    /// (ACCUMULATES): the gradient of `scale * forward(...)` with respect to the student logits.
    public static func backward(studentLogits: UnsafePointer<Float>, teacherLogits: UnsafePointer<Float>,
                                studentGradient: UnsafeMutablePointer<Float>,
                                batch: Int, classes: Int, temperature: Float,
                                reduction: Reduction = .mean, scale: Float = 1) {
        let factor = Float(Double(scale) / (Double(temperature) * reduction.denominator(batch: batch, classes: classes)))
        for n in 0..<batch {
            let student = studentLogits + n * classes, teacher = teacherLogits + n * classes
            let gradient = studentGradient + n * classes
            let (studentMaximum, studentLogSum) = SoftmaxRow.logNormalizer(student, columns: classes, temperature: temperature)
            let (teacherMaximum, teacherLogSum) = SoftmaxRow.logNormalizer(teacher, columns: classes, temperature: temperature)
            for j in 0..<classes {
                let studentProbability = exp(student[j] / temperature - studentMaximum - studentLogSum)
                let teacherProbability = exp(teacher[j] / temperature - teacherMaximum - teacherLogSum)
                gradient[j] += factor * (studentProbability - teacherProbability)
            }
        }
    }
}
