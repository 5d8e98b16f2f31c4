/* The direct-convolution kernels, written once over a vector of KERNEL_WIDTH floats and compiled
 * once per path by KernelDispatch.c, which defines KERNEL_WIDTH, KERNEL_NAME(name) and the target
 * attributes in force before each inclusion. The accumulations are `a += x * w` so that clang
 * fuses them into FMA instructions where the path has them (-ffp-contract=on, its default). */

typedef float KERNEL_NAME(Vector) __attribute__((ext_vector_type(KERNEL_WIDTH)));

static inline KERNEL_NAME(Vector) KERNEL_NAME(load)(const float *pointer) {
    KERNEL_NAME(Vector) value;
    __builtin_memcpy(&value, pointer, sizeof value);
    return value;
}

static inline void KERNEL_NAME(store)(float *pointer, KERNEL_NAME(Vector) value) {
    __builtin_memcpy(pointer, &value, sizeof value);
}

static inline float KERNEL_NAME(sum)(KERNEL_NAME(Vector) value) {
    float total = 0;
    for (int lane = 0; lane < KERNEL_WIDTH; lane++) total += value[lane];
    return total;
}

/* Six rows times two vectors of positions: twelve independent accumulators per loaded pair of
 * input vectors, enough to hide the FMA latency, each weight broadcast from memory. */
static void KERNEL_NAME(correlate)(const float *source, ptrdiff_t channelStride, ptrdiff_t channels,
                                   const ptrdiff_t *taps, ptrdiff_t tapCount, const float *weights,
                                   ptrdiff_t count, float *destination, ptrdiff_t destinationStride,
                                   ptrdiff_t rows) {
    typedef KERNEL_NAME(Vector) Vector;
    for (ptrdiff_t q = 0; q < count; q += 2 * KERNEL_WIDTH) {
        Vector a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0;
        Vector b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0;
        const float *w = weights;
        const float *channel = source + q;
        for (ptrdiff_t c = 0; c < channels; c++) {
            for (ptrdiff_t t = 0; t < tapCount; t++) {
                const float *x = channel + taps[t];
                Vector low = KERNEL_NAME(load)(x), high = KERNEL_NAME(load)(x + KERNEL_WIDTH);
                /* Row j's weight broadcast and applied to both vectors of positions. */
#define ACCUMULATE(j, a, b) do { Vector weight = w[j]; a += low * weight; b += high * weight; } while (0)
                ACCUMULATE(0, a0, b0);
                ACCUMULATE(1, a1, b1);
                ACCUMULATE(2, a2, b2);
                ACCUMULATE(3, a3, b3);
                ACCUMULATE(4, a4, b4);
                ACCUMULATE(5, a5, b5);
#undef ACCUMULATE
                w += 6;
            }
            channel += channelStride;
        }
        float *target = destination + q;
#define STORE_ROW(j, a, b) do { if (rows > j) { KERNEL_NAME(store)(target + j * destinationStride, a); \
                                                KERNEL_NAME(store)(target + j * destinationStride + KERNEL_WIDTH, b); } } while (0)
        STORE_ROW(0, a0, b0);
        STORE_ROW(1, a1, b1);
        STORE_ROW(2, a2, b2);
        STORE_ROW(3, a3, b3);
        STORE_ROW(4, a4, b4);
        STORE_ROW(5, a5, b5);
#undef STORE_ROW
    }
}

/* Nine accumulators: three rows times three vectors, each loaded vector used three times. */
static void KERNEL_NAME(dotProducts3x3)(const float *row0, const float *row1, const float *row2,
                                        const float *x0Row, const float *x1Row, const float *x2Row, ptrdiff_t count,
                                        float *sums) {
    typedef KERNEL_NAME(Vector) Vector;
    const float *rows[3] = {row0, row1, row2};
    const float *x[3] = {x0Row, x1Row, x2Row};
    Vector s00 = 0, s01 = 0, s02 = 0, s10 = 0, s11 = 0, s12 = 0, s20 = 0, s21 = 0, s22 = 0;
    ptrdiff_t q = 0;
    for (; q + KERNEL_WIDTH <= count; q += KERNEL_WIDTH) {
        Vector x0 = KERNEL_NAME(load)(x[0] + q), x1 = KERNEL_NAME(load)(x[1] + q), x2 = KERNEL_NAME(load)(x[2] + q);
        Vector d = KERNEL_NAME(load)(rows[0] + q);
        s00 += d * x0;
        s01 += d * x1;
        s02 += d * x2;
        d = KERNEL_NAME(load)(rows[1] + q);
        s10 += d * x0;
        s11 += d * x1;
        s12 += d * x2;
        d = KERNEL_NAME(load)(rows[2] + q);
        s20 += d * x0;
        s21 += d * x1;
        s22 += d * x2;
    }
    sums[0] = KERNEL_NAME(sum)(s00); sums[1] = KERNEL_NAME(sum)(s01); sums[2] = KERNEL_NAME(sum)(s02);
    sums[3] = KERNEL_NAME(sum)(s10); sums[4] = KERNEL_NAME(sum)(s11); sums[5] = KERNEL_NAME(sum)(s12);
    sums[6] = KERNEL_NAME(sum)(s20); sums[7] = KERNEL_NAME(sum)(s21); sums[8] = KERNEL_NAME(sum)(s22);
    for (; q < count; q++) {
        for (int j = 0; j < 3; j++) {
            float d = rows[j][q];
            sums[3 * j] += d * x[0][q];
            sums[3 * j + 1] += d * x[1][q];
            sums[3 * j + 2] += d * x[2][q];
        }
    }
}
