// swift-tools-version:6.0
import PackageDescription

// Modules depend downward only: Launcher -> Benchmarks, ReferenceParity -> DistTrain -> Model -> C shims.
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
        // Baseline x86-64: the binary runs on every x86-64 CPU; wide vectors come from CKernels and OpenBLAS.
        .target(
            name: "Model",
            dependencies: ["CBLAS", "CKernels"],
            swiftSettings: [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]
        ),
        .target(
            name: "DistTrain",
            dependencies: ["Model", "CMPIShim", "CHDF5", "CTurboJPEG", "CPNG", "CZlib"]
        ),
        // Counts heap allocations by interposing malloc; linked only through Benchmarks.
        .target(name: "CAllocationCounter"),
        // Measurements and checks that the command line runs; not part of training.
        .target(
            name: "Benchmarks",
            dependencies: ["DistTrain", "Model", "CAllocationCounter"]
        ),
        .target(
            name: "ReferenceParity",
            dependencies: ["DistTrain", "Model"]
        ),
        .executableTarget(
            name: "Launcher",
            dependencies: [
                "Benchmarks", "ReferenceParity", "DistTrain", "Model",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ModelTests", dependencies: ["Model"]),
        // Helpers several test targets share (where the reference fixtures are).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "DistTrainTests", dependencies: ["DistTrain", "Model", "TestSupport"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "Model"]),
        .testTarget(name: "ReferenceParityTests", dependencies: ["ReferenceParity", "DistTrain", "Model", "TestSupport"]),
        .testTarget(name: "LauncherTests", dependencies: ["Launcher", "DistTrain", "Model", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
