import Model
import XCTest

/// Every entry of `fixtures/reference-flops.json` (the reference counter run on the reference
/// builder), embedded: per-exit cumulative multiply-adds and parameters must match exactly.
final class CostCounterTests: XCTestCase {
    static func configuration(stem: MSDNetConfiguration.Stem = .cifar, inputChannels: Int = 3, inputSize: Int = 32,
                              classes: Int, nBlocks: Int, stepmode: MSDNetConfiguration.StepMode, step: Int, base: Int,
                              nChannels: Int = 16, growthRate: Int = 6, factors: [Int] = [1, 2, 4]) -> MSDNetConfiguration {
        MSDNetConfiguration(stem: stem, inputChannels: inputChannels, inputSize: inputSize, classes: classes, nBlocks: nBlocks,
                            stepmode: stepmode, step: step, base: base, nChannels: nChannels, growthRate: growthRate,
                            grFactor: factors, bnFactor: factors, prune: .max, reduction: 0.5, bottleneck: true)
    }

    static func imagenet(step: Int) -> MSDNetConfiguration {
        configuration(stem: .imagenet, inputSize: 224, classes: 1000, nBlocks: 5, stepmode: .even, step: step, base: 4,
                      nChannels: 32, growthRate: 16, factors: [1, 2, 4, 4])
    }

    func check(_ configuration: MSDNetConfiguration, madds: [Int], params: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let architecture = try MSDNetArchitecture(configuration)
        let costs = CostCounter.exitCosts(architecture)
        XCTAssertEqual(costs.map(\.multiplyAdds), madds, "multiply-adds", file: file, line: line)
        XCTAssertEqual(costs.map(\.parameters), params, "parameters", file: file, line: line)
        XCTAssertEqual(architecture.parameterCount, params.last, "total parameters", file: file, line: line)
    }

    /// Paper Table 1: 6.86, 14.35, 27.29, 48.45, 76.43, 108.85, 137.28 M.
    func testCIFAR100Table1SevenExits() throws {
        try check(Self.configuration(classes: 100, nBlocks: 7, stepmode: .linearGrowth, step: 1, base: 1),
                  madds: [6_859_876, 14_350_024, 27_291_436, 48_448_912, 76_432_628, 108_850_520, 137_280_956],
                  params: [299_704, 649_740, 1_111_388, 1_727_200, 2_384_968, 3_052_244, 3_966_664])
    }

    func testCIFAR100AnytimeSevenExits() throws {
        try check(Self.configuration(classes: 100, nBlocks: 7, stepmode: .even, step: 2, base: 4),
                  madds: [15_140_452, 25_505_992, 37_095_980, 46_331_024, 57_335_540, 66_960_728, 75_937_724],
                  params: [433_876, 876_792, 1_274_952, 1_695_548, 2_178_352, 2_603_252, 3_067_960])
    }

    func testCIFAR100BudgetedFiveExits() throws {
        try check(Self.configuration(classes: 100, nBlocks: 5, stepmode: .linearGrowth, step: 1, base: 1),
                  madds: [6_859_876, 14_350_024, 27_536_684, 41_714_576, 58_480_628],
                  params: [299_704, 649_740, 1_018_308, 1_492_424, 2_078_924])
    }

    func testCIFAR10BudgetedFiveExits() throws {
        try check(Self.configuration(classes: 10, nBlocks: 5, stepmode: .linearGrowth, step: 1, base: 1),
                  madds: [6_848_266, 14_326_804, 27_501_854, 41_668_136, 58_422_578],
                  params: [288_094, 626_520, 983_478, 1_445_984, 2_020_874])
    }

    func testFashionMNISTFiveExitsOneInputChannel() throws {
        try check(Self.configuration(inputChannels: 1, classes: 10, nBlocks: 5, stepmode: .linearGrowth, step: 1, base: 1),
                  madds: [6_553_354, 14_031_892, 27_206_942, 41_373_224, 58_127_666],
                  params: [287_806, 626_232, 983_190, 1_445_696, 2_020_586])
    }

    func testImageNetStep4() throws {
        try check(Self.imagenet(step: 4),
                  madds: [339_902_824, 685_456_720, 1_008_156_120, 1_254_472_688, 1_360_529_624],
                  params: [4_238_504, 8_772_240, 13_073_272, 16_748_416, 23_958_440])
    }

    func testImageNetStep6() throws {
        try check(Self.imagenet(step: 6),
                  madds: [339_902_824, 924_194_832, 1_517_433_848, 1_991_602_432, 2_194_420_840],
                  params: [4_238_504, 10_775_952, 17_842_936, 24_581_408, 38_678_920])
    }

    func testImageNetStep7() throws {
        try check(Self.imagenet(step: 7),
                  madds: [339_902_824, 1_058_266_480, 1_811_878_152, 2_422_156_808, 2_684_443_568],
                  params: [4_238_504, 11_889_168, 20_577_208, 29_158_384, 47_544_824])
    }
}
