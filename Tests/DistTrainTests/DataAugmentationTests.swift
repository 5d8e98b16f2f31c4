@testable import DataPipeline
@testable import DistTrain
import XCTest

final class DataAugmentationTests: XCTestCase {
    let unitNormalization = Normalization(mean: [0], standardDeviation: [1 / 255.0])

    func testPaddedCropKnownValues() {
        // Image 2×3 [[10, 20, 30], [40, 50, 60]] on a 4×4 canvas (offset 1 row, 0 columns),
        // padding 1, crop corner (0, 2), flipped: row y = image row y − 2, column 3 − x + 1.
        let image: [UInt8] = [10, 20, 30, 40, 50, 60]
        let crop = PaddedCrop(outputSize: 4, padding: 1, normalization: Normalization(mean: [0.5], standardDeviation: [0.25]))
        var output = [Float](repeating: .nan, count: 16)
        crop.apply(image: image, channels: 1, height: 2, width: 3, choice: .init(top: 0, left: 2, flip: true),
                   destination: &output, channelStride: 16)
        func normalised(_ pixel: Float) -> Float { (pixel / 255 - 0.5) / 0.25 }
        let pad = normalised(0)
        var expected = [Float](repeating: pad, count: 16)
        expected[10] = normalised(30)
        expected[11] = normalised(20)
        expected[14] = normalised(60)
        expected[15] = normalised(50)
        for index in 0..<16 { XCTAssertEqual(output[index], expected[index], accuracy: 1e-6, "pixel \(index)") }
    }

    /// Compares with an independent construction: build the zero-padded canvas explicitly, cut
    /// the crop, mirror it, normalise.
    func testPaddedCropMatchesExplicitPaddingOnCIFARSizedImages() {
        let normalization = Normalization.of(.cifar10)
        let crop = PaddedCrop(outputSize: 32, padding: 4, normalization: normalization)
        let image: [UInt8] = (0..<3072).map { (index: Int) -> UInt8 in UInt8((index * 31 + 7) % 256) }
        var random = SampleRandom(seed: 5, purpose: .augmentation, epoch: 1, index: 2)
        for _ in 0..<20 {
            let choice = crop.randomChoice(&random)
            XCTAssertTrue((0...8).contains(choice.top) && (0...8).contains(choice.left))
            var output = [Float](repeating: .nan, count: 3 * 32 * 32 * 2)
            // Channel stride 2·32·32: the sample sits in a batch of two.
            crop.apply(image: image, channels: 3, height: 32, width: 32, choice: choice, destination: &output, channelStride: 2048)
            for channel in 0..<3 {
                var canvas = [UInt8](repeating: 0, count: 40 * 40)
                for y in 0..<32 { for x in 0..<32 { canvas[(y + 4) * 40 + x + 4] = image[channel * 1024 + y * 32 + x] } }
                for y in 0..<32 {
                    for x in 0..<32 {
                        let cropX = choice.flip ? 31 - x : x
                        let pixel = Float(canvas[(choice.top + y) * 40 + choice.left + cropX])
                        let expected = (pixel / 255 - normalization.mean[channel]) / normalization.standardDeviation[channel]
                        XCTAssertEqual(output[channel * 2048 + y * 32 + x], expected, accuracy: 1e-5)
                    }
                }
            }
        }
    }

