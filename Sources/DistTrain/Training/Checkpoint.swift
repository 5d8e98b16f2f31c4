import Foundation
import Glibc
import Model
import Storage

/// Where a checkpoint stands in the schedule and what produced it (root attributes of the file).
public struct CheckpointMetadata: Equatable, Sendable {
    public static let format = "disttrain-checkpoint"
    public static let version: Int64 = 1

    /// 1 (MSDNet with GE) or 2 (IMTA heads).
    public var phase: Int
    /// Epochs of `phase` finished.
    public var epoch: Int
    /// Steps finished of the epoch in progress (0 at an epoch boundary).
    public var step: Int
    public var worldSize: Int
    public var seed: UInt64
    /// The run configuration, as JSON.
    public var configuration: String

    public init(phase: Int, epoch: Int, step: Int, worldSize: Int, seed: UInt64, configuration: String) {
        self.phase = phase
        self.epoch = epoch
        self.step = step
        self.worldSize = worldSize
        self.seed = seed
        self.configuration = configuration
    }

    /// `phase{P}-epoch{E}.h5` at an epoch boundary, `phase{P}-epoch{E}-step{S}.h5` within one.
    public var fileName: String {
        step == 0 ? "phase\(phase)-epoch\(epoch).h5" : "phase\(phase)-epoch\(epoch)-step\(step).h5"
    }

    /// Position in the whole schedule, for ordering checkpoints.
    var position: [Int] { [phase, epoch, step] }
}

/// Everything a run needs to continue exactly: model state, optimizer momentum, the validation
/// hold-out (DESIGN.md, "Files").
///
/// Files are HDF5 (readable by h5py): root attributes `format`, `version`, `config`, `phase`,
/// `epoch`, `step`, `worldSize`, `seed`; groups `/model/<key>`, `/optimizer/momentum/<key>`,
/// `/data/validationIndices`. Every dataset carries a Fletcher-32 checksum.
public enum Checkpoint {
    /// Writes a checkpoint atomically: to a temporary file beside `path`, fsynced, then renamed
    /// over `path`, so a crash leaves either the old file or the complete new one.
    public static func write(
        to path: String, metadata: CheckpointMetadata, model: [NamedTensor], momentum: [NamedTensor],
        validationIndices: [Int]
    ) throws {
        // A diverged state is refused before a byte is written: resuming from it would fail again.
        for (group, tensors) in [("model", model), ("optimizer/momentum", momentum)] {
            if let (name, value) = firstNonFinite(tensors) {
                throw TrainingError.nonFiniteState(path: path, phase: metadata.phase, tensor: "/\(group)/\(name)", value: value)
            }
        }
        let image: [UInt8]
        do {
            let file = try HDF5File.createInMemory(name: path)
            let root = try file.root
            try root.writeAttribute("format", CheckpointMetadata.format)
            try root.writeAttribute("version", CheckpointMetadata.version)
            try root.writeAttribute("config", metadata.configuration)
            try root.writeAttribute("phase", Int64(metadata.phase))
            try root.writeAttribute("epoch", Int64(metadata.epoch))
            try root.writeAttribute("step", Int64(metadata.step))
            try root.writeAttribute("worldSize", Int64(metadata.worldSize))
            try root.writeAttribute("seed", Int64(bitPattern: metadata.seed))
            try writeTensors(model, into: root.createGroup("model"))
            try writeTensors(momentum, into: root.createGroup("optimizer/momentum"))
            try root.createDataset("data/validationIndices", values: validationIndices.map { Int64($0) },
                                   shape: [validationIndices.count])
            image = try file.image()
            try file.close()
        } catch {
            throw TrainingError.cannotWrite(path: path, reason: (error as? HDF5Error)?.cause ?? readableReason(error))
        }
        try publish(image, at: path)
    }

