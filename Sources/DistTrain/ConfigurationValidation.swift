import Foundation
import Model

/// Why a run file was rejected. Every case names the file and, where there is one, the key path
/// (`phase1.schedule.kind`, `model.grFactor[2]`), so that `description` is the one line a user
/// needs: `<file>: <key.path>: expected <what>, got <value>`.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read at all.
    case unreadableFile(file: String, reason: String)
    /// The file is not JSON.
    case malformedJSON(file: String, reason: String)
    /// A key the schema does not know, at any depth (usually a typo).
    case unknownKey(file: String, keyPath: String, knownKeys: [String])
    /// A required key is absent.
    case missingKey(file: String, keyPath: String, expected: String)
    /// A key is present with a value of the wrong type or outside what the key allows.
    case invalidValue(file: String, keyPath: String, expected: String, got: String)

    /// The offending key path, or nil when the whole file is at fault.
    public var keyPath: String? {
        switch self {
        case .unreadableFile, .malformedJSON: return nil
        case .unknownKey(_, let keyPath, _), .missingKey(_, let keyPath, _),
             .invalidValue(_, let keyPath, _, _):
            return keyPath
        }
    }

    public var description: String {
        switch self {
        case .unreadableFile(let file, let reason):
            return "\(file): cannot read the run file: \(reason)"
        case .malformedJSON(let file, let reason):
            return "\(file): expected a JSON object, got malformed JSON (\(reason))"
        case .unknownKey(let file, let keyPath, let knownKeys):
            let key = String(keyPath.split(separator: ".").last ?? "")
            let suggestion = Self.nearest(to: key, among: knownKeys).map { " (did you mean \($0)?)" } ?? ""
            return "\(file): \(keyPath): expected one of the keys \(knownKeys.joined(separator: ", ")), got an unknown key\(suggestion)"
        case .missingKey(let file, let keyPath, let expected):
            return "\(file): \(keyPath): expected \(expected), got nothing (the key is required)"
        case .invalidValue(let file, let keyPath, let expected, let got):
            return "\(file): \(keyPath): expected \(expected), got \(got)"
        }
    }
}

