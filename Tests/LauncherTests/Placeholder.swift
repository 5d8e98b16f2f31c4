import XCTest
final class LauncherTestsPlaceholder: XCTestCase { func testBuilds() {} }