    /// torchvision's `RandomCrop(32, padding=4)` draws the corner with `torch.randint(0, 40 - 32 + 1)`
    /// per axis, uniform over 0...8, and `RandomHorizontalFlip()` flips with probability 0.5, each
    /// sample independently. Over 18,000 samples drawn as the loader keys them (seed, epoch, sample):
    /// every corner value and every (top, left) pair within 5 standard deviations of uniform, none
    /// outside 0...8, and the flip rate within 5 standard deviations of 0.5, also among the samples
    /// of each top value (the flip does not depend on the corner).
    func testCropCornerAndFlipFollowTorchvisionDistributions() {
        let crop = PaddedCrop(outputSize: 32, padding: 4, normalization: Normalization.of(.cifar10))
        let samples = 18_000
        var tops = [Int](repeating: 0, count: 9), lefts = [Int](repeating: 0, count: 9)
        var pairs = [Int](repeating: 0, count: 81), flipsByTop = [Int](repeating: 0, count: 9)
        for sample in 0..<samples {
            var random = SampleRandom(seed: 3, purpose: .augmentation, epoch: sample / 1000, index: sample % 1000)
            let choice = crop.randomChoice(&random)
            guard (0...8).contains(choice.top), (0...8).contains(choice.left) else {
                return XCTFail("corner (\(choice.top), \(choice.left)) outside 0...8")
            }
            tops[choice.top] += 1
            lefts[choice.left] += 1
            pairs[choice.top * 9 + choice.left] += 1
            if choice.flip { flipsByTop[choice.top] += 1 }
        }
        func withinFiveDeviations(_ count: Int, trials: Int, probability: Double) -> Bool {
            let mean = Double(trials) * probability
            return abs(Double(count) - mean) <= 5 * (mean * (1 - probability)).squareRoot()
        }
        for value in 0...8 {
            XCTAssertTrue(withinFiveDeviations(tops[value], trials: samples, probability: 1.0 / 9), "top \(value): \(tops)")
            XCTAssertTrue(withinFiveDeviations(lefts[value], trials: samples, probability: 1.0 / 9), "left \(value): \(lefts)")
            XCTAssertTrue(withinFiveDeviations(flipsByTop[value], trials: tops[value], probability: 0.5),
                          "flips at top \(value): \(flipsByTop[value]) of \(tops[value])")
        }
        for pair in 0..<81 {
            XCTAssertTrue(withinFiveDeviations(pairs[pair], trials: samples, probability: 1.0 / 81), "corner \(pair / 9), \(pair % 9): \(pairs[pair])")
        }
        XCTAssertTrue(withinFiveDeviations(flipsByTop.reduce(0, +), trials: samples, probability: 0.5), "flips \(flipsByTop.reduce(0, +))")
    }

    func testFashionMNISTIsCentredInThe32Canvas() {
        let image: [UInt8] = (0..<28 * 28).map { UInt8($0 % 200 + 1) }
        let crop = PaddedCrop(outputSize: 32, padding: 4, normalization: Normalization.of(.fashionMNIST))
        var output = [Float](repeating: .nan, count: 32 * 32)
        crop.apply(image: image, channels: 1, height: 28, width: 28, choice: crop.centred, destination: &output, channelStride: 1024)
        let zero = (0 - Float(0.2860)) / 0.3530
        XCTAssertEqual(output[0], zero, accuracy: 1e-6)
        XCTAssertEqual(output[1 * 32 + 31], zero, accuracy: 1e-6)
        XCTAssertEqual(output[2 * 32 + 2], (Float(image[0]) / 255 - 0.2860) / 0.3530, accuracy: 1e-6)
        XCTAssertEqual(output[29 * 32 + 29], (Float(image[27 * 28 + 27]) / 255 - 0.2860) / 0.3530, accuracy: 1e-6)
        XCTAssertEqual(output[30 * 32 + 29], zero, accuracy: 1e-6)
    }

    func resample(_ image: [UInt8], channels: Int, width: Int, vertical: ResampleAxis, horizontal: ResampleAxis,
                  flip: Bool = false) -> [Float] {
        var output = [Float](repeating: .nan, count: channels * vertical.outputCount * horizontal.outputCount)
        BilinearResampler().resample(source: image, rowStride: width * channels, channels: channels,
                                     vertical: vertical, horizontal: horizontal, flip: flip,
                                     normalization: Normalization(mean: [Float](repeating: 0, count: channels),
                                                                  standardDeviation: [Float](repeating: 1 / 255.0, count: channels)),
                                     destination: &output, channelStride: vertical.outputCount * horizontal.outputCount)
        return output
    }

