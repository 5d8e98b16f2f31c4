#ifndef DISTTRAIN_CHDF5_H
#define DISTTRAIN_CHDF5_H
#include <hdf5.h>

// HDF5's property-list defaults, access flags and native type ids are macros (several expand
// to function calls that initialise the library), which Swift cannot import.
static inline hid_t shim_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t shim_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t shim_h5p_dataset_access(void) { return H5P_DATASET_ACCESS; }
static inline hid_t shim_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t shim_h5p_dataset_xfer(void) { return H5P_DATASET_XFER; }
static inline unsigned shim_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned shim_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned shim_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned shim_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline hid_t shim_h5s_all(void) { return H5S_ALL; }
static inline hid_t shim_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t shim_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t shim_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t shim_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t shim_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t shim_c_s1(void) { return H5T_C_S1; }
static inline size_t shim_variable(void) { return H5T_VARIABLE; }
static inline hsize_t shim_unlimited(void) { return H5S_UNLIMITED; }
static inline hid_t shim_h5e_default(void) { return H5E_DEFAULT; }
static inline hid_t shim_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t shim_std_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t shim_std_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t shim_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t shim_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t shim_std_u8le(void) { return H5T_STD_U8LE; }

#endif
