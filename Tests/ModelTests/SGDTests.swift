import Model
import XCTest

/// PyTorch `torch.optim.SGD` on hand-computed values.
final class SGDTests: XCTestCase {
    func makeArena() -> ParameterArena {
        let arena = ParameterArena(tensors: [("a", [2]), ("b", [1])])
        arena.values[0] = 1; arena.values[1] = -2; arena.values[2] = 0.5
        arena.gradients[0] = 0.5; arena.gradients[1] = 0.25; arena.gradients[2] = 0
        return arena
    }

    func testNesterovWithWeightDecayTwoSteps() {
        let arena = makeArena()
        let optimizer = SGD(parameters: arena, momentum: 0.9, nesterov: true, weightDecay: 0.1)
        optimizer.step(learningRate: 0.1)
        // d = 0.5 + 0.1 = 0.6, b = 0.6, d = 0.6 + 0.54 = 1.14, w = 1 - 0.114
        XCTAssertEqual(arena.values[0], 0.886, accuracy: 1e-6)
        // d = 0.25 - 0.2 = 0.05, b = 0.05, d = 0.095, w = -2 - 0.0095
        XCTAssertEqual(arena.values[1], -2.0095, accuracy: 1e-6)
        // d = 0.05, b = 0.05, d = 0.095
        XCTAssertEqual(arena.values[2], 0.4905, accuracy: 1e-6)
        optimizer.step(learningRate: 0.1)
        // d = 0.5 + 0.0886 = 0.5886, b = 0.54 + 0.5886 = 1.1286, d = 0.5886 + 1.01574 = 1.60434
        XCTAssertEqual(arena.values[0], 0.725566, accuracy: 1e-6)
        XCTAssertEqual(optimizer.momentumBuffer[0], 1.1286, accuracy: 1e-6)
    }

    func testPlainMomentumTwoSteps() {
        let arena = makeArena()
        let optimizer = SGD(parameters: arena, momentum: 0.9, nesterov: false, weightDecay: 0.1)
        optimizer.step(learningRate: 0.1)
        XCTAssertEqual(arena.values[0], 0.94, accuracy: 1e-6)
        optimizer.step(learningRate: 0.1)
        // d = 0.5 + 0.094 = 0.594, b = 0.54 + 0.594 = 1.134, w = 0.94 - 0.1134
        XCTAssertEqual(arena.values[0], 0.8266, accuracy: 1e-6)
    }

    func testNoMomentumNoDecayIsPlainGradientStep() {
        let arena = makeArena()
        let optimizer = SGD(parameters: arena, momentum: 0, nesterov: false, weightDecay: 0)
        optimizer.step(learningRate: 0.5)
        XCTAssertEqual(arena.values[0], 0.75, accuracy: 1e-7)
        XCTAssertEqual(arena.values[1], -2.125, accuracy: 1e-7)
        XCTAssertEqual(arena.values[2], 0.5, accuracy: 1e-7)
    }

    func testMomentumTensorsShareParameterKeys() {
        let arena = makeArena()
        let optimizer = SGD(parameters: arena, momentum: 0.9, nesterov: true, weightDecay: 0)
        XCTAssertEqual(optimizer.momentumTensors.map(\.name), ["a", "b"])
        XCTAssertEqual(optimizer.momentumTensors.map(\.shape), [[2], [1]])
    }
}
