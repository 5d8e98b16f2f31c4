import XCTest
final class DistTrainTestsPlaceholder: XCTestCase { func testBuilds() {} }
