/* Hands a Swift non-escaping closure to other threads without boxing it. Swift can only make a
 * non-escaping closure storable with `withoutActuallyEscaping`, which allocates a heap context
 * for every conversion, one allocation per parallel call; here the closure's two words are read
 * and called through Clang's `swiftcall` convention, which is Swift's own: a closure argument is
 * passed as (function, context), and a closure is called with its context in `swift_context`. */

#include "CPartJob.h"

/* Declared in Swift (WorkerPool.swift) as `@_silgen_name("disttrain_part_job_make")
 * func partJob(_ body: (Int) -> Void) -> disttrain_part_job`. */
__attribute__((swiftcall)) disttrain_part_job disttrain_part_job_make(const void *function, const void *context);

__attribute__((swiftcall)) disttrain_part_job disttrain_part_job_make(const void *function, const void *context) {
    disttrain_part_job job = {function, context};
    return job;
}

typedef void (*swift_part_function)(intptr_t part, void *__attribute__((swift_context)) context) __attribute__((swiftcall));

void disttrain_part_job_run(disttrain_part_job job, intptr_t part) {
    ((swift_part_function)job.function)(part, (void *)job.context);
}