    /// Upscaling [0, 255] to four pixels by hand: centres 0.25, 0.75, 1.25, 1.75 against source
    /// centres 0.5, 1.5 give 0, 0.25·255, 0.75·255, 255.
    func testBilinearUpscaleByHand() {
        let output = resample([0, 255], channels: 1, width: 2,
                              vertical: ResampleAxis(origin: 0, scale: 1, lower: 0, upper: 1, outputCount: 1),
                              horizontal: ResampleAxis(origin: 0, scale: 0.5, lower: 0, upper: 2, outputCount: 4))
        XCTAssertEqual(output, [0, 63.75, 191.25, 255])
    }

    /// Halving averages pairs (support 2: taps ±1.5 around each centre with weights 1/4, 3/4, 3/4, 1/4 → normalised).
    func testBilinearHalvingByHand() {
        let row: [UInt8] = [0, 100, 200, 40]
        let output = resample(row, channels: 1, width: 4,
                              vertical: ResampleAxis(origin: 0, scale: 1, lower: 0, upper: 1, outputCount: 1),
                              horizontal: ResampleAxis(origin: 0, scale: 2, lower: 0, upper: 4, outputCount: 2))
        // Centre 1: taps 0,1,2 with weights 0.75, 0.75, 0.25 → (0 + 75 + 50) / 1.75.
        // Centre 3: taps 1,2,3 with weights 0.25, 0.75, 0.75 → (25 + 150 + 30) / 1.75.
        XCTAssertEqual(output[0], 125 / 1.75, accuracy: 1e-4)
        XCTAssertEqual(output[1], 205 / 1.75, accuracy: 1e-4)
    }

    /// Values from numpy (dense weight matrices W_v · image · W_hᵀ of the same triangle filter).
    static let numpyImage: [UInt8] = [0, 11, 22, 33, 44, 55, 66, 77, 88, 37, 68, 99, 130, 161, 92, 123, 154, 185, 74, 125, 176, 127, 178, 129, 180, 231, 182, 111, 182, 153, 224, 195, 166, 237, 208, 23, 148, 239, 230, 221, 212, 203, 38, 29, 20, 185, 196, 207, 218, 229, 240, 251, 6, 17, 222, 253, 28, 59, 90, 21, 52, 83, 114]

    func testBilinearDownscaleMatchesNumpy() {
        let output = resample(Self.numpyImage, channels: 1, width: 9,
                              vertical: ResampleAxis(origin: 0, scale: 7.0 / 3, lower: 0, upper: 7, outputCount: 3),
                              horizontal: ResampleAxis(origin: 0, scale: 9.0 / 4, lower: 0, upper: 9, outputCount: 4))
        let expected: [Float] = [55.0327, 96.3449, 106.5122, 139.8653, 152.0134, 187.7848, 173.6585, 126.7193,
                                 196.951, 165.6481, 145.1533, 62.7469]
        for index in expected.indices { XCTAssertEqual(output[index], expected[index], accuracy: 2e-3, "pixel \(index)") }
    }

    func testBilinearCropUpscaleMatchesNumpyAndFlips() {
        let region = ImageNetGeometry.Region(top: 2, left: 3, height: 3, width: 4)
        let axes = ImageNetGeometry.cropAxes(region, outputSize: 5)
        let output = resample(Self.numpyImage, channels: 1, width: 9, vertical: axes.vertical, horizontal: axes.horizontal)
        let expected: [Float] = [127.0, 162.7, 153.5, 144.3, 180.0, 165.8, 179.1, 164.3, 161.5, 202.8, 224.0, 203.7,
                                 180.5, 187.3, 237.0, 222.2, 210.3, 196.7, 167.02, 117.6, 221.0, 214.7, 207.5, 153.5, 38.0]
        for index in expected.indices { XCTAssertEqual(output[index], expected[index], accuracy: 2e-3, "pixel \(index)") }
        let flipped = resample(Self.numpyImage, channels: 1, width: 9, vertical: axes.vertical, horizontal: axes.horizontal, flip: true)
        for y in 0..<5 { for x in 0..<5 { XCTAssertEqual(flipped[y * 5 + x], output[y * 5 + 4 - x]) } }
    }