extension ConfigurationError {
    /// The known key a misspelt one most likely meant: equal ignoring case, or within two edits.
    static func nearest(to key: String, among knownKeys: [String]) -> String? {
        if let match = knownKeys.first(where: { $0.lowercased() == key.lowercased() }) { return match }
        let scored = knownKeys.map { ($0, editDistance(Array(key.lowercased()), Array($0.lowercased()))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 2 else { return nil }
        return best.0
    }

    /// Levenshtein distance: insertions, deletions and substitutions each cost 1.
    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, characterA) in a.enumerated() {
            var current = [i + 1]
            for (j, characterB) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (characterA == characterB ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension RunConfiguration {
    /// Checks what depends on where the run happens rather than on the file alone: each phase
    /// that runs needs a global batch the world size divides (every rank takes an equal share of
    /// at least one sample), and `data.root` must be an existing directory. Deeper checks of the
    /// data set's files belong to the data layer.
    public func validate(worldSize: Int, file: String, requireDataRoot: Bool = true) throws {
        precondition(worldSize >= 1, "a world has at least one rank")
        for (key, phase) in [("phase1", phase1), ("phase2", phase2)] where phase.epochs > 0 {
            if phase.batchSize % worldSize != 0 {
                throw ConfigurationError.invalidValue(
                    file: file, keyPath: "\(key).batchSize",
                    expected: "a multiple of the world size \(worldSize) (the global batch is split evenly across ranks)",
                    got: String(phase.batchSize))
            }
        }
        // Before the architecture is built: a huge network must not be built even as a plan.
        try validateSizes(worldSize: worldSize, file: file)
        try validateArchitecture(file: file)
        if requireDataRoot {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: data.root, isDirectory: &isDirectory) || !isDirectory.boolValue {
                throw ConfigurationError.invalidValue(
                    file: file, keyPath: "data.root",
                    expected: "an existing directory holding the \(data.dataset.rawValue) files",
                    got: JSONValue.string(data.root).quoted)
            }
        }
    }
}

extension RunConfiguration {
    /// Builds the network's plan from `model` alone, so that an architecture the reference
    /// builder cannot make (a classifier that does not pool to 1x1, channels that do not add up)
    /// is rejected with the run file's key before anything runs.
    func validateArchitecture(file: String) throws {
        do {
            _ = try MSDNetArchitecture(model)
        } catch let error as ArchitectureError {
            switch error {
            case let .invalidConfiguration(field, value, expected):
                throw ConfigurationError.invalidValue(file: file, keyPath: "model.\(field)", expected: expected, got: value)
            case .classifierNotPooledToOne:
                throw ConfigurationError.invalidValue(
                    file: file, keyPath: "model.inputSize",
                    expected: "a size whose coarsest scale the classifier pools to 1x1 (\(error))", got: String(model.inputSize))
            case .inconsistentChannels:
                throw ConfigurationError.invalidValue(file: file, keyPath: "model", expected: "a buildable MSDNet", got: "\(error)")
            }
        }
    }
}

// MARK: - Reading the JSON tree key by key

/// A JSON value as the file spells it, kept so that an error can quote what was written.
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Parses a whole file strictly (`StrictJSON`): a syntax error names its byte offset, and a
    /// key written twice in one object is refused by its key path.
    static func parse(_ data: Data, file: String) throws -> JSONValue {
        do {
            return try StrictJSON.parse([UInt8](data))
        } catch let StrictJSON.Failure.duplicateKey(path, key, offset) {
            throw ConfigurationError.invalidValue(
                file: file, keyPath: path.isEmpty ? key : "\(path).\(key)",
                expected: "each key once per object", got: "it a second time at byte \(offset)")
        } catch let StrictJSON.Failure.arrayTooLong(path, _) {
            throw ConfigurationError.invalidValue(
                file: file, keyPath: path.isEmpty ? "(top level)" : path,
                expected: "an array of at most \(StrictJSON.maximumArrayLength) elements", got: "a longer one")
        } catch let failure as StrictJSON.Failure {
            throw ConfigurationError.malformedJSON(file: file, reason: failure.description)
        }
    }

    var integerValue: Int? {
        switch self {
        case .integer(let value): return value
        default: return nil
        }
    }

    /// Integers are numbers too (`"lr": 1`).
    var numberValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }

    /// The value as it would appear in the file, shortened when long, for error messages.
    var quoted: String {
        let text: String
        switch self {
        case .null: text = "null"
        case .bool(let value): text = String(value)
        case .integer(let value): text = String(value)
        case .number(let value): text = String(value)
        case .string(let value):
            let escaped = value.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            // Other control characters (a NUL in a name, say) as JSON escapes, not raw bytes on the terminal.
            text = "\"" + escaped.unicodeScalars.map { $0.value < 0x20 ? String(format: "\\u%04x", $0.value) : String($0) }.joined() + "\""
        case .array(let values):
            // Only as many elements as the shortened text can show: a huge array costs no more.
            var shown = "["
            for value in values.prefix(40) where shown.count <= 80 { shown += (shown.count > 1 ? ", " : "") + value.quoted }
            text = shown + "]"
        case .object: text = "an object"
        }
        return text.count > 80 ? String(text.prefix(77)) + "..." : text
    }
}

/// The keys of one object of the run file, declared once as the cases of an enum: the reader
/// reads through them, the unknown-key check accepts exactly them (listed in declaration order
/// when it rejects a key), and encoding writes through them, so the three cannot drift apart.
protocol RunFileKey: CodingKey, CaseIterable, RawRepresentable where RawValue == String {}

extension RunFileKey {
    static var names: [String] { allCases.map(\.rawValue) }
}

/// An object of the run file, written through its declared keys.
protocol RunFileSection {
    associatedtype Key: RunFileKey
    /// Writes the value under `key`. Implemented as a switch over the keys, so that a key added
    /// without being written is a compile error.
    func write(_ key: Key, to container: inout KeyedEncodingContainer<Key>) throws
}

extension KeyedEncodingContainer {
    mutating func encode<Section: RunFileSection>(section: Section, forKey key: K) throws {
        var nested = nestedContainer(keyedBy: Section.Key.self, forKey: key)
        for sectionKey in Section.Key.allCases { try section.write(sectionKey, to: &nested) }
    }
}

/// One JSON object of the run file, read key by key with the expectation for each key stated
/// once, where it is read. Keys not among `Key`'s cases are rejected when the object is opened,
/// so a misspelt key never silently falls back to a default.
struct ConfigurationObject<Key: RunFileKey> {
    let file: String
    /// Key path of this object ("" for the root).
    let path: String
    let members: [String: JSONValue]

