#ifndef DISTTRAIN_CKERNELS_H
#define DISTTRAIN_CKERNELS_H

#include <stddef.h>

/// The instruction sets a kernel path is compiled for, best last.
typedef enum {
    DisttrainKernelPathPortable = 0,  /* baseline x86-64 (SSE2) or the host's baseline elsewhere */
    DisttrainKernelPathAVX2 = 1,      /* AVX2 + FMA */
    DisttrainKernelPathAVX512 = 2,    /* AVX-512F + AVX2 + FMA */
} DisttrainKernelPath;

/// `destination[j*destinationStride + q] = sum_{c, t} weights[(c*tapCount + t)*6 + j] * source[c*channelStride + q + taps[t]]`
/// for `j < rows` (at most 6) and every `q` below `count` rounded up to the path's step (at most
/// 32): `source` must be readable that far past its last position plus the largest tap.
typedef void (*DisttrainCorrelate)(const float *source, ptrdiff_t channelStride, ptrdiff_t channels,
                                   const ptrdiff_t *taps, ptrdiff_t tapCount, const float *weights,
                                   ptrdiff_t count, float *destination, ptrdiff_t destinationStride,
                                   ptrdiff_t rows);

/// `sums[3*j + i] = sum_{q < count} row_j[q] * x_i[q]` for `j, i < 3`.
typedef void (*DisttrainDotProducts3x3)(const float *row0, const float *row1, const float *row2,
                                        const float *x0, const float *x1, const float *x2, ptrdiff_t count,
                                        float *sums);

/// One path's kernels.
typedef struct {
    DisttrainCorrelate correlate;
    DisttrainDotProducts3x3 dotProducts3x3;
} DisttrainKernelTable;

/// Whether this CPU (and the operating system, for the wide registers' state) runs `path`.
int disttrain_cpu_supports(DisttrainKernelPath path);

/// The kernels of `path`; the caller checks `disttrain_cpu_supports` first.
DisttrainKernelTable disttrain_kernel_table(DisttrainKernelPath path);

#endif
