@testable import DataPipeline
@testable import DistTrain
import XCTest

final class DataSamplerTests: XCTestCase {
    func testHoldoutIsDisjointCompleteAndDeterministic() throws {
        let split = try Sampler.holdout(trainingCount: 1000, holdout: 100, seed: 42)
        XCTAssertEqual(split.validation.count, 100)
        XCTAssertEqual(split.training.count, 900)
        XCTAssertTrue(Set(split.training).isDisjoint(with: split.validation))
        XCTAssertEqual(Set(split.training).union(split.validation), Set(0..<1000))
        XCTAssertEqual(split.validation, split.validation.sorted())
        let again = try Sampler.holdout(trainingCount: 1000, holdout: 100, seed: 42)
        XCTAssertEqual(again.validation, split.validation)
        let otherSeed = try Sampler.holdout(trainingCount: 1000, holdout: 100, seed: 43)
        XCTAssertNotEqual(otherSeed.validation, split.validation)
        // Restoring the hold-out from a checkpoint gives back the same training set.
        XCTAssertEqual(try Sampler.complement(of: split.validation, trainingCount: 1000), split.training)
    }

    /// The reference holds out `torch.randperm(n)[-5000:]`: a uniformly random subset. Over 4,000
    /// seeds every index of 50 is held out (5 of them) within 5 standard deviations of 10% of the
    /// draws, so no position (the file's last images, say) is favoured.
    func testHoldoutIsAUniformlyRandomSubset() throws {
        let draws = 4000
        var heldOut = [Int](repeating: 0, count: 50)
        for seed in 0..<draws {
            for index in try Sampler.holdout(trainingCount: 50, holdout: 5, seed: UInt64(seed)).validation { heldOut[index] += 1 }
        }
        let mean = Double(draws) * 0.1, deviation = (mean * 0.9).squareRoot()
        for (index, count) in heldOut.enumerated() {
            XCTAssertLessThanOrEqual(abs(Double(count) - mean), 5 * deviation, "index \(index) held out \(count) times")
        }
    }

    func testHoldoutLargerThanTheTrainingSetIsAnError() {
        XCTAssertThrowsError(try Sampler.holdout(trainingCount: 100, holdout: 100, seed: 0)) { error in
            guard case .holdoutTooLarge(100, 100) = error as? DataError else { return XCTFail("got \(error)") }
        }
        XCTAssertThrowsError(try Sampler.complement(of: [3, 100], trainingCount: 100)) { error in
            guard case .invalidValidationIndex(100, 100) = error as? DataError else { return XCTFail("got \(error)") }
        }
    }

    func testEpochOrderIsAPermutationFixedBySeedAndEpoch() {
        let sampler = Sampler(trainingIndices: Array(stride(from: 0, to: 300, by: 3)), seed: 9)
        let order = sampler.epochOrder(epoch: 4)
        XCTAssertEqual(order.sorted(), sampler.trainingIndices)
        XCTAssertEqual(order, Sampler(trainingIndices: sampler.trainingIndices, seed: 9).epochOrder(epoch: 4))
        XCTAssertNotEqual(order, sampler.epochOrder(epoch: 5))
        XCTAssertNotEqual(order, sampler.trainingIndices)
    }

    func testRankSlicesUnionToTheGlobalBatchForAnyWorldSize() {
        let sampler = Sampler(trainingIndices: Array(0..<103), seed: 1)
        for globalBatch in [8, 10] {
            let world1 = sampler.rankBatches(epoch: 2, globalBatchSize: globalBatch, rank: 0, worldSize: 1, firstStep: 0)
            XCTAssertEqual(world1.count, 103 / globalBatch)
            for worldSize in [2, 4] {
                let ranks = (0..<worldSize).map {
                    sampler.rankBatches(epoch: 2, globalBatchSize: globalBatch, rank: $0, worldSize: worldSize, firstStep: 0)
                }
                for step in world1.indices {
                    // Rank r holds the contiguous part r of the global batch, in order.
                    XCTAssertEqual(ranks.flatMap { $0[step] }, world1[step], "world \(worldSize) step \(step)")
                    XCTAssertEqual(ranks.map { $0[step].count }.reduce(0, +), globalBatch)
                }
            }
        }
        // 10 over 4 ranks: parts 2, 3, 2, 3.
        let sizes = (0..<4).map { Sampler.rankRange(count: 10, rank: $0, worldSize: 4).count }
        XCTAssertEqual(sizes, [2, 3, 2, 3])
    }

    func testResumingMidEpochGivesTheRemainingSteps() {
        let sampler = Sampler(trainingIndices: Array(0..<64), seed: 3)
        let whole = sampler.rankBatches(epoch: 1, globalBatchSize: 8, rank: 1, worldSize: 2, firstStep: 0)
        let resumed = sampler.rankBatches(epoch: 1, globalBatchSize: 8, rank: 1, worldSize: 2, firstStep: 5)
        XCTAssertEqual(Array(whole[5...]), resumed)
    }

    func testEvaluationBatchesCoverTheSplitOnceInOrder() {
        let samples = Array(stride(from: 5, to: 5 + 2 * 23, by: 2))
        for worldSize in [1, 2, 3] {
            let all = (0..<worldSize).flatMap {
                Sampler.evaluationBatches(samples: samples, batchSize: 4, rank: $0, worldSize: worldSize).flatMap { $0 }
            }
            XCTAssertEqual(all, samples)
        }
        XCTAssertEqual(Sampler.evaluationBatches(samples: samples, batchSize: 4, rank: 0, worldSize: 2).map(\.count), [4, 4, 3])
    }
}
