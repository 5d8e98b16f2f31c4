import Foundation
import XCTest
@testable import DistTrain

/// The strict reader against Foundation's on valid documents, and on what Foundation lets pass.
final class StrictJSONTests: XCTestCase {
    private func parse(_ text: String) throws -> JSONValue { try StrictJSON.parse(Array(text.utf8)) }

    private func assertSyntaxError(_ text: String, at expectedOffset: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { error in
            guard case let .syntax(offset, _)? = error as? StrictJSON.Failure else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(offset, expectedOffset, "\(error)", file: file, line: line)
        }
    }

    /// Every kind of value reads as Foundation's decoder reads it (`JSONValue`'s `Decodable`).
    func testValidDocumentsReadAsFoundationReadsThem() throws {
        let documents = [
            #"{"a": [1, -2, 3.5, 1e9, 64.0, -0.25e-3, 9223372036854775807, 1e19], "b": {"c": null, "d": true, "e": false}}"#,
            #"["esc\"aped \\ \/ \b\f\n\r\t", "\u00e9\u4e2d\ud83d\ude00", "plain ü"]"#,
            #"  {"empty": {}, "none": [], "nested": [[[]], {"x": {"y": 0}}]}  "#,
            "17", #""top""#,
        ]
        for document in documents {
            XCTAssertEqual(try parse(document), try JSONDecoder().decode(JSONValue.self, from: Data(document.utf8)), document)
        }
    }

    func testRepeatedKeyIsRefusedWithItsPath() {
        XCTAssertThrowsError(try parse(#"{"seed": 0, "seed": 7}"#)) { error in
            XCTAssertEqual(error as? StrictJSON.Failure, .duplicateKey(keyPath: "", key: "seed", offset: 12))
        }
        XCTAssertThrowsError(try parse(#"{"model": {"nBlocks": 2, "step": 1, "nBlocks": 3}}"#)) { error in
            guard case let .duplicateKey(path, key, _)? = error as? StrictJSON.Failure else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "model")
            XCTAssertEqual(key, "nBlocks")
        }
        // The same key in different objects is fine.
        XCTAssertNoThrow(try parse(#"{"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 3}, {"k": 4}]}"#))
    }

    func testRunFileWithARepeatedKeyIsRefusedByKeyPath() {
        let text = #"{"name": "x", "phase1": {"epochs": 1, "lr": 0.1, "lr": 1}}"#
        XCTAssertThrowsError(try RunConfiguration(json: Data(text.utf8), file: "run.json")) { error in
            XCTAssertEqual((error as? ConfigurationError)?.keyPath, "phase1.lr", "\(error)")
        }
    }

    func testSyntaxErrorsNameTheirByteOffset() {
        assertSyntaxError(#"{"a": 1,}"#, at: 8)
        assertSyntaxError(#"{"a" 1}"#, at: 5)
        assertSyntaxError(#"[1, 2"#, at: 5)
        assertSyntaxError(#"[01]"#, at: 1)
        assertSyntaxError(#"[1.]"#, at: 3)
        assertSyntaxError(#"["a\x"]"#, at: 4)
        assertSyntaxError("[\"tab\there\"]", at: 5)
        assertSyntaxError(#"["\ud800"]"#, at: 8)
        assertSyntaxError(#"[1] 2"#, at: 4)
        assertSyntaxError(#"[1e400]"#, at: 1)
        assertSyntaxError(#"[tru]"#, at: 1)
        assertSyntaxError("", at: 0)
        XCTAssertThrowsError(try StrictJSON.parse([0x22, 0xFF, 0x22]), "invalid UTF-8")
    }

    /// Nesting is refused past the limit instead of recursing until the stack runs out.
    func testDeepNestingIsRefusedNotACrash() {
        let depth = 100_000
        assertSyntaxError(String(repeating: "[", count: depth) + String(repeating: "]", count: depth), at: StrictJSON.maximumDepth)
        XCTAssertNoThrow(try parse(String(repeating: "[", count: 60) + String(repeating: "]", count: 60)))
    }
}
