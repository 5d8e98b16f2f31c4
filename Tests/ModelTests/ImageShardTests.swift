import Model
import XCTest

/// A batch split into image shards, one thread each (`ImageShards`), computes what one plan
/// computes on the whole batch: the same logits, losses, parameter gradients and running
/// statistics, up to the order in which the shards' sums are added. Checked against a network
/// of one shard with the same weights, for 2 and 3 shards, even and uneven splits, a batch smaller
/// than the shard count, synchronised BatchNorm across (simulated) ranks and the phase-II heads.
final class ImageShardTests: XCTestCase {
    /// Two identical replicas: every sum doubles, as if a second rank held the same images.
    final class MirroredReplica: CrossReplicaReducer {
        var replicaCount: Int { 2 }
        func sumInPlace(_ values: UnsafeMutableBufferPointer<Float>) {
            for index in values.indices { values[index] *= 2 }
        }
    }

    static func assertClose(_ actual: UnsafePointer<Float>, _ expected: UnsafePointer<Float>, count: Int, _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        var worst = 0
        var worstExcess: Float = 0
        for index in 0..<count {
            let excess = abs(actual[index] - expected[index]) - (1e-5 + 1e-4 * abs(expected[index]))
            if excess > worstExcess {
                worstExcess = excess
                worst = index
            }
        }
        XCTAssertLessThanOrEqual(worstExcess, 0, "\(what)[\(worst)]: \(actual[worst]) against \(expected[worst])", file: file, line: line)
    }