    /// Writes `bytes` to a temporary file beside `path`, fsyncs it and renames it over `path`,
    /// so a crash or a full disk leaves either the old file or the complete new one, and never a
    /// partial file. The file was built in memory, so every failure here is a plain system call's.
    static func publish(_ bytes: [UInt8], at path: String) throws {
        let temporary = path + ".partial"
        func failure(_ code: Int32 = errno) -> TrainingError {
            let reason = String(cString: strerror(code)).lowercased()
            unlink(temporary)
            return TrainingError.cannotWrite(path: path, reason: reason)
        }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure() }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let code = count < 0 ? errno : ENOSPC
                close(descriptor)
                throw failure(code)
            }
            written += count
        }
        // fsync and close report what a network file system could not store.
        guard fsync(descriptor) == 0 else {
            let code = errno
            close(descriptor)
            throw failure(code)
        }
        guard close(descriptor) == 0 else { throw failure() }
        guard rename(temporary, path) == 0 else { throw failure() }
        try? synchronize(path: (path as NSString).deletingLastPathComponent)
    }

    /// Reads the root attributes only.
    public static func metadata(at path: String) throws -> CheckpointMetadata {
        do {
            let file = try HDF5File.open(path)
            defer { try? file.close() }
            return try metadata(of: file)
        } catch let error as TrainingError {
            throw error
        } catch {
            throw TrainingError.unreadableCheckpoint(path: path, reason: "\(error)")
        }
    }

    /// Reads and verifies the whole checkpoint (every checksum, every tensor of `model` and
    /// `momentum` present with the right shape), then copies it into their storage. Nothing is
    /// copied unless everything verifies.
    public static func restore(
        from path: String, model: [NamedTensor], momentum: [NamedTensor]
    ) throws -> (metadata: CheckpointMetadata, validationIndices: [Int]) {
        do {
            let file = try HDF5File.open(path)
            defer { try? file.close() }
            let metadata = try metadata(of: file)
            let modelValues = try readTensors(model, from: try file.root.group("model"), path: path)
            let momentumValues = try readTensors(momentum, from: try file.root.group("optimizer/momentum"), path: path)
            let indices = try file.root.read("data/validationIndices", as: Int64.self).values.map { Int($0) }
            for (group, tensors, values) in [("model", model, modelValues), ("optimizer/momentum", momentum, momentumValues)] {
                for (tensor, stored) in zip(tensors, values) {
                    if case let .float(numbers) = stored, let bad = numbers.first(where: { !$0.isFinite }) {
                        throw TrainingError.unreadableCheckpoint(path: path, reason: "/\(group)/\(tensor.name) holds \(bad) (written by a diverged run)")
                    }
                }
            }
            for (tensor, values) in zip(model, modelValues) { copy(values, into: tensor) }
            for (tensor, values) in zip(momentum, momentumValues) { copy(values, into: tensor) }
            return (metadata, indices)
        } catch let error as TrainingError {
            throw error
        } catch {
            throw TrainingError.unreadableCheckpoint(path: path, reason: "\(error)")
        }
    }

    private enum TensorValues {
        case float([Float])
        case int64([Int64])
    }

    private static func metadata(of file: HDF5File) throws -> CheckpointMetadata {
        let root = try file.root
        let format = try root.readStringAttribute("format")
        guard format == CheckpointMetadata.format else {
            throw TrainingError.unreadableCheckpoint(path: file.path, reason: "attribute format is \"\(format)\", expected \"\(CheckpointMetadata.format)\"")
        }
        let version = try root.readAttribute("version", as: Int64.self)
        guard version == CheckpointMetadata.version else {
            throw TrainingError.unreadableCheckpoint(path: file.path, reason: "version \(version), this disttrain reads version \(CheckpointMetadata.version)")
        }
        return CheckpointMetadata(
            phase: Int(try root.readAttribute("phase", as: Int64.self)),
            epoch: Int(try root.readAttribute("epoch", as: Int64.self)),
            step: Int(try root.readAttribute("step", as: Int64.self)),
            worldSize: Int(try root.readAttribute("worldSize", as: Int64.self)),
            seed: UInt64(bitPattern: try root.readAttribute("seed", as: Int64.self)),
            configuration: try root.readStringAttribute("config"))
    }

    /// The first tensor holding a NaN or an infinity, with that value.
    static func firstNonFinite(_ tensors: [NamedTensor]) -> (name: String, value: Float)? {
        for tensor in tensors {
            guard case let .float(pointer) = tensor.storage else { continue }
            let values = UnsafeBufferPointer(start: pointer, count: tensor.count)
            if let bad = values.first(where: { !$0.isFinite }) { return (tensor.name, bad) }
        }
        return nil
    }

    private static func writeTensors(_ tensors: [NamedTensor], into group: HDF5Group) throws {
        for tensor in tensors {
            switch tensor.storage {
            case let .float(pointer):
                try group.createDataset(tensor.name, values: UnsafeBufferPointer(start: pointer, count: tensor.count),
                                        shape: tensor.shape)
            case let .int64(pointer):
                try group.createDataset(tensor.name, scalar: pointer.pointee)
            }
        }
    }

    private static func readTensors(_ tensors: [NamedTensor], from group: HDF5Group, path: String) throws -> [TensorValues] {
        try tensors.map { tensor in
            guard try group.exists(tensor.name) else {
                throw TrainingError.unreadableCheckpoint(path: path, reason: "\(group.path)/\(tensor.name) is missing")
            }
            switch tensor.storage {
            case .float:
                let array = try group.read(tensor.name, as: Float.self)
                guard array.shape == tensor.shape else {
                    throw TrainingError.unreadableCheckpoint(
                        path: path, reason: "\(group.path)/\(tensor.name) has shape \(array.shape), expected \(tensor.shape)")
                }
                return .float(array.values)
            case .int64:
                return .int64([try group.dataset(tensor.name).readScalar(as: Int64.self)])
            }
        }
    }

    private static func copy(_ values: TensorValues, into tensor: NamedTensor) {
        switch (values, tensor.storage) {
        case let (.float(source), .float(destination)):
            source.withUnsafeBufferPointer { destination.update(from: $0.baseAddress!, count: tensor.count) }
        case let (.int64(source), .int64(destination)):
            destination.pointee = source[0]
        default:
            preconditionFailure("tensor kinds are checked while reading")
        }
    }

    /// fsync on a file or directory, so the rename publishes data that is on disk.
    private static func synchronize(path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw TrainingError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw TrainingError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
    }
}

