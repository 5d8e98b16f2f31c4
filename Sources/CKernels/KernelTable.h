/* One path's kernel table, after DirectConvolutionKernels.h and BatchNormRowKernels.h. */

static const DisttrainKernelTable KERNEL_NAME(table) = {
    .correlate = KERNEL_NAME(correlate),
    .dotProducts3x3 = KERNEL_NAME(dotProducts3x3),
    .rowSum = KERNEL_NAME(rowSum),
    .rowSquaredDeviations = KERNEL_NAME(rowSquaredDeviations),
    .rowShiftedMoments = KERNEL_NAME(rowShiftedMoments),
    .rowAffine = KERNEL_NAME(rowAffine),
    .rowGradientSums = KERNEL_NAME(rowGradientSums),
    .rowInputGradient = KERNEL_NAME(rowInputGradient),
};
