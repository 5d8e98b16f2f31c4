/* Compiles DirectConvolutionKernels.h and BatchNormRowKernels.h once per path: the portable one for the build's baseline
 * (SSE2 on x86-64), the others with per-function target attributes, so one binary runs on every
 * x86-64 CPU and uses the widest vectors the CPU has; the caller picks the path once at start. */

#include "CKernels.h"

#define KERNEL_NAME(name) portable_##name
#define KERNEL_WIDTH 4
#include "DirectConvolutionKernels.h"
#include "BatchNormRowKernels.h"
#include "KernelTable.h"
#undef KERNEL_NAME
#undef KERNEL_WIDTH

#if defined(__x86_64__)

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define KERNEL_NAME(name) avx2_##name
#define KERNEL_WIDTH 8
#include "DirectConvolutionKernels.h"
#include "BatchNormRowKernels.h"
#include "KernelTable.h"
#undef KERNEL_NAME
#undef KERNEL_WIDTH
#pragma clang attribute pop

/* min_vector_width keeps clang from splitting the 512-bit vectors into pairs of 256-bit ones. */
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"), min_vector_width(512))), apply_to = function)
#define KERNEL_NAME(name) avx512_##name
#define KERNEL_WIDTH 16
#include "DirectConvolutionKernels.h"
#include "BatchNormRowKernels.h"
#include "KernelTable.h"
#undef KERNEL_NAME
#undef KERNEL_WIDTH
#pragma clang attribute pop

int disttrain_cpu_supports(DisttrainKernelPath path) {
    __builtin_cpu_init();
    switch (path) {
    case DisttrainKernelPathPortable:
        return 1;
    case DisttrainKernelPathAVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case DisttrainKernelPathAVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return 0;
}

DisttrainKernelTable disttrain_kernel_table(DisttrainKernelPath path) {
    switch (path) {
    case DisttrainKernelPathAVX512:
        return avx512_table;
    case DisttrainKernelPathAVX2:
        return avx2_table;
    default:
        return portable_table;
    }
}

#else

int disttrain_cpu_supports(DisttrainKernelPath path) {
    return path == DisttrainKernelPathPortable;
}

DisttrainKernelTable disttrain_kernel_table(DisttrainKernelPath path) {
    (void)path;
    return portable_table;
}

#endif
