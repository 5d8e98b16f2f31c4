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
        } else {
            line = nsError.localizedDescription
        }
    }
    return line.split(whereSeparator: \.isNewline).joined(separator: " ")
}