/// The checkpoints of one run directory: `<runDir>/checkpoints/*.h5`.
public struct CheckpointDirectory {
    public let path: String

    public init(runDirectory: String) {
        path = (runDirectory as NSString).appendingPathComponent("checkpoints")
    }

    /// Checkpoint files by name, newest position in the schedule first. Names that do not parse
    /// as `phase{P}-epoch{E}[-step{S}].h5` are ignored.
    public func files() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let positioned = names.compactMap { name -> (position: [Int], path: String)? in
            guard let position = Self.position(fileName: name) else { return nil }
            return (position, (path as NSString).appendingPathComponent(name))
        }
        return positioned.sorted { $0.position.lexicographicallyPrecedes($1.position) }.reversed().map(\.path)
    }

    /// Deletes all but the newest `keep` checkpoints.
    public func prune(keep: Int) {
        for stale in files().dropFirst(max(keep, 1)) {
            try? FileManager.default.removeItem(atPath: stale)
        }
    }

    static func position(fileName name: String) -> [Int]? {
        guard name.hasSuffix(".h5"), name.hasPrefix("phase") else { return nil }
        let parts = name.dropLast(3).split(separator: "-")
        guard parts.count == 2 || parts.count == 3,
              let phase = Int(parts[0].dropFirst("phase".count)),
              parts[1].hasPrefix("epoch"), let epoch = Int(parts[1].dropFirst("epoch".count)) else { return nil }
        var step = 0
        if parts.count == 3 {
            guard parts[2].hasPrefix("step"), let parsed = Int(parts[2].dropFirst("step".count)) else { return nil }
            step = parsed
        }
        return [phase, epoch, step]
    }
}
