#ifndef DISTTRAIN_CBLAS_H
#define DISTTRAIN_CBLAS_H
#include <cblas.h>
#endif
