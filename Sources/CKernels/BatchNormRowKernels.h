/* BatchNorm's per-channel row kernels, compiled once per path by KernelDispatch.c like the
 * convolution kernels. Sums of Floats are taken in Double (as PyTorch's CPU kernels take them) in
 * the same lanes on every path, two accumulators of eight Doubles reduced in a fixed order, and
 * nothing is fused into FMA: every path gives bit-identical results, only the width of the
 * instructions differs (SSE2 splits an eight-Double vector into four, AVX-512 holds it in one). */

#pragma clang fp contract(off)

#ifndef DISTTRAIN_BATCHNORM_ROW_TYPES
#define DISTTRAIN_BATCHNORM_ROW_TYPES
typedef float DisttrainFloat8 __attribute__((ext_vector_type(8)));
typedef int DisttrainInt8 __attribute__((ext_vector_type(8)));
typedef double DisttrainDouble8 __attribute__((ext_vector_type(8)));

/* Macros rather than functions: a vector argument or result of a function outside the AVX-512
 * path would change the calling convention with the path. */
/* Eight floats from `pointer` into the new variable `name`. */
#define DISTTRAIN_LOAD8(name, pointer) \
    DisttrainFloat8 name;              \
    __builtin_memcpy(&name, (pointer), sizeof name)
#define DISTTRAIN_WIDEN(value) __builtin_convertvector((value), DisttrainDouble8)
/* The lanes of the variable `v` summed pairwise, in the same order on every path. */
#define DISTTRAIN_LANES(v) ((((v)[0] + (v)[1]) + ((v)[2] + (v)[3])) + (((v)[4] + (v)[5]) + ((v)[6] + (v)[7])))
/* `g` where `x * scale + shift > 0` (the fused ReLU's mask, recomputed from the forward's affine
 * map), 0 elsewhere (NaN included). */
#define DISTTRAIN_MASKED(g, x, scale, shift) ((DisttrainFloat8)((DisttrainInt8)(g) & ((x) * (scale) + (shift) > 0)))
#endif

static double KERNEL_NAME(rowSum)(const float *x, ptrdiff_t count) {
    DisttrainDouble8 even = 0.0, odd = 0.0;
    ptrdiff_t i = 0;
    for (; i + 16 <= count; i += 16) {
        DISTTRAIN_LOAD8(a, x + i);
        DISTTRAIN_LOAD8(b, x + i + 8);
        even += DISTTRAIN_WIDEN(a);
        odd += DISTTRAIN_WIDEN(b);
    }
    DisttrainDouble8 both = even + odd;
    double total = DISTTRAIN_LANES(both);
    for (; i < count; i++) total += (double)x[i];
    return total;
}

static double KERNEL_NAME(rowSquaredDeviations)(const float *x, ptrdiff_t count, double center) {
    DisttrainDouble8 even = 0.0, odd = 0.0;
    ptrdiff_t i = 0;
    for (; i + 16 <= count; i += 16) {
        DISTTRAIN_LOAD8(x0, x + i);
        DISTTRAIN_LOAD8(x1, x + i + 8);
        DisttrainDouble8 a = DISTTRAIN_WIDEN(x0) - center, b = DISTTRAIN_WIDEN(x1) - center;
        even += a * a;
        odd += b * b;
    }
    DisttrainDouble8 both = even + odd;
    double total = DISTTRAIN_LANES(both);
    for (; i < count; i++) {
        double d = (double)x[i] - center;
        total += d * d;
    }
    return total;
}

static void KERNEL_NAME(rowShiftedMoments)(const float *x, ptrdiff_t count, double shift, double *sum, double *squares) {
    DisttrainDouble8 sumEven = 0.0, sumOdd = 0.0, squaresEven = 0.0, squaresOdd = 0.0;
    ptrdiff_t i = 0;
    for (; i + 16 <= count; i += 16) {
        DISTTRAIN_LOAD8(x0, x + i);
        DISTTRAIN_LOAD8(x1, x + i + 8);
        DisttrainDouble8 a = DISTTRAIN_WIDEN(x0) - shift, b = DISTTRAIN_WIDEN(x1) - shift;
        sumEven += a;
        sumOdd += b;
        squaresEven += a * a;
        squaresOdd += b * b;
    }
    DisttrainDouble8 sums = sumEven + sumOdd, squareSums = squaresEven + squaresOdd;
    double total = DISTTRAIN_LANES(sums), totalSquares = DISTTRAIN_LANES(squareSums);
    for (; i < count; i++) {
        double d = (double)x[i] - shift;
        total += d;
        totalSquares += d * d;
    }
    *sum = total;
    *squares = totalSquares;
}

static void KERNEL_NAME(rowAffine)(const float *x, float *y, ptrdiff_t count, float scale, float shift, int relu) {
    /* max(value, 0) as Swift computes it, `0 >= value ? 0 : value`: a NaN passes through. */
    if (relu) {
        for (ptrdiff_t i = 0; i < count; i++) {
            float value = x[i] * scale + shift;
            y[i] = 0 >= value ? 0 : value;
        }
    } else {
        for (ptrdiff_t i = 0; i < count; i++) y[i] = x[i] * scale + shift;
    }
}

static void KERNEL_NAME(rowGradientSums)(const float *dy, const float *x, ptrdiff_t count, float scale, float shift,
                                         double center, int relu, double *gradientSum, double *centeredSum) {
    DisttrainDouble8 gradientEven = 0.0, gradientOdd = 0.0, centeredEven = 0.0, centeredOdd = 0.0;
    ptrdiff_t i = 0;
    for (; i + 16 <= count; i += 16) {
        DISTTRAIN_LOAD8(x0, x + i);
        DISTTRAIN_LOAD8(x1, x + i + 8);
        DISTTRAIN_LOAD8(dy0, dy + i);
        DISTTRAIN_LOAD8(dy1, dy + i + 8);
        DisttrainDouble8 g0 = DISTTRAIN_WIDEN(relu ? DISTTRAIN_MASKED(dy0, x0, scale, shift) : dy0);
        DisttrainDouble8 g1 = DISTTRAIN_WIDEN(relu ? DISTTRAIN_MASKED(dy1, x1, scale, shift) : dy1);
        gradientEven += g0;
        gradientOdd += g1;
        centeredEven += g0 * (DISTTRAIN_WIDEN(x0) - center);
        centeredOdd += g1 * (DISTTRAIN_WIDEN(x1) - center);
    }
    DisttrainDouble8 gradients = gradientEven + gradientOdd, centered = centeredEven + centeredOdd;
    double gradientTotal = DISTTRAIN_LANES(gradients);
    double centeredTotal = DISTTRAIN_LANES(centered);
    for (; i < count; i++) {
        float value = x[i], g = dy[i];
        if (relu && !(value * scale + shift > 0)) g = 0;
        gradientTotal += (double)g;
        centeredTotal += (double)g * ((double)value - center);
    }
    *gradientSum = gradientTotal;
    *centeredSum = centeredTotal;
}

static void KERNEL_NAME(rowInputGradient)(const float *dy, const float *x, float *restrict dx, ptrdiff_t count, float mean,
                                          float scale, float shift, int relu, float gradientMean, float centeredCoefficient) {
    for (ptrdiff_t i = 0; i < count; i++) {
        float value = x[i], g = dy[i];
        if (relu && !(value * scale + shift > 0)) g = 0;
        dx[i] += (g - gradientMean - (value - mean) * centeredCoefficient) * scale;
    }
}

#pragma clang fp contract(on)
