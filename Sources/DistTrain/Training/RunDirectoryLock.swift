import Foundation
import Glibc

/// One run per run directory: rank 0 holds an exclusive lock on `<runDir>/.lock` for as long as
/// the run lives, and writes its process id and host into the file so that a second run can say
/// who holds it.
///
/// The lock is `flock(2)`, not a lock file whose existence is the lock: the kernel releases a
/// `flock` when its holder exits however it exits (kill -9, a crashed node's lease expiring), so
/// a lock left by a dead run never blocks the next one, and nothing has to guess whether a
/// recorded pid is still alive (it could be another process on another host). On NFS, Linux
/// implements `flock` with the protocol's byte-range locks, which NFSv4 keeps on the server
/// (lease-based), so ranks on different nodes of a shared file system see each other's lock.
/// `fcntl` locks would work over NFS too, but any `close` of the file by the process drops them.
public final class RunDirectoryLock {
    public let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock of `runDirectory` (which must exist) or throws `TrainingError.runDirectoryInUse`
    /// at once, naming the holder, when another live process holds it.
    public static func acquire(runDirectory: String) throws -> RunDirectoryLock {
        let path = (runDirectory as NSString).appendingPathComponent(".lock")
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TrainingError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            guard reason == EWOULDBLOCK else {
                throw TrainingError.cannotWrite(path: path, reason: "cannot lock: \(String(cString: strerror(reason)))")
            }
            throw TrainingError.runDirectoryInUse(path: runDirectory, holder: holder.isEmpty ? "another process" : holder)
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let record = "pid \(getpid()) on host \(host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })\n"
        let written = ftruncate(descriptor, 0) == 0 && record.withCString { pwrite(descriptor, $0, strlen($0), 0) } >= 0
        guard written else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw TrainingError.cannotWrite(path: path, reason: reason)
        }
        return RunDirectoryLock(path: path, descriptor: descriptor)
    }

    deinit {
        // The record stays behind; it is harmless, as only the flock means "in use".
        close(descriptor)
    }
}
