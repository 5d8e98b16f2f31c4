/// Which training samples each rank sees, and when.
///
/// The validation hold-out is the last `holdout` entries of one seeded permutation of the
/// training source (as the reference's `train_set_index[-num_sample_valid:]`). Each epoch
/// shuffles the remaining training indices with a permutation keyed by (seed, epoch), the same
/// on every rank; global batch b is entries b·G ..< (b+1)·G of it, and rank r of W takes the
/// contiguous part ⌊r·G/W⌋ ..< ⌊(r+1)·G/W⌋. The union over ranks is the global batch, so the
/// samples of a (seed, epoch) do not depend on the number of ranks. A last incomplete global
/// batch is dropped.
struct Sampler {
    let trainingIndices: [Int]
    let seed: UInt64

    /// Splits 0..<trainingCount into sorted (training, validation) index lists.
    static func holdout(trainingCount: Int, holdout: Int, seed: UInt64) throws -> (training: [Int], validation: [Int]) {
        guard holdout >= 0, holdout < trainingCount else {
            throw DataError.holdoutTooLarge(holdout: holdout, trainingCount: trainingCount)
        }
        var random = SampleRandom(seed: seed, purpose: .validationHoldout)
        let permutation = random.permutation(trainingCount)
        let split = trainingCount - holdout
        return (permutation[..<split].sorted(), permutation[split...].sorted())
    }

    /// The training indices that remain when `validation` (restored from a checkpoint) is held out.
    static func complement(of validation: [Int], trainingCount: Int) throws -> [Int] {
        var held = [Bool](repeating: false, count: trainingCount)
        for index in validation {
            guard index >= 0 && index < trainingCount else {
                throw DataError.invalidValidationIndex(index: index, trainingCount: trainingCount)
            }
            held[index] = true
        }
        guard validation.count < trainingCount else {
            throw DataError.holdoutTooLarge(holdout: validation.count, trainingCount: trainingCount)
        }
        return (0..<trainingCount).filter { !held[$0] }
    }

    func stepsPerEpoch(globalBatchSize: Int) -> Int {
        trainingIndices.count / globalBatchSize
    }

    /// The training indices of `epoch` in the order they are visited.
    func epochOrder(epoch: Int) -> [Int] {
        var random = SampleRandom(seed: seed, purpose: .epochPermutation, epoch: epoch)
        return random.permutation(trainingIndices.count).map { trainingIndices[$0] }
    }

    /// The positions of rank `rank`'s part in a batch of `count` split over `worldSize` ranks.
    static func rankRange(count: Int, rank: Int, worldSize: Int) -> Range<Int> {
        (count * rank / worldSize)..<(count * (rank + 1) / worldSize)
    }

    /// Rank `rank`'s samples of every step of `epoch` from `firstStep` on.
    func rankBatches(epoch: Int, globalBatchSize: Int, rank: Int, worldSize: Int, firstStep: Int) -> [[Int]] {
        let order = epochOrder(epoch: epoch)
        let part = Self.rankRange(count: globalBatchSize, rank: rank, worldSize: worldSize)
        let steps = stepsPerEpoch(globalBatchSize: globalBatchSize)
        return (min(firstStep, steps)..<steps).map { step in
            Array(order[(step * globalBatchSize + part.lowerBound)..<(step * globalBatchSize + part.upperBound)])
        }
    }

    /// Rank `rank`'s contiguous part of `samples`, cut into batches of at most `batchSize`.
    static func evaluationBatches(samples: [Int], batchSize: Int, rank: Int, worldSize: Int) -> [[Int]] {
        let part = rankRange(count: samples.count, rank: rank, worldSize: worldSize)
        return stride(from: part.lowerBound, to: part.upperBound, by: batchSize).map {
            Array(samples[$0..<min($0 + batchSize, part.upperBound)])
        }
    }
}
