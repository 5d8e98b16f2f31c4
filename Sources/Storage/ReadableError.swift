import Foundation

/// One readable line for any error that reaches a user. The project's own errors already are
/// one line (`CustomStringConvertible`); Foundation's print as a dump of their user-info
/// dictionary, so for those the operating system's reason is used ("no space left on device"),
/// or Foundation's own sentence.
public func readableReason(_ error: Error) -> String {
    let line: String
    let isFoundationError = error is CocoaError || error is POSIXError || type(of: error) is NSError.Type
    if !isFoundationError {
        line = String(describing: error)
    } else {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            line = String(cString: strerror(Int32(underlying.code))).lowercased()
        } else if nsError.domain == NSPOSIXErrorDomain {
            line = String(cString: strerror(Int32(nsError.code))).lowercased()
        } else if nsError.domain == NSCocoaErrorDomain, let code = cocoaFileErrors[nsError.code] {
            // Foundation on Linux reports a missing or forbidden file without the POSIX error beneath.
            line = String(cString: strerror(code)).lowercased()
        } else {
            line = nsError.localizedDescription
        }
    }
    return line.split(whereSeparator: \.isNewline).joined(separator: " ")
}

/// The POSIX errors behind Foundation's file errors that carry no underlying error.
private let cocoaFileErrors: [Int: Int32] = [
    CocoaError.Code.fileNoSuchFile.rawValue: ENOENT, CocoaError.Code.fileReadNoSuchFile.rawValue: ENOENT,
    CocoaError.Code.fileReadNoPermission.rawValue: EACCES, CocoaError.Code.fileWriteNoPermission.rawValue: EACCES,
]
