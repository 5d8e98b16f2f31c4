import Foundation

/// Where the reference fixtures are: `$DISTTRAIN_FIXTURES`, else `shared/fixtures` beside the
/// repository (the layout of the development machines and of CI).
public enum FixtureLocation {
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static var directory: URL {
        if let path = ProcessInfo.processInfo.environment["DISTTRAIN_FIXTURES"] {
            return URL(fileURLWithPath: path)
        }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }

    public static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}
