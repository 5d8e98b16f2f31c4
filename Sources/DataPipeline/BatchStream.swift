import Foundation

/// One batch handed to the trainer: images channel-major `[C, count, S, S]`, normalised.
/// The storage is a slot of the stream's ring: its contents stay valid until the stream's next
/// `next()`, and the batch keeps the ring's memory alive even if the stream itself is released.
public struct Batch {
    public let images: UnsafePointer<Float>
    public let labels: UnsafePointer<Int32>
    public let count: Int
    /// Which samples of the source these are, in batch order.
    public let sampleIndices: [Int]
    private let storage: AnyObject

    init(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, count: Int, sampleIndices: [Int], storage: AnyObject) {
        self.images = images
        self.labels = labels
        self.count = count
        self.sampleIndices = sampleIndices
        self.storage = storage
    }
}

/// Batches decoded and augmented on background threads into a ring of reusable buffers.
///
/// Worker threads claim batches in order and fill ring slot b mod K, waiting only for the
/// trainer to hand that slot back; `next()` returns batches in order and blocks only when the
/// next batch is not ready yet (counted in `dataWaitSeconds`). Sample s of epoch e is augmented
/// with the random stream keyed by (seed, e, s), so which worker renders it changes nothing.
public final class BatchStream {
    private let state: StreamState
    private var nextBatch = 0
    public private(set) var dataWaitSeconds: Double = 0
    /// Samples this rank will see in total.
    public let sampleCount: Int

    init(batches: [[Int]], renderer: SampleRenderer, augmentation: (seed: UInt64, epoch: Int)?, workers: Int) {
        sampleCount = batches.reduce(0) { $0 + $1.count }
        let slotCount = max(1, workers) + 2
        state = StreamState(batches: batches, renderer: renderer, augmentation: augmentation, slotCount: slotCount)
        for _ in 0..<min(max(1, workers), max(1, batches.count)) {
            let state = self.state
            let thread = Thread { state.work() }
            thread.name = "disttrain-data"
            thread.start()
        }
    }

    deinit { state.cancel() }

    /// Number of batches in the stream.
    public var batchCount: Int { state.batches.count }

    /// The next batch, or nil at the end. Rethrows the first error a worker met on this batch.
    public func next() throws -> Batch? {
        let waitStart = DispatchTime.now().uptimeNanoseconds
        let result = try state.take(batch: nextBatch)
        dataWaitSeconds += Double(DispatchTime.now().uptimeNanoseconds - waitStart) * 1e-9
        guard result != nil else { return nil }
        nextBatch += 1
        return result
    }
}

/// The ring shared by the stream and its workers, guarded by one condition variable.
// Unchecked: ring slots and counters change only under the condition variable; a slot's buffers are written by the one worker that claimed it.
private final class StreamState: @unchecked Sendable {
    let batches: [[Int]]
    let renderer: SampleRenderer
    let augmentation: (seed: UInt64, epoch: Int)?
    let slotCount: Int
    private let largestBatch: Int
    private let imageCapacity: Int
    private let images: UnsafeMutablePointer<Float>
    private let labels: UnsafeMutablePointer<Int32>
    /// The batch each slot holds once rendered (-1: none yet).
    private var readyBatch: [Int]
    private var slotError: [Error?]
    /// Batches below this have been handed back by the trainer, so their slots are free.
    private var releasedBelow = 0
    private var claimed = 0
    private var cancelled = false
    private let condition = NSCondition()

    init(batches: [[Int]], renderer: SampleRenderer, augmentation: (seed: UInt64, epoch: Int)?, slotCount: Int) {
        self.batches = batches
        self.renderer = renderer
        self.augmentation = augmentation
        self.slotCount = slotCount
        largestBatch = batches.map(\.count).max() ?? 0
        imageCapacity = renderer.channels * largestBatch * renderer.outputSize * renderer.outputSize
        images = .allocate(capacity: max(1, imageCapacity * slotCount))
        labels = .allocate(capacity: max(1, largestBatch * slotCount))
        readyBatch = [Int](repeating: -1, count: slotCount)
        slotError = [Error?](repeating: nil, count: slotCount)
    }

    deinit {
        images.deallocate()
        labels.deallocate()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// A worker: claims the next batch, waits for its slot, renders it, publishes it.
    func work() {
        let scratch = renderer.makeScratch()
        while true {
            condition.lock()
            guard !cancelled, claimed < batches.count else {
                condition.unlock()
                return
            }
            let batch = claimed
            claimed += 1
            while !cancelled && batch >= releasedBelow + slotCount { condition.wait() }
            if cancelled {
                condition.unlock()
                return
            }
            condition.unlock()

            let slot = batch % slotCount
            var failure: Error?
            do {
                try render(batch: batch, slot: slot, scratch: scratch)
            } catch {
                failure = error
            }

            condition.lock()
            readyBatch[slot] = batch
            slotError[slot] = failure
            condition.broadcast()
            condition.unlock()
        }
    }

    private func render(batch: Int, slot: Int, scratch: AnyObject?) throws {
        let samples = batches[batch]
        let size = renderer.outputSize
        let channelStride = samples.count * size * size
        let base = images + slot * imageCapacity
        for (position, sample) in samples.enumerated() {
            let random = augmentation.map { SampleRandom(seed: $0.seed, purpose: .augmentation, epoch: $0.epoch, index: sample) }
            try renderer.render(sample: sample, random: random, scratch: scratch,
                                destination: base + position * size * size, channelStride: channelStride)
            labels[slot * largestBatch + position] = renderer.label(of: sample)
        }
    }

    /// Frees the slots of batches before `batch`, then waits for `batch`.
    func take(batch: Int) throws -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        if batch > releasedBelow {
            releasedBelow = batch
            condition.broadcast()
        }
        guard batch < batches.count else { return nil }
        let slot = batch % slotCount
        while readyBatch[slot] != batch { condition.wait() }
        if let error = slotError[slot] { throw error }
        return Batch(images: UnsafePointer(images + slot * imageCapacity),
                     labels: UnsafePointer(labels + slot * largestBatch),
                     count: batches[batch].count, sampleIndices: batches[batch], storage: self)
    }
}