    /// Opens `value` as an object whose keys must all be cases of `Key`.
    init(_ value: JSONValue, file: String, path: String) throws {
        let knownKeys = Key.names
        guard case .object(let members) = value else {
            throw ConfigurationError.invalidValue(
                file: file, keyPath: path.isEmpty ? "(top level)" : path,
                expected: "an object", got: value.quoted)
        }
        self.file = file
        self.path = path
        self.members = members
        // Sorted so that the same file always reports the same key first.
        if let unknown = members.keys.sorted().first(where: { !knownKeys.contains($0) }) {
            throw ConfigurationError.unknownKey(file: file, keyPath: path.isEmpty ? unknown : "\(path).\(unknown)", knownKeys: knownKeys)
        }
    }

    func keyPath(_ key: Key) -> String { path.isEmpty ? key.rawValue : "\(path).\(key.rawValue)" }

    func contains(_ key: Key) -> Bool { members[key.rawValue] != nil }

    /// The value under `key` converted by `convert`, which returns nil for anything the key does
    /// not accept; `defaultValue` when the key is absent, and an error when there is none.
    func read<Value>(
        _ key: Key, expected: String, default defaultValue: Value? = nil,
        _ convert: (JSONValue) -> Value?
    ) throws -> Value {
        guard let raw = members[key.rawValue] else {
            if let defaultValue { return defaultValue }
            throw ConfigurationError.missingKey(file: file, keyPath: keyPath(key), expected: expected)
        }
        guard let value = convert(raw) else {
            throw ConfigurationError.invalidValue(file: file, keyPath: keyPath(key), expected: expected, got: raw.quoted)
        }
        return value
    }

    /// As `read`, but nil when the key is absent (the type's own "default" meaning applies).
    func readIfPresent<Value>(_ key: Key, expected: String, _ convert: (JSONValue) -> Value?) throws -> Value? {
        guard contains(key) else { return nil }
        return try read(key, expected: expected, convert)
    }

    func integer(_ key: Key, atLeast minimum: Int, default defaultValue: Int? = nil) throws -> Int {
        try read(key, expected: Self.integerExpectation(atLeast: minimum), default: defaultValue) { raw in
            raw.integerValue.flatMap { $0 >= minimum ? $0 : nil }
        }
    }

    func integerIfPresent(_ key: Key, atLeast minimum: Int) throws -> Int? {
        try readIfPresent(key, expected: Self.integerExpectation(atLeast: minimum)) { raw in
            raw.integerValue.flatMap { $0 >= minimum ? $0 : nil }
        }
    }

    /// A number satisfying `isValid`; `expected` says which numbers, e.g. "a number in [0, 1)".
    func number(
        _ key: Key, expected: String, default defaultValue: Double? = nil, where isValid: (Double) -> Bool
    ) throws -> Double {
        try read(key, expected: expected, default: defaultValue) { raw in
            raw.numberValue.flatMap { $0.isFinite && isValid($0) ? $0 : nil }
        }
    }

    func numberIfPresent(_ key: Key, expected: String, where isValid: (Double) -> Bool) throws -> Double? {
        try readIfPresent(key, expected: expected) { raw in
            raw.numberValue.flatMap { $0.isFinite && isValid($0) ? $0 : nil }
        }
    }

    func boolean(_ key: Key, default defaultValue: Bool? = nil) throws -> Bool {
        try read(key, expected: "true or false", default: defaultValue) { raw in
            if case .bool(let value) = raw { return value }
            return nil
        }
    }

    func string(_ key: Key, expected: String = "a non-empty string", where isValid: (String) -> Bool = { _ in true }) throws -> String {
        try read(key, expected: expected) { raw in
            if case .string(let value) = raw, !value.isEmpty, isValid(value) { return value }
            return nil
        }
    }