    /// One training step and one evaluation forward on both networks, compared.
    func compare(_ configuration: MSDNetConfiguration, shards: Int, maximumBatchSize: Int, batches: [Int],
                 reducer: CrossReplicaReducer? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let whole = try MSDNet(configuration: configuration, gradientEquilibrium: true, maximumBatchSize: maximumBatchSize, seed: 5,
                               imageShards: 1)
        let split = try MSDNet(configuration: configuration, gradientEquilibrium: true, maximumBatchSize: maximumBatchSize, seed: 5,
                               imageShards: shards)
        XCTAssertEqual(whole.imageShardCount, 1, file: file, line: line)
        XCTAssertEqual(split.imageShardCount, shards, file: file, line: line)
        whole.batchNormReducer = reducer
        split.batchNormReducer = reducer
        for (position, count) in batches.enumerated() {
            let batch = MSDNetGradientTests.batch(configuration, count: count, seed: UInt64(20 + position))
            let expected = MSDNetGradientTests.step(whole, batch)
            let actual = MSDNetGradientTests.step(split, batch)
            let what = "\(shards) shards, batch \(count)"
            XCTAssertEqual(actual.loss, expected.loss, accuracy: 1e-5 * max(1, abs(expected.loss)), what, file: file, line: line)
            XCTAssertEqual(actual.exitCorrect, expected.exitCorrect, what, file: file, line: line)
            for exit in 0..<whole.exitCount {
                Self.assertClose(split.logits(exit: exit), whole.logits(exit: exit), count: count * whole.classCount,
                                 "\(what): exit \(exit) logits", file: file, line: line)
            }
            Self.assertClose(split.parameters.gradients, whole.parameters.gradients, count: whole.parameters.count,
                             "\(what): gradients", file: file, line: line)
            // The running statistics moved once per step, by the whole batch's statistics.
            Self.assertClose(split.buffers.values, whole.buffers.values, count: whole.buffers.count,
                             "\(what): running statistics", file: file, line: line)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: split.buffers.counters, count: split.buffers.counterNames.count)),
                           Array(UnsafeBufferPointer(start: whole.buffers.counters, count: whole.buffers.counterNames.count)),
                           what, file: file, line: line)
            batch.images.withUnsafeBufferPointer { images in
                whole.forward(images: images.baseAddress!, count: count, training: false)
                split.forward(images: images.baseAddress!, count: count, training: false)
            }
            for exit in 0..<whole.exitCount {
                Self.assertClose(split.logits(exit: exit), whole.logits(exit: exit), count: count * whole.classCount,
                                 "\(what): exit \(exit) evaluation logits", file: file, line: line)
                Self.assertClose(split.pooledFeatures(exit: exit), whole.pooledFeatures(exit: exit),
                                 count: count * whole.architecture.blocks[exit].classifier.featureWidth,
                                 "\(what): exit \(exit) pooled features", file: file, line: line)
            }
        }
    }

    func testCIFARStemShardsMatchOnePlan() throws {
        try compare(MSDNetGradientTests.small, shards: 2, maximumBatchSize: 8, batches: [8, 5, 1])
        try compare(MSDNetGradientTests.small, shards: 3, maximumBatchSize: 8, batches: [7, 2])
    }

    func testImageNetStemShardsMatchOnePlan() throws {
        try compare(EarlyExitInferenceTests.imagenet, shards: 2, maximumBatchSize: 6, batches: [6, 3])
    }

    func testSynchronisedBatchNormOverShardsAndRanks() throws {
        try compare(MSDNetGradientTests.small, shards: 2, maximumBatchSize: 6, batches: [6, 3], reducer: MirroredReplica())
    }

    /// Phase II reads the pooled features the shards gathered, and trains the heads on them.
    func testPhaseTwoHeadsOnShards() throws {
        var losses: [[Double]] = []
        var gradients: [[Float]] = []
        for shards in [1, 2] {
            let backbone = try MSDNet(configuration: MSDNetGradientTests.small, gradientEquilibrium: true, maximumBatchSize: 6, seed: 2,
                                      imageShards: shards)
            let network = IMTANetwork(backbone: backbone, distillation: OneForAllDistillation(temperature: 2, gamma: 0.3),
                                      detachCollaboration: false, seed: 4)
            let batch = MSDNetGradientTests.batch(MSDNetGradientTests.small, count: 5, seed: 9)
            let result = batch.images.withUnsafeBufferPointer { images in
                batch.labels.withUnsafeBufferPointer { labels in
                    network.trainingStep(images: images.baseAddress!, labels: labels.baseAddress!, count: batch.count)
                }
            }
            losses.append(result.exitLosses)
            gradients.append(Array(UnsafeBufferPointer(start: network.heads.gradients, count: network.heads.count)))
        }
        for (actual, expected) in zip(losses[1], losses[0]) { XCTAssertEqual(actual, expected, accuracy: 1e-5 * max(1, abs(expected))) }
        gradients[1].withUnsafeBufferPointer { actual in
            gradients[0].withUnsafeBufferPointer { expected in
                Self.assertClose(actual.baseAddress!, expected.baseAddress!, count: expected.count, "head gradients")
            }
        }
        XCTAssertGreaterThan(gradients[0].filter { $0 != 0 }.count, gradients[0].count / 2)
    }

    /// The arena's gradients are final only once every shard's are added: the observer hears once,
    /// from offset 0, when they hold their final values.
    func testTheGradientObserverHearsOnceTheShardsAreSummed() throws {
        final class Recorder: GradientReadyObserver {
            let arena: ParameterArena
            var reports: [(offset: Int, gradients: [Float])] = []
            init(_ arena: ParameterArena) { self.arena = arena }
            func gradientsAreFinal(from offset: Int) {
                reports.append((offset, Array(UnsafeBufferPointer(start: arena.gradients, count: arena.count))))
            }
        }
        let network = try MSDNet(configuration: MSDNetGradientTests.small, gradientEquilibrium: true, maximumBatchSize: 6, seed: 3,
                                 imageShards: 2)
        let recorder = Recorder(network.parameters)
        network.gradientReadyObserver = recorder
        _ = MSDNetGradientTests.step(network, MSDNetGradientTests.batch(MSDNetGradientTests.small, count: 6, seed: 5))
        XCTAssertEqual(recorder.reports.map(\.offset), [0])
        XCTAssertEqual(recorder.reports.first?.gradients,
                       Array(UnsafeBufferPointer(start: network.parameters.gradients, count: network.parameters.count)))
    }

    func testShardCountFollowsThreadsAndBatchSize() {
        XCTAssertEqual(ImageShards.count(threads: 2, maximumBatchSize: 64), 2)
        XCTAssertEqual(ImageShards.count(threads: 2, maximumBatchSize: 31), 1, "too few images per shard")
        XCTAssertEqual(ImageShards.count(threads: 1, maximumBatchSize: 64), 1)
    }
}
