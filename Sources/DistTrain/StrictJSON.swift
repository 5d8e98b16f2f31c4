/// A strict JSON reader (RFC 8259) for run files: a key repeated in one object is an error, not
/// a silent choice between the values (Foundation's `JSONSerialization` and `JSONDecoder` keep
/// one without saying so, while Python and JavaScript keep the other, so the file means different
/// things to different tools). It reads bytes in one pass with a nesting limit, so a huge or
/// hostile file costs time in proportion to its size and cannot exhaust the stack.
///
/// Numbers follow Foundation's reading: an integral value that fits in `Int` (`64`, `64.0`,
/// `1e9`) is an integer, anything else a finite `Double`.
enum StrictJSON {
    /// Why the bytes are not acceptable JSON; `offset` is the 0-based byte offset of the fault.
    enum Failure: Error, Equatable, CustomStringConvertible {
        case syntax(offset: Int, reason: String)
        /// `keyPath` is where the object sits (`model`, `phase1.schedule`; empty at top level).
        case duplicateKey(keyPath: String, key: String, offset: Int)
        /// An array longer than `maximumArrayLength`, at `keyPath`.
        case arrayTooLong(keyPath: String, offset: Int)

        var description: String {
            switch self {
            case let .syntax(offset, reason): return "\(reason) at byte \(offset)"
            case let .arrayTooLong(keyPath, offset):
                return "\(keyPath.isEmpty ? "the top-level array" : keyPath) has more than \(StrictJSON.maximumArrayLength) elements (byte \(offset))"
            case let .duplicateKey(keyPath, key, offset):
                return "key \"\(key)\" appears twice in \(keyPath.isEmpty ? "the top-level object" : keyPath) (second at byte \(offset))"
            }
        }
    }

    /// Deeper nesting than any run file needs is refused rather than recursed into.
    static let maximumDepth = 64
    /// Longer arrays than any run file needs are refused where they pass the limit, so a huge
    /// one costs no more than this many elements.
    static let maximumArrayLength = 65_536

    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try bytes.withUnsafeBufferPointer { buffer in
            var reader = Reader(bytes: buffer)
            reader.skipWhitespace()
            let value = try reader.value(path: "", depth: 0)
            reader.skipWhitespace()
            guard reader.position == buffer.count else { throw reader.failure("unexpected text after the JSON value") }
            return value
        }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        func failure(_ reason: String) -> Failure { .syntax(offset: position, reason: reason) }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws {
            guard current == byte else { throw failure(current == nil ? "unexpected end of file, expected \(what)" : "expected \(what)") }
            position += 1
        }

        mutating func value(path: String, depth: Int) throws -> JSONValue {
            guard depth < StrictJSON.maximumDepth else { throw failure("nesting deeper than \(StrictJSON.maximumDepth) levels") }
            guard let byte = current else { throw failure("unexpected end of file, expected a value") }
            switch byte {
            case UInt8(ascii: "{"): return try object(path: path, depth: depth)
            case UInt8(ascii: "["): return try array(path: path, depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw failure("expected a value")
            }
        }

        mutating func literal(_ word: StaticString) throws {
            let count = word.utf8CodeUnitCount
            guard position + count <= bytes.count,
                  (0..<count).allSatisfy({ bytes[position + $0] == word.utf8Start[$0] }) else {
                throw failure("expected \(word)")
            }
            position += count
        }

        mutating func object(path: String, depth: Int) throws -> JSONValue {
            position += 1
            var members: [String: JSONValue] = [:]
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                let keyOffset = position
                guard current == UInt8(ascii: "\"") else { throw failure("expected a key in double quotes") }
                let key = try string()
                skipWhitespace()
                try expect(UInt8(ascii: ":"), "':' after the key")
                skipWhitespace()
                let memberPath = path.isEmpty ? key : "\(path).\(key)"
                let member = try value(path: memberPath, depth: depth + 1)
                guard members.updateValue(member, forKey: key) == nil else {
                    throw Failure.duplicateKey(keyPath: path, key: key, offset: keyOffset)
                }
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "}"), "',' or '}' in an object")
                return .object(members)
            }
        }

        mutating func array(path: String, depth: Int) throws -> JSONValue {
            position += 1
            var elements: [JSONValue] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
            while true {
                skipWhitespace()
                guard elements.count < StrictJSON.maximumArrayLength else {
                    throw Failure.arrayTooLong(keyPath: path, offset: position)
                }
                elements.append(try value(path: "\(path)[\(elements.count)]", depth: depth + 1))
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "]"), "',' or ']' in an array")
                return .array(elements)
            }
        }

        mutating func string() throws -> String {
            position += 1
            var utf8: [UInt8] = []
            while true {
                guard let byte = current else { throw failure("unexpected end of file inside a string") }
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: utf8, as: UTF8.self) else { throw failure("a string that is not valid UTF-8") }
                    return text
                case UInt8(ascii: "\\"):
                    try escape(into: &utf8)
                case 0..<0x20:
                    position -= 1
                    throw failure("a control character inside a string (escape it)")
                default:
                    utf8.append(byte)
                }
            }
        }

        mutating func escape(into utf8: inout [UInt8]) throws {
            guard let byte = current else { throw failure("unexpected end of file inside a string") }
            position += 1
            let simple: [UInt8: UInt8] = [
                UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C, UInt8(ascii: "/"): 0x2F, UInt8(ascii: "b"): 0x08,
                UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A, UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09,
            ]
            if let replacement = simple[byte] { utf8.append(replacement); return }
            guard byte == UInt8(ascii: "u") else { position -= 1; throw failure("an unknown escape sequence") }
            var scalar = try hexQuad()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                    throw failure("an unpaired UTF-16 surrogate")
                }
                position += 2
                let low = try hexQuad()
                guard (0xDC00..<0xE000).contains(low) else { throw failure("an unpaired UTF-16 surrogate") }
                scalar = 0x10000 + (scalar - 0xD800) << 10 + (low - 0xDC00)
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw failure("an unpaired UTF-16 surrogate") }
            utf8.append(contentsOf: Array(String(Character(unicode)).utf8))
        }

        mutating func hexQuad() throws -> UInt32 {
            guard position + 4 <= bytes.count,
                  let value = UInt32(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16) else {
                throw failure("expected four hexadecimal digits after \\u")
            }
            position += 4
            return value
        }

        mutating func number() throws -> JSONValue {
            let start = position
            func digits() -> Int {
                let first = position
                while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { position += 1 }
                return position - first
            }
            if current == UInt8(ascii: "-") { position += 1 }
            let integerStart = position
            guard digits() > 0 else { throw failure("expected digits in a number") }
            if bytes[integerStart] == UInt8(ascii: "0") && position - integerStart > 1 {
                position = integerStart
                throw failure("a number with a leading zero")
            }
            var isIntegerSyntax = true
            if current == UInt8(ascii: ".") {
                position += 1
                isIntegerSyntax = false
                guard digits() > 0 else { throw failure("expected digits after the decimal point") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                position += 1
                isIntegerSyntax = false
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { throw failure("expected digits in the exponent") }
            }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            if isIntegerSyntax, let integer = Int(text) { return .integer(integer) }
            guard let number = Double(text), number.isFinite else {
                position = start
                throw failure("a number outside the range of a 64-bit float")
            }
            // Beyond 2^63 the conversion would trap; below it an integral double converts exactly.
            if number == number.rounded(), abs(number) < 9.2e18 { return .integer(Int(number)) }
            return .number(number)
        }
    }
}