    func stringIfPresent(_ key: Key, expected: String = "a non-empty string", where isValid: (String) -> Bool = { _ in true }) throws -> String? {
        try readIfPresent(key, expected: expected) { raw in
            if case .string(let value) = raw, !value.isEmpty, isValid(value) { return value }
            return nil
        }
    }

    /// One of a fixed set of string values, e.g. `"even"` or `"lin_grow"`.
    func choice<Choice: RawRepresentable>(
        _ key: Key, among choices: [Choice], default defaultValue: Choice? = nil
    ) throws -> Choice where Choice.RawValue == String {
        let expected = "one of " + choices.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        return try read(key, expected: expected, default: defaultValue) { raw in
            if case .string(let value) = raw { return Choice(rawValue: value) }
            return nil
        }
    }

    /// A non-empty array of at most `maximumCount` integers, each at least `minimum`; an element
    /// at fault is reported by its index (`model.grFactor[2]`). The length is checked first, so a
    /// huge array is refused before any work per element.
    func integerArray(_ key: Key, atLeast minimum: Int, maximumCount: Int = .max,
                      default defaultValue: [Int]? = nil) throws -> [Int] {
        let elements = try read(key, expected: "a non-empty array of \(Self.integerNoun(atLeast: minimum))s",
                                default: defaultValue.map { $0.map(JSONValue.integer) }) { raw in
            if case .array(let values) = raw, !values.isEmpty { return values }
            return nil
        }
        guard elements.count <= maximumCount else {
            throw ConfigurationError.invalidValue(
                file: file, keyPath: keyPath(key), expected: "at most \(maximumCount) entries",
                got: "an array of \(elements.count)")
        }
        return try elements.enumerated().map { index, element in
            guard let value = element.integerValue, value >= minimum else {
                throw ConfigurationError.invalidValue(
                    file: file, keyPath: "\(keyPath(key))[\(index)]",
                    expected: Self.integerExpectation(atLeast: minimum), got: element.quoted)
            }
            return value
        }
    }

    /// A non-empty array of numbers, each satisfying `isValid`, reported by index when one does not.
    func numberArrayIfPresent(_ key: Key, expected: String, where isValid: (Double) -> Bool) throws -> [Double]? {
        guard let elements = try readIfPresent(key, expected: "a non-empty array of numbers", { raw -> [JSONValue]? in
            if case .array(let values) = raw, !values.isEmpty { return values }
            return nil
        }) else { return nil }
        return try elements.enumerated().map { index, element in
            guard let value = element.numberValue, value.isFinite, isValid(value) else {
                throw ConfigurationError.invalidValue(
                    file: file, keyPath: "\(keyPath(key))[\(index)]", expected: expected, got: element.quoted)
            }
            return value
        }
    }

    /// The nested object under `key`; an absent key reads as an empty object, so every key in it
    /// takes its default (or is reported missing by its full path).
    func object<Nested>(_ key: Key) throws -> ConfigurationObject<Nested> {
        try ConfigurationObject<Nested>(members[key.rawValue] ?? .object([:]), file: file, path: keyPath(key))
    }

    /// The nested object under `key`, which must be present.
    func requiredObject<Nested>(_ key: Key) throws -> ConfigurationObject<Nested> {
        guard let value = members[key.rawValue] else {
            throw ConfigurationError.missingKey(file: file, keyPath: keyPath(key), expected: "an object")
        }
        return try ConfigurationObject<Nested>(value, file: file, path: keyPath(key))
    }

    /// Reports `key` (present in this object) as inconsistent with the rest of the file.
    func inconsistent(_ key: Key, expected: String) -> ConfigurationError {
        .invalidValue(file: file, keyPath: keyPath(key), expected: expected, got: members[key.rawValue]?.quoted ?? "nothing")
    }

    private static func integerNoun(atLeast minimum: Int) -> String {
        switch minimum {
        case 0: return "non-negative integer"
        case 1: return "positive integer"
        default: return "integer >= \(minimum)"
        }
    }

    private static func integerExpectation(atLeast minimum: Int) -> String {
        let noun = integerNoun(atLeast: minimum)
        return (noun.hasPrefix("integer") ? "an " : "a ") + noun
    }
}
