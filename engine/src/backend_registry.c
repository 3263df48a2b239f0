/* The one place that knows which backends this build has. */
#include "buildconfig.h"
#include "backend.h"

#include <string.h>

#if HAVE_CUDA
extern const SsfpnBackend ssfpn_cuda_backend;
#endif

static const SsfpnBackend *const backends[] = {
  &ssfpn_cpu_backend,
#if HAVE_CUDA
  &ssfpn_cuda_backend,
#endif
};

const SsfpnBackend *
ssfpn_backend_find (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (backends); i++)
    if (strcmp (backends[i]->name, name) == 0)
      return backends[i];
  return NULL;
}

gboolean
ssfpn_plan_options_check_shape (const SsfpnPlanOptions *options,
                                GError **error)
{
  if (options->batch < 1 || options->height < 1 || options->width < 1) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "batch %d, input %dx%d: all must be at least 1",
                 options->batch, options->height, options->width);
    return FALSE;
  }
  return TRUE;
}
