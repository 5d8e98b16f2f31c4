#ifndef DISTTRAIN_CALLOCATIONCOUNTER_H
#define DISTTRAIN_CALLOCATIONCOUNTER_H

/// Heap allocations (malloc, calloc, realloc of a new block, posix_memalign, aligned_alloc,
/// memalign) made by every thread of this process so far.
unsigned long long disttrain_allocation_count(void);

#endif
