import DistTrain
import Foundation
import Model
import TestSupport
import XCTest

/// The run file is read strictly: each rejection names the exact key path, and the example
/// configurations in cluster/ load with the values the reference runs use.
final class ConfigurationTests: XCTestCase {
    private var dataRoot: String!

    override func setUpWithError() throws {
        dataRoot = FileManager.default.temporaryDirectory
            .appendingPathComponent("disttrain-configuration-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dataRoot, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dataRoot)
    }

    /// The smallest valid run file: only the required keys.
    private func minimalRunFile() -> [String: Any] {
        [
            "name": "minimal",
            "data": ["dataset": "fashion-mnist", "root": dataRoot!],
            "model": ["nBlocks": 5, "stepmode": "lin_grow", "step": 1, "base": 1, "nChannels": 16],
            "phase1": ["epochs": 6, "batchSize": 64, "lr": 0.1],
            "phase2": ["epochs": 3, "batchSize": 64, "lr": 0.1],
        ]
    }

    /// Sets (or with nil removes) the value at a dotted key path.
    private func setting(_ keyPath: String, to value: Any?, in object: [String: Any]) -> [String: Any] {
        var keys = keyPath.split(separator: ".").map(String.init)
        let first = keys.removeFirst()
        var result = object
        if keys.isEmpty {
            result[first] = value
        } else {
            result[first] = setting(keys.joined(separator: "."), to: value, in: result[first] as? [String: Any] ?? [:])
        }
        return result
    }

    private func write(_ object: [String: Any]) throws -> String {
        let path = (dataRoot as NSString).appendingPathComponent("run.json")
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The error `load` throws for the run file, or a test failure if it accepts it.
    private func rejection(
        of object: [String: Any], worldSize: Int = 1, file: StaticString = #filePath, line: UInt = #line
    ) throws -> ConfigurationError? {
        let path = try write(object)
        do {
            _ = try RunConfiguration.load(path: path, worldSize: worldSize)
            XCTFail("the run file was accepted", file: file, line: line)
            return nil
        } catch let error as ConfigurationError {
            XCTAssertFalse(error.description.contains("\n"), "one line: \(error)", file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix(path + ": "), "names the file: \(error)", file: file, line: line)
            return error
        }
    }

    private func assertRejected(
        _ keyPath: String, setTo value: Any?, worldSize: Int = 1, reportedAt expectedPath: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let error = try rejection(of: setting(keyPath, to: value, in: minimalRunFile()), worldSize: worldSize, file: file, line: line)
        XCTAssertEqual(error?.keyPath, expectedPath ?? keyPath, "\(error.map(String.init(describing:)) ?? "")", file: file, line: line)
    }

    // MARK: - The valid files

    func testMinimalRunFileTakesTheDocumentedDefaults() throws {
        let configuration = try RunConfiguration.load(path: write(minimalRunFile()), worldSize: 1)
        XCTAssertEqual(configuration.resolvedRunDirectory, "runs/minimal")
        XCTAssertEqual(configuration.seed, 0)
        XCTAssertNil(configuration.threadsPerRank)
        XCTAssertTrue(configuration.gradientEquilibrium)
        XCTAssertFalse(configuration.syncBatchNorm)
        XCTAssertEqual(configuration.model.stem, .cifar)
        XCTAssertEqual(configuration.model.inputChannels, 1)
        XCTAssertEqual(configuration.model.inputSize, 32)
        XCTAssertEqual(configuration.model.classes, 10)
        XCTAssertEqual(configuration.model.growthRate, 6)
        XCTAssertEqual(configuration.model.grFactor, [1, 2, 4])
        XCTAssertEqual(configuration.model.bnFactor, [1, 2, 4])
        XCTAssertEqual(configuration.model.prune, .max)
        XCTAssertEqual(configuration.model.reduction, 0.5)
        XCTAssertTrue(configuration.model.bottleneck)
        XCTAssertEqual(configuration.model.initialization, .reference)
        XCTAssertEqual(configuration.phase1.momentum, 0.9)
        XCTAssertTrue(configuration.phase1.nesterov)
        XCTAssertFalse(configuration.phase2.nesterov)
        XCTAssertEqual(configuration.phase1.weightDecay, 1e-4)
        XCTAssertEqual(configuration.phase1.schedule, LearningRateSchedule(kind: .multistep, milestones: nil, every: nil, factor: nil))
        XCTAssertEqual(configuration.isc.detach, false)
        XCTAssertEqual(configuration.ofa.temperature, 1)
        XCTAssertEqual(configuration.ofa.gamma, 0.1)
        XCTAssertEqual(configuration.ofa.reduction, .mean)
        XCTAssertEqual(configuration.checkpoint.everySteps, 0)
        XCTAssertEqual(configuration.checkpoint.keep, 3)
        XCTAssertEqual(configuration.evaluation.enabled, true)
        XCTAssertEqual(configuration.evaluation.budgets, 40)
        XCTAssertEqual(configuration.evaluation.batchSize, 128)
        XCTAssertEqual(configuration.distributed.stallTimeout, 600)
        XCTAssertEqual(configuration.distributed.bucketBytes, 4_194_304)
    }

    func testEncodedConfigurationDecodesToTheSameValue() throws {
        let configuration = try RunConfiguration.load(path: write(minimalRunFile()), worldSize: 1)
        let encoded = try JSONEncoder().encode(configuration)
        XCTAssertEqual(try JSONDecoder().decode(RunConfiguration.self, from: encoded), configuration)
        XCTAssertEqual(try RunConfiguration(json: encoded, file: "encoded"), configuration)
    }

    func testDecoderRejectsUnknownKeysToo() throws {
        let data = try JSONSerialization.data(withJSONObject: setting("phase1.extra", to: 1, in: minimalRunFile()))
        XCTAssertThrowsError(try JSONDecoder().decode(RunConfiguration.self, from: data)) { error in
            XCTAssertTrue("\(error)".contains("phase1.extra"), "\(error)")
        }
    }

    func testSkippedPhaseNeedNotSplitAcrossRanks() throws {
        var object = setting("phase2.epochs", to: 0, in: minimalRunFile())
        object = setting("phase2.batchSize", to: 10, in: object)
        let configuration = try RunConfiguration.load(path: write(object), worldSize: 4)
        XCTAssertEqual(configuration.phase2.epochs, 0)
    }

    private func example(_ name: String) throws -> RunConfiguration {
        try RunConfiguration.load(
            path: FixtureLocation.repositoryRoot.appendingPathComponent("cluster/\(name)").path, worldSize: 1, requireDataRoot: false)
    }

    func testFashionMNISTExampleIsTheReferenceSetup() throws {
        let configuration = try example("fashion-mnist.json")
        let reference = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: FixtureLocation.directory.appendingPathComponent("reference-training-fashion-mnist.json"))) as? [String: Any])
        let setup = try XCTUnwrap(reference["setup"] as? [String: Any])
        let model = try XCTUnwrap(setup["model"] as? [String: Any])
        let expected = MSDNetConfiguration(
            stem: .cifar, inputChannels: model["inputChannels"] as! Int, inputSize: 32, classes: model["classes"] as! Int,
            nBlocks: model["nBlocks"] as! Int, stepmode: .linearGrowth, step: model["step"] as! Int,
            base: model["base"] as! Int, nChannels: model["nChannels"] as! Int, growthRate: model["growthRate"] as! Int,
            grFactor: model["grFactor"] as! [Int], bnFactor: model["bnFactor"] as! [Int], prune: .max,
            reduction: model["reduction"] as! Double, bottleneck: model["bottleneck"] as! Bool)
        XCTAssertEqual(model["stepmode"] as? String, "lin_grow")
        XCTAssertEqual(model["stem"] as? String, "cifar")
        XCTAssertEqual(configuration.model, expected)
        XCTAssertEqual(configuration.seed, UInt64(setup["seed"] as! Int))
        XCTAssertEqual(configuration.data.dataset, .fashionMNIST)
        XCTAssertEqual(configuration.data.root, "/usr/share/datasets/fashion-mnist")
        XCTAssertEqual(configuration.data.validationHoldout, 5000)
        let multistep = LearningRateSchedule(kind: .multistep, milestones: [0.5, 0.75], every: nil, factor: 0.1)
        XCTAssertEqual(configuration.phase1, PhaseConfiguration(
            epochs: 6, batchSize: 64, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4, schedule: multistep))
        XCTAssertEqual(configuration.phase2, PhaseConfiguration(
            epochs: 3, batchSize: 64, lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 1e-4, schedule: multistep))
        XCTAssertEqual(configuration.ofa, OneForAllDistillationConfiguration(temperature: 1, gamma: 0.1, reduction: .mean))
        XCTAssertTrue(configuration.gradientEquilibrium)
        XCTAssertEqual(configuration.model.layersPerBlock, [1, 2, 3, 4, 5])
    }

    func testCIFAR100ExampleIsThePapersSevenExitNetwork() throws {
        let configuration = try example("cifar100.json")
        XCTAssertEqual(configuration.model.nBlocks, 7)
        XCTAssertEqual(configuration.model.classes, 100)
        XCTAssertEqual(configuration.model.layersPerBlock, [1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(configuration.phase1.epochs, 300)
        XCTAssertEqual(configuration.phase2.epochs, 180)
        XCTAssertEqual(configuration.phase1.batchSize, 64)
    }

    /// The benchmark's second CIFAR-100 network: the reference's "anytime" 7-exit MSDNet
    /// (`reference-flops.json`, cifar100-anytime-7exit), otherwise the Table 1 run file.
    func testCIFAR100AnytimeExampleIsTheReferencesAnytimeNetwork() throws {
        let anytime = try example("cifar100-anytime.json"), table1 = try example("cifar100.json")
        let costs = CostCounter.exitCosts(try MSDNetArchitecture(anytime.model))
        XCTAssertEqual(costs.map(\.multiplyAdds), [15_140_452, 25_505_992, 37_095_980, 46_331_024, 57_335_540, 66_960_728, 75_937_724])
        XCTAssertEqual(costs.map(\.parameters), [433_876, 876_792, 1_274_952, 1_695_548, 2_178_352, 2_603_252, 3_067_960])
        var model = anytime.model
        (model.stepmode, model.step, model.base) = (table1.model.stepmode, table1.model.step, table1.model.base)
        XCTAssertEqual(model, table1.model)
        XCTAssertEqual(anytime.phase1, table1.phase1)
        XCTAssertEqual(anytime.phase2, table1.phase2)
    }

    func testImageNetExampleIsTheReferenceScript() throws {
        let configuration = try example("imagenet.json")
        XCTAssertEqual(configuration.model.stem, .imagenet)
        XCTAssertEqual(configuration.model.inputSize, 224)
        XCTAssertEqual(configuration.model.classes, 1000)
        XCTAssertEqual(configuration.model.grFactor, [1, 2, 4, 4])
        XCTAssertEqual(configuration.model.bnFactor, [1, 2, 4, 4])
        XCTAssertEqual(configuration.model.layersPerBlock, [4, 4, 4, 4, 4])
        XCTAssertEqual(configuration.model.nChannels, 32)
        XCTAssertEqual(configuration.model.growthRate, 16)
        XCTAssertEqual(configuration.phase1.batchSize, 256)
        XCTAssertEqual(configuration.phase1.schedule, LearningRateSchedule(kind: .step, milestones: nil, every: 30, factor: 0.1))
        XCTAssertEqual(configuration.ofa.temperature, 1)
        XCTAssertEqual(configuration.ofa.gamma, 0.1)
        // 256 splits over 1, 2, 4 and 8 ranks, not over 3.
        for worldSize in [1, 2, 4, 8] {
            XCTAssertNoThrow(try configuration.validate(worldSize: worldSize, file: "imagenet.json", requireDataRoot: false))
        }
        XCTAssertThrowsError(try configuration.validate(worldSize: 3, file: "imagenet.json", requireDataRoot: false))
    }

    // MARK: - Rejections, each at its exact key path

    func testUnknownTopLevelKeyIsRejected() throws {
        try assertRejected("epochs", setTo: 6)
    }

    func testUnknownNestedKeysAreRejected() throws {
        try assertRejected("phase1.batchsize", setTo: 64)
        try assertRejected("model.growth_rate", setTo: 6)
        try assertRejected("phase2.schedule.milestone", setTo: [0.5])
        try assertRejected("ofa.T", setTo: 1)
        let error = try rejection(of: setting("model.growth_rate", to: 6, in: minimalRunFile()))
        XCTAssertTrue(error?.description.hasSuffix("got an unknown key (did you mean growthRate?)") ?? false,
                      "\(error.map(String.init(describing:)) ?? "")")
    }

    func testWrongTypeNamesKeyExpectationAndValue() throws {
        let error = try rejection(of: setting("phase1.batchSize", to: "64", in: minimalRunFile()))
        XCTAssertEqual(error?.keyPath, "phase1.batchSize")
        XCTAssertTrue(error?.description.hasSuffix(#": phase1.batchSize: expected a positive integer, got "64""#) ?? false,
                      "\(error.map(String.init(describing:)) ?? "")")
        try assertRejected("model.bottleneck", setTo: "yes")
        try assertRejected("phase1.lr", setTo: [0.1])
        try assertRejected("data", setTo: "fashion-mnist")
        try assertRejected("model.nBlocks", setTo: 2.5)
    }

    func testNegativeStallTimeoutIsRejected() throws {
        try assertRejected("distributed.stallTimeout", setTo: -1)
        try assertRejected("distributed.stallTimeout", setTo: "5 minutes")
    }

    func testNegativeOrFractionalBucketBytesAreRejected() throws {
        try assertRejected("distributed.bucketBytes", setTo: -1)
        try assertRejected("distributed.bucketBytes", setTo: 1.5)
    }

    func testNegativeEpochsAreRejected() throws {
        try assertRejected("phase1.epochs", setTo: -1)
        try assertRejected("phase2.epochs", setTo: -3)
    }

    func testGrowthAndBottleneckFactorsOfDifferentLengthsAreRejected() throws {
        let error = try rejection(of: setting("model.bnFactor", to: [1, 2, 4, 4], in: minimalRunFile()))
        XCTAssertEqual(error?.keyPath, "model.bnFactor")
        XCTAssertTrue(error?.description.hasSuffix("got [1, 2, 4, 4]") ?? false, "\(error.map(String.init(describing:)) ?? "")")
    }

    /// Two scales leave a 16x16 coarsest scale, which the CIFAR classifier pools to 2x2, not 1x1.
    func testArchitectureTheReferenceCannotBuildIsRejected() throws {
        var object = setting("model.grFactor", to: [1, 2], in: minimalRunFile())
        object = setting("model.bnFactor", to: [1, 2], in: object)
        let error = try rejection(of: object)
        XCTAssertEqual(error?.keyPath, "model.inputSize")
        XCTAssertTrue(error?.description.contains("1x1") ?? false, "\(error.map(String.init(describing:)) ?? "")")
    }

    func testFactorElementIsReportedByIndex() throws {
        try assertRejected("model.grFactor", setTo: [1, 0, 4], reportedAt: "model.grFactor[1]")
    }

    func testGlobalBatchTheWorldSizeDoesNotDivideIsRejected() throws {
        let error = try rejection(of: minimalRunFile(), worldSize: 3)
        XCTAssertEqual(error?.keyPath, "phase1.batchSize")
        try assertRejected("phase2.batchSize", setTo: 66, worldSize: 4)
        // Fewer samples than ranks leaves some rank nothing to compute.
        var object = setting("phase1.batchSize", to: 2, in: minimalRunFile())
        object = setting("phase2.batchSize", to: 4, in: object)
        XCTAssertEqual(try rejection(of: object, worldSize: 4)?.keyPath, "phase1.batchSize")
    }

    func testMissingDataRootIsRejected() throws {
        try assertRejected("data.root", setTo: dataRoot + "/absent")
        let file = (dataRoot as NSString).appendingPathComponent("a-file")
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data()))
        try assertRejected("data.root", setTo: file)
    }

    func testInvalidEnumerationValuesAreRejected() throws {
        let error = try rejection(of: setting("model.stepmode", to: "linear", in: minimalRunFile()))
        XCTAssertEqual(error?.keyPath, "model.stepmode")
        XCTAssertTrue(error?.description.hasSuffix(#"expected one of "even", "lin_grow", got "linear""#) ?? false,
                      "\(error.map(String.init(describing:)) ?? "")")
        try assertRejected("data.dataset", setTo: "cifar")
        try assertRejected("model.prune", setTo: "middle")
        try assertRejected("phase1.schedule.kind", setTo: "exponential")
        try assertRejected("ofa.reduction", setTo: "sum")
        let initialization = try rejection(of: setting("model.initialization", to: "kaiming", in: minimalRunFile()))
        XCTAssertEqual(initialization?.keyPath, "model.initialization")
        XCTAssertTrue(initialization?.description.hasSuffix(#"expected one of "reference", "he-normal", got "kaiming""#) ?? false,
                      "\(initialization.map(String.init(describing:)) ?? "")")
    }

    func testHeNormalInitializationIsReadAndSurvivesEncoding() throws {
        let configuration = try RunConfiguration.load(
            path: write(setting("model.initialization", to: "he-normal", in: minimalRunFile())), worldSize: 1)
        XCTAssertEqual(configuration.model.initialization, .heNormal)
        XCTAssertEqual(try RunConfiguration(json: JSONEncoder().encode(configuration), file: "encoded"), configuration)
    }

    func testMissingRequiredKeysAreRejected() throws {
        try assertRejected("name", setTo: nil)
        try assertRejected("model.nBlocks", setTo: nil)
        try assertRejected("model.stepmode", setTo: nil)
        try assertRejected("phase2.lr", setTo: nil)
        try assertRejected("phase2", setTo: nil)
        try assertRejected("data.root", setTo: nil)
    }

    func testImpossibleValuesAreRejected() throws {
        try assertRejected("phase1.batchSize", setTo: 0)
        try assertRejected("phase1.lr", setTo: 0)
        try assertRejected("phase1.momentum", setTo: 1)
        try assertRejected("phase1.weightDecay", setTo: -1e-4)
        try assertRejected("model.reduction", setTo: 0)
        try assertRejected("model.classes", setTo: 100)
        try assertRejected("model.inputChannels", setTo: 3)
        try assertRejected("ofa.gamma", setTo: 1.5)
        try assertRejected("ofa.temperature", setTo: 0)
        try assertRejected("checkpoint.keep", setTo: 0)
        try assertRejected("data.validationHoldout", setTo: 60_000)
        try assertRejected("name", setTo: "runs/a")
        try assertRejected("seed", setTo: -1)
    }

    /// The run directory defaults to runs/<name>, so a name must be one path component; an
    /// explicit runDir must not hold a NUL (which would cut the path short).
    func testNamesThatAreNotOnePathComponentAreRejected() throws {
        for name in ["qa\u{0}evil", ".", "..", String(repeating: "n", count: 256), "a/b"] {
            try assertRejected("name", setTo: name)
        }
        try assertRejected("runDir", setTo: "runs/qa\u{0}evil")
        let longest = String(repeating: "\u{e9}", count: 127) + "n"
        XCTAssertEqual(try RunConfiguration.load(path: write(setting("name", to: longest, in: minimalRunFile())), worldSize: 1).name,
                       longest, "255 bytes, the most one path component holds, are accepted")
    }

    func testInconsistentSectionsAreRejected() throws {
        var object = setting("phase1.momentum", to: 0, in: minimalRunFile())
        object = setting("phase1.nesterov", to: true, in: object)
        XCTAssertEqual(try rejection(of: object)?.keyPath, "phase1.nesterov")
        try assertRejected("phase1.schedule.every", setTo: 30)
        object = setting("phase1.schedule.kind", to: "step", in: minimalRunFile())
        object = setting("phase1.schedule.milestones", to: [0.5], in: object)
        XCTAssertEqual(try rejection(of: object)?.keyPath, "phase1.schedule.milestones")
        try assertRejected("phase1.schedule.milestones", setTo: [0.75, 0.5])
        try assertRejected("phase1.schedule.milestones", setTo: [0.5, 1.5], reportedAt: "phase1.schedule.milestones[1]")
    }

    func testMalformedAndMissingFilesAreRejectedWithoutKeyPath() throws {
        let path = (dataRoot as NSString).appendingPathComponent("broken.json")
        try Data("{\"name\": \"x\",\n \"seed\": }".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try RunConfiguration.load(path: path, worldSize: 1)) { error in
            guard case .malformedJSON(let file, _)? = error as? ConfigurationError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(file, path)
        }
        XCTAssertThrowsError(try RunConfiguration.load(path: dataRoot + "/absent.json", worldSize: 1)) { error in
            guard case .unreadableFile? = error as? ConfigurationError else { return XCTFail("\(error)") }
        }
        let topLevelArray = (dataRoot as NSString).appendingPathComponent("array.json")
        try Data("[1, 2]".utf8).write(to: URL(fileURLWithPath: topLevelArray))
        XCTAssertThrowsError(try RunConfiguration.load(path: topLevelArray, worldSize: 1)) { error in
            XCTAssertEqual((error as? ConfigurationError)?.keyPath, "(top level)")
        }
    }
}