    func testInterleavedChannelsResampleIndependently() {
        // Three channels: c0 = image, c1 = 255 − image, c2 = constant 77.
        let image: [UInt8] = Self.numpyImage.flatMap { (pixel: UInt8) -> [UInt8] in [pixel, 255 - pixel, 77] }
        let vertical = ResampleAxis(origin: 0, scale: 7.0 / 3, lower: 0, upper: 7, outputCount: 3)
        let horizontal = ResampleAxis(origin: 0, scale: 9.0 / 4, lower: 0, upper: 9, outputCount: 4)
        let single = resample(Self.numpyImage, channels: 1, width: 9, vertical: vertical, horizontal: horizontal)
        let output = resample(image, channels: 3, width: 9, vertical: vertical, horizontal: horizontal)
        for index in 0..<12 {
            XCTAssertEqual(output[index], single[index], accuracy: 1e-3)
            XCTAssertEqual(output[12 + index], 255 - single[index], accuracy: 1e-3)
            XCTAssertEqual(output[24 + index], 77, accuracy: 1e-3)
        }
    }

    func testRandomResizedCropStaysInsideAndIsDeterministic() {
        for index in 0..<200 {
            var random = SampleRandom(seed: 1, purpose: .augmentation, epoch: 0, index: index)
            var again = random
            let region = ImageNetGeometry.randomResizedCropRegion(height: 375, width: 500, random: &random)
            XCTAssertEqual(region, ImageNetGeometry.randomResizedCropRegion(height: 375, width: 500, random: &again))
            XCTAssertTrue(region.top >= 0 && region.left >= 0 && region.top + region.height <= 375 && region.left + region.width <= 500)
            let area = Double(region.height * region.width) / Double(375 * 500)
            XCTAssertTrue(area >= 0.075 && area <= 1.0, "area fraction \(area)")
            let aspect = Double(region.width) / Double(region.height)
            XCTAssertTrue(aspect >= 0.74 && aspect <= 1.35, "aspect \(aspect)")
        }
    }

    func testRandomResizedCropFallsBackToCentredClampedRatio() {
        // 10×1000: any area ≥ 8% needs a height above 10, so all ten tries fail; the image's
        // ratio 100 is clamped to 4/3: height 10, width round(13.33) = 13, centred.
        var random = SampleRandom(seed: 3, purpose: .augmentation)
        XCTAssertEqual(ImageNetGeometry.randomResizedCropRegion(height: 10, width: 1000, random: &random),
                       .init(top: 0, left: 493, height: 10, width: 13))
    }

    func testEvaluationResizeThenCentreCropGeometry() {
        // 300×400 → Resize(256): 256×341 (341.33 truncated); CenterCrop(224): top 16, left round(58.5) = 58.
        let axes = ImageNetGeometry.resizeThenCentreCropAxes(height: 300, width: 400, resize: 256, crop: 224)
        XCTAssertEqual(axes.vertical, ResampleAxis(origin: 16 * 300 / 256.0, scale: 300 / 256.0, lower: 0, upper: 300, outputCount: 224))
        XCTAssertEqual(axes.horizontal.origin, 58 * 400 / 341.0, accuracy: 1e-12)
        XCTAssertEqual(axes.horizontal.scale, 400 / 341.0, accuracy: 1e-12)
    }

    func testSampleRandomIsKeyedByItsCounters() {
        var first = SampleRandom(seed: 7, purpose: .augmentation, epoch: 2, index: 11)
        var same = SampleRandom(seed: 7, purpose: .augmentation, epoch: 2, index: 11)
        var otherEpoch = SampleRandom(seed: 7, purpose: .augmentation, epoch: 3, index: 11)
        let values = (0..<4).map { _ in first.nextUInt64() }
        XCTAssertEqual(values, (0..<4).map { _ in same.nextUInt64() })
        XCTAssertNotEqual(values, (0..<4).map { _ in otherEpoch.nextUInt64() })
        var counts = [Int](repeating: 0, count: 9)
        for _ in 0..<9000 { counts[first.nextInt(in: 0, 8)] += 1 }
        XCTAssertTrue(counts.allSatisfy { $0 > 850 && $0 < 1150 }, "\(counts)")
    }
}
