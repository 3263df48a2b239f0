/* Checked CUDA and cuDNN calls: a failure sets the GError named `error` in
 * the calling function, naming the call, file, line and the library's own
 * reason, and jumps to the function's `fail` label. Out-of-memory is
 * reported as such (SSFPN_ERROR_DEVICE) so a user knows what to change. */
#ifndef SSFPN_CUDA_CHECK_H
#define SSFPN_CUDA_CHECK_H

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <glib.h>

G_BEGIN_DECLS

void cuda_error_set (GError **error, cudaError_t status, const char *call,
                     const char *file, int line);
void cudnn_error_set (GError **error, cudnnStatus_t status, const char *call,
                      const char *file, int line);

#define CUDA_CHECK(call)                                                   \
  G_STMT_START {                                                           \
    cudaError_t cuda_status_ = (call);                                     \
    if (cuda_status_ != cudaSuccess) {                                     \
      cuda_error_set (error, cuda_status_, #call, __FILE__, __LINE__);     \
      goto fail;                                                           \
    }                                                                      \
  } G_STMT_END

#define CUDNN_CHECK(call)                                                  \
  G_STMT_START {                                                           \
    cudnnStatus_t cudnn_status_ = (call);                                  \
    if (cudnn_status_ != CUDNN_STATUS_SUCCESS) {                           \
      cudnn_error_set (error, cudnn_status_, #call, __FILE__, __LINE__);   \
      goto fail;                                                           \
    }                                                                      \
  } G_STMT_END

G_END_DECLS

#endif /* SSFPN_CUDA_CHECK_H */
