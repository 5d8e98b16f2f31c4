#ifndef DISTTRAIN_CPNG_H
#define DISTTRAIN_CPNG_H
#include <png.h>

/* libpng's simplified-API constants are macros Swift may not import. */
static inline png_uint_32 shim_png_image_version(void) { return PNG_IMAGE_VERSION; }
static inline png_uint_32 shim_png_format_gray(void) { return PNG_FORMAT_GRAY; }
static inline png_uint_32 shim_png_format_rgb(void) { return PNG_FORMAT_RGB; }
static inline int shim_png_image_failed(png_imagep image) { return PNG_IMAGE_FAILED(*image); }
#endif
