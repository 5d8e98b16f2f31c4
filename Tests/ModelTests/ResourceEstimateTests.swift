import XCTest
@testable import Model

/// The estimate from the configuration alone against what building the network allocates.
final class ResourceEstimateTests: XCTestCase {
    func testEstimateMatchesTheBuiltNetwork() throws {
        var imagenet = ArchitectureTests.tiny
        imagenet.stem = .imagenet
        imagenet.inputSize = 224
        imagenet.grFactor = [1, 2, 4, 4]
        imagenet.bnFactor = [1, 2, 4, 4]
        var minimum = ArchitectureTests.tiny
        minimum.prune = .min
        minimum.bottleneck = false
        for configuration in [ArchitectureTests.tiny, imagenet, minimum] {
            for batch in [1, 16] {
                let network = try MSDNet(configuration: configuration, gradientEquilibrium: true, maximumBatchSize: batch)
                let estimate = ResourceEstimate(configuration, batchSize: batch, budget: .max)
                XCTAssertFalse(estimate.exceedsBudget)
                XCTAssertEqual(estimate.parameterCount, network.architecture.parameterCount, "\(configuration)")
                let ratio = Double(estimate.activationBytes) / Double(network.activationBytes)
                XCTAssertTrue((0.7...1.4).contains(ratio), "activations estimated \(estimate.activationBytes), planned \(network.activationBytes)")
            }
        }
    }

    func testHugeConfigurationsSaturateAndStopAtTheBudget() {
        var configuration = ArchitectureTests.tiny
        configuration.nBlocks = 1 << 40
        configuration.stepmode = .linearGrowth
        XCTAssertEqual(ResourceEstimate.layerCount(configuration), .max, "5 * 10^23 layers saturate")
        let estimate = ResourceEstimate(configuration, batchSize: 1, budget: 1 << 34)
        XCTAssertTrue(estimate.exceedsBudget)
        configuration.nChannels = 1 << 62
        XCTAssertEqual(ResourceEstimate(configuration, batchSize: 1 << 40, budget: 1 << 34).totalBytes, .max)
    }
}
