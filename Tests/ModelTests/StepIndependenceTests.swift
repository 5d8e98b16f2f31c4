import Model
import XCTest

/// A training step's gradients depend only on the weights and the batch: nothing an earlier step
/// left in the planned buffers (growth-buffer gradients, GE-scaled prefixes, saved statistics)
/// may leak into the next one. A one-step reference check cannot see such a leak; training can.
final class StepIndependenceTests: XCTestCase {
    func check(_ configuration: MSDNetConfiguration, gradientEquilibrium: Bool, firstBatch: Int, secondBatch: Int) throws {
        let fresh = try MSDNet(configuration: configuration, gradientEquilibrium: gradientEquilibrium,
                               maximumBatchSize: max(firstBatch, secondBatch), seed: 3)
        let used = try MSDNet(configuration: configuration, gradientEquilibrium: gradientEquilibrium,
                              maximumBatchSize: max(firstBatch, secondBatch), seed: 3)
        let target = MSDNetGradientTests.batch(configuration, count: secondBatch, seed: 11)
        _ = MSDNetGradientTests.step(used, MSDNetGradientTests.batch(configuration, count: firstBatch, seed: 12))
        let afterOther = MSDNetGradientTests.step(used, target)
        let alone = MSDNetGradientTests.step(fresh, target)
        XCTAssertEqual(afterOther.loss, alone.loss)
        let count = fresh.trainableParameters.count
        var differing = 0
        for index in 0..<count where fresh.trainableParameters.gradients[index] != used.trainableParameters.gradients[index] {
            differing += 1
        }
        XCTAssertEqual(differing, 0, "\(differing) of \(count) gradient values differ after an earlier step")
    }

    func testGradientsDoNotDependOnTheStepBefore() throws {
        for ge in [true, false] {
            try check(MSDNetGradientTests.small, gradientEquilibrium: ge, firstBatch: 4, secondBatch: 4)
            try check(MSDNetGradientTests.small, gradientEquilibrium: ge, firstBatch: 5, secondBatch: 3)
            try check(MSDNetGradientTests.small, gradientEquilibrium: ge, firstBatch: 2, secondBatch: 5)
        }
    }

    func testFiveBlockFashionMNISTNetGradientsDoNotDependOnTheStepBefore() throws {
        let configuration = MSDNetConfiguration(stem: .cifar, inputChannels: 1, inputSize: 32, classes: 10, nBlocks: 5,
                                                stepmode: .linearGrowth, step: 1, base: 1, nChannels: 16, growthRate: 6,
                                                grFactor: [1, 2, 4], bnFactor: [1, 2, 4], prune: .max, reduction: 0.5,
                                                bottleneck: true)
        try check(configuration, gradientEquilibrium: true, firstBatch: 4, secondBatch: 4)
        try check(configuration, gradientEquilibrium: true, firstBatch: 6, secondBatch: 3)
    }
}
