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

/// BatchNorm's row kernels over `count` contiguous floats; sums in Double, bit-identical on every path.
/// `sum x`.
typedef double (*DisttrainRowSum)(const float *x, ptrdiff_t count);
/// `sum (x - center)^2`, the deviations in Double.
typedef double (*DisttrainRowSquaredDeviations)(const float *x, ptrdiff_t count, double center);
/// `*sum = sum (x - shift)`, `*squares = sum (x - shift)^2`: both moments in one pass.
typedef void (*DisttrainRowShiftedMoments)(const float *x, ptrdiff_t count, double shift, double *sum, double *squares);
/// `y = x * scale + shift`, with relu `max(that, 0)` (a NaN passes through); `y` may be `x`.
typedef void (*DisttrainRowAffine)(const float *x, float *y, ptrdiff_t count, float scale, float shift, int relu);
/// `*gradientSum = sum g`, `*centeredSum = sum g * (x - center)` with `g = dy`, zeroed where
/// `x * scale + shift > 0` fails when relu is set.
typedef void (*DisttrainRowGradientSums)(const float *dy, const float *x, ptrdiff_t count, float scale, float shift,
                                         double center, int relu, double *gradientSum, double *centeredSum);
/// `dx += (g - gradientMean - (x - mean) * centeredCoefficient) * scale`, `g` masked as above.
typedef void (*DisttrainRowInputGradient)(const float *dy, const float *x, float *dx, ptrdiff_t count, float mean,
                                          float scale, float shift, int relu, float gradientMean, float centeredCoefficient);

/// One path's kernels.
typedef struct {
    DisttrainCorrelate correlate;
    DisttrainDotProducts3x3 dotProducts3x3;
    DisttrainRowSum rowSum;
    DisttrainRowSquaredDeviations rowSquaredDeviations;
    DisttrainRowShiftedMoments rowShiftedMoments;
    DisttrainRowAffine rowAffine;
    DisttrainRowGradientSums rowGradientSums;
    DisttrainRowInputGradient rowInputGradient;
} DisttrainKernelTable;

/// Whether this CPU (and the operating system, for the wide registers' state) runs `path`.
int disttrain_cpu_supports(DisttrainKernelPath path);

/// The kernels of `path`; the caller checks `disttrain_cpu_supports` first.
DisttrainKernelTable disttrain_kernel_table(DisttrainKernelPath path);

#endif
