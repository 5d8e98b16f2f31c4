#ifndef DISTTRAIN_CTURBOJPEG_H
#define DISTTRAIN_CTURBOJPEG_H
#include <turbojpeg.h>
#endif
