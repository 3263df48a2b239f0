/* The default model: an F16 model file compiled into the library as a
 * GResource (engine/data/), opened straight from the library's read-only
 * data without a copy. */
#include "buildconfig.h"

#include <gio/gio.h>

#include "ssfpn/ssfpn.h"
#include "ssfpn-default-model.h"

#define DEFAULT_MODEL_PATH "/org/ssfpn/default/model.safetensors"

/* The generated resource exists once initialised; done on first use rather
 * than in a constructor, so loading the library costs nothing. */
static GResource *
default_resource (void)
{
  static gsize initialised = 0;
  if (g_once_init_enter (&initialised))
    {
      ssfpn_default_model_register_resource ();
      g_once_init_leave (&initialised, 1);
    }
  return ssfpn_default_model_get_resource ();
}

SsfpnModel *
ssfpn_model_open_default (GError **error)
{
  GError *local = NULL;
  g_autoptr (GBytes) bytes = g_resource_lookup_data (
      default_resource (), DEFAULT_MODEL_PATH,
      G_RESOURCE_LOOKUP_FLAGS_NONE, &local);
  if (bytes == NULL)
    {
      /* Only a broken build gets here: the resource is linked in. */
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO,
                   "the built-in default model is missing from this build: %s",
                   local->message);
      g_error_free (local);
      return NULL;
    }
  return ssfpn_model_open_bytes (bytes, SSFPN_DEFAULT_MODEL_NAME, error);
}
