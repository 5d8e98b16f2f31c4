#ifndef DISTTRAIN_CZLIB_H
#define DISTTRAIN_CZLIB_H
#include <zlib.h>

// inflateInit2 is a macro (it passes the library version and the stream's size), which Swift
// cannot import. Window bits 15 + 16: a gzip stream with the largest window, header and trailer
// (CRC-32 and length) checked by zlib.
static inline int shim_inflate_init_gzip(z_streamp stream) { return inflateInit2(stream, 15 + 16); }
#endif
