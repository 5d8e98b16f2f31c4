// swift-tools-version:6.0
import PackageDescription

// Modules depend downward only: Launcher -> Benchmarks, ReferenceParity -> DistTrain
// -> Evaluation -> DataPipeline -> Storage, and Communication; all of them -> Model -> C shims.
let package = Package(
    name: "disttrain",
    products: [
        .executable(name: "disttrain", targets: ["Launcher"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CMPIShim", path: "Sources/CMPIShim", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5-serial",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // The hand-written kernels, compiled per instruction set and chosen at start (KernelPath).
        .target(name: "CKernels"),
        // Calls a Swift non-escaping closure from the compute threads without boxing it (WorkerPool).
        .target(name: "CPartJob"),
        // Baseline x86-64: the binary runs on every x86-64 CPU; wide vectors come from CKernels and OpenBLAS.
        .target(
            name: "Model",
            dependencies: ["CBLAS", "CKernels", "CPartJob"],
            swiftSettings: [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]
        ),
        // HDF5 files (checkpoints, exit logits, shards) over CHDF5, and what the machine offers.
        .target(name: "Storage", dependencies: ["CHDF5"]),
        // The MPI world of ranks (world size 1 without mpirun) and the watch for stalled ranks.
        .target(name: "Communication", dependencies: ["Model", "CMPIShim"]),
        // Data sets: readers, decoders, augmentation, shards and the batch stream.
        .target(name: "DataPipeline", dependencies: ["Storage", "CTurboJPEG", "CPNG", "CZlib"]),
        // The budgeted evaluation, its reports and plots, and the exit logits file.
        .target(name: "Evaluation", dependencies: ["Model", "Storage", "DataPipeline"]),
        .target(
            name: "DistTrain",
            dependencies: ["Model", "Storage", "Communication", "DataPipeline", "Evaluation"]
        ),
        // Counts heap allocations by interposing malloc; linked only through Benchmarks.
        .target(name: "CAllocationCounter"),
        // Measurements and checks that the command line runs; not part of training.
        .target(
            name: "Benchmarks",
            dependencies: ["DistTrain", "Communication", "DataPipeline", "Model", "CAllocationCounter"]
        ),
        .target(
            name: "ReferenceParity",
            dependencies: ["DistTrain", "Evaluation", "Storage", "Model"]
        ),
        .executableTarget(
            name: "Launcher",
            dependencies: [
                "Benchmarks", "ReferenceParity", "DistTrain", "Evaluation", "DataPipeline", "Communication",
                "Storage", "Model",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ModelTests", dependencies: ["Model"]),
        // Helpers several test targets share (where the reference fixtures are).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // Also the tests of Storage, Communication, DataPipeline and Evaluation, in one process in
        // name order: RunSafetyTests' full-disk HDF5 write leaves HDF5 unable to close files
        // later in the same process, so the HDF5 writers must run before it.
        .testTarget(name: "DistTrainTests", dependencies: [
            "DistTrain", "Evaluation", "DataPipeline", "Communication", "Storage", "Benchmarks", "Model", "TestSupport",
        ]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "Communication", "Model"]),
        .testTarget(name: "ReferenceParityTests", dependencies: ["ReferenceParity", "DistTrain", "Storage", "Model", "TestSupport"]),
        .testTarget(name: "LauncherTests", dependencies: [
            "Launcher", "DistTrain", "Evaluation", "DataPipeline", "Communication", "Storage", "Model", "TestSupport",
        ]),
    ],
    swiftLanguageModes: [.v6]
)
