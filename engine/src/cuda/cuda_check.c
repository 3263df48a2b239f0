/* The messages of CUDA_CHECK and CUDNN_CHECK. */
#include "cuda/cuda_check.h"

#include "ssfpn/ssfpn.h"

void
cuda_error_set (GError **error, cudaError_t status, const char *call,
                const char *file, int line)
{
  gboolean no_memory = status == cudaErrorMemoryAllocation;
  char *base = g_path_get_basename (file);

  /* Clears the error state that non-sticky errors leave behind, so the
   * next call does not report this one again. */
  (void) cudaGetLastError ();
  g_set_error (error, SSFPN_ERROR,
               no_memory ? SSFPN_ERROR_DEVICE : SSFPN_ERROR_RUNTIME,
               "%s%s failed at %s:%d: %s (%s)",
               no_memory ? "out of GPU memory: " : "CUDA: ", call, base, line,
               cudaGetErrorString (status), cudaGetErrorName (status));
  g_free (base);
}

void
cudnn_error_set (GError **error, cudnnStatus_t status, const char *call,
                 const char *file, int line)
{
  char detail[512] = "";
  gboolean no_memory
      = status == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED
        || status == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
  char *base = g_path_get_basename (file);

  cudnnGetLastErrorString (detail, sizeof detail);
  g_set_error (error, SSFPN_ERROR,
               no_memory ? SSFPN_ERROR_DEVICE : SSFPN_ERROR_RUNTIME,
               "%scuDNN: %s failed at %s:%d: %s%s%s",
               no_memory ? "out of memory: " : "", call, base, line,
               cudnnGetErrorString (status), detail[0] ? ": " : "", detail);
  g_free (base);
}
