#ifndef DISTTRAIN_CPARTJOB_H
#define DISTTRAIN_CPARTJOB_H

#include <stdint.h>

/// A Swift closure `(Int) -> Void` as its two machine words: the function, and the context that
/// holds its captures (for a non-escaping closure, on its caller's stack). Only valid while the
/// closure is, i.e. while the call that received it has not returned.
typedef struct {
    const void *function;
    const void *context;
} disttrain_part_job;

/// Calls `job(part)` with Swift's calling convention (the context in the `swift_context` register).
void disttrain_part_job_run(disttrain_part_job job, intptr_t part);

#endif
