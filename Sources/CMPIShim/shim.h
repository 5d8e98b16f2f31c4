#ifndef DISTTRAIN_CMPISHIM_H
#define DISTTRAIN_CMPISHIM_H
#include <mpi.h>

// Open MPI defines its handles as macros over addresses of global objects, which Swift
// cannot import; these accessors return them as values.
static inline MPI_Comm shim_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm shim_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype shim_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype shim_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype shim_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype shim_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype shim_uint8(void) { return MPI_UINT8_T; }
static inline MPI_Datatype shim_byte(void) { return MPI_BYTE; }
static inline MPI_Op shim_op_sum(void) { return MPI_SUM; }
static inline MPI_Op shim_op_max(void) { return MPI_MAX; }
static inline MPI_Op shim_op_min(void) { return MPI_MIN; }
static inline MPI_Errhandler shim_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline void *shim_in_place(void) { return MPI_IN_PLACE; }
static inline int shim_success(void) { return MPI_SUCCESS; }
static inline int shim_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int shim_thread_funneled(void) { return MPI_THREAD_FUNNELED; }

#endif
