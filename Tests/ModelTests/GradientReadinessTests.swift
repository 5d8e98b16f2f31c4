import Model
import XCTest

/// The backward pass reports a gradient final only once no later step changes it, so an
/// all-reduce started on the reported tail reads the same values one started after the pass
/// would: checked by copying the reported tail at every report and comparing with the end.
final class GradientReadinessTests: XCTestCase {
    /// Copies `offset..<count` of the gradients at every report.
    final class TailRecorder: GradientReadyObserver {
        let arena: ParameterArena
        var reports: [(offset: Int, tail: [Float])] = []

        init(_ arena: ParameterArena) { self.arena = arena }

        func gradientsAreFinal(from offset: Int) {
            reports.append((offset, Array(UnsafeBufferPointer(start: arena.gradients + offset, count: arena.count - offset))))
        }
    }

    func assertTailsStayFinal(_ recorder: TailRecorder, file: StaticString = #filePath, line: UInt = #line) {
        let arena = recorder.arena
        let offsets = recorder.reports.map(\.offset)
        XCTAssertEqual(offsets.last, 0, "the last report covers the whole arena", file: file, line: line)
        XCTAssertEqual(offsets, offsets.sorted(by: >), "the final tail only grows", file: file, line: line)
        let final = Array(UnsafeBufferPointer(start: arena.gradients, count: arena.count))
        for (index, report) in recorder.reports.enumerated() {
            XCTAssertEqual(report.tail.map(\.bitPattern), final[report.offset...].map(\.bitPattern),
                           "report \(index) (from \(report.offset)) called gradients final that changed later", file: file, line: line)
        }
        XCTAssertGreaterThan(final.filter { $0 != 0 }.count, arena.count / 2, "the step computed gradients", file: file, line: line)
    }

    func testMSDNetWithGradientEquilibriumReportsOnlyFinalGradients() throws {
        let network = try MSDNet(configuration: MSDNetGradientTests.small, gradientEquilibrium: true, maximumBatchSize: 4, seed: 3)
        let recorder = TailRecorder(network.parameters)
        network.gradientReadyObserver = recorder
        _ = MSDNetGradientTests.step(network, MSDNetGradientTests.batch(MSDNetGradientTests.small, count: 4, seed: 5))
        assertTailsStayFinal(recorder)
        // The arena is in forward order: the tail is final step by step, not all at the end.
        let distinct = Set(recorder.reports.map(\.offset))
        XCTAssertGreaterThan(distinct.count, 2 * network.exitCount, "\(distinct.sorted())")
        let halfway = recorder.reports[recorder.reports.count / 2].offset
        XCTAssertLessThan(halfway, network.parameters.count, "half-way through the pass part of the arena is final")
    }

    func testIMTAHeadsReportOnlyFinalGradients() throws {
        let backbone = try MSDNet(configuration: MSDNetGradientTests.small, gradientEquilibrium: true, maximumBatchSize: 4, seed: 3)
        let network = IMTANetwork(backbone: backbone, distillation: OneForAllDistillation(temperature: 2, gamma: 0.3),
                                  detachCollaboration: false, seed: 4)
        let recorder = TailRecorder(network.heads)
        network.gradientReadyObserver = recorder
        let batch = MSDNetGradientTests.batch(MSDNetGradientTests.small, count: 4, seed: 6)
        _ = batch.images.withUnsafeBufferPointer { images in
            batch.labels.withUnsafeBufferPointer { labels in
                network.trainingStep(images: images.baseAddress!, labels: labels.baseAddress!, count: batch.count)
            }
        }
        assertTailsStayFinal(recorder)
        XCTAssertEqual(recorder.reports.count, network.exitCount)
    }

    /// Each exit's classifier follows its block, and every tensor is still there once.
    func testForwardOrderPutsEachClassifierAfterItsBlock() throws {
        let architecture = try MSDNetArchitecture(MSDNetGradientTests.small)
        let ordered = architecture.parameterTensorsInForwardOrder.map(\.name)
        XCTAssertEqual(ordered.sorted(), architecture.parameterTensors.map(\.name).sorted())
        let firstOfSecondBlock = try XCTUnwrap(ordered.firstIndex { $0.hasPrefix("blocks.1.") })
        let lastOfFirstClassifier = try XCTUnwrap(ordered.lastIndex { $0.hasPrefix("classifier.0.") })
        let firstOfFirstClassifier = try XCTUnwrap(ordered.firstIndex { $0.hasPrefix("classifier.0.") })
        let lastOfFirstBlock = try XCTUnwrap(ordered.lastIndex { $0.hasPrefix("blocks.0.") })
        XCTAssertLessThan(lastOfFirstBlock, firstOfFirstClassifier)
        XCTAssertLessThan(lastOfFirstClassifier, firstOfSecondBlock)
    }
}
