/* libFuzzer target: any bytes through the container parser, the float
 * conversions and the whole model build. Errors are expected; crashes,
 * leaks, sanitizer reports and GLib criticals are bugs. */
#include <glib.h>

#include "safetensors.h"
#include "ssfpn/ssfpn.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  /* A critical is a broken precondition inside the engine: make it a
   * crash the fuzzer reports. */
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_FATAL_MASK);
  return 0;
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  /* A copy of exactly @size bytes, so any over-read hits a redzone. */
  GBytes *bytes = g_bytes_new (data, size);
  GError *error = NULL;
  SsfpnSafetensors *st;
  SsfpnModel *model;

  st = ssfpn_safetensors_parse (bytes, "fuzz.safetensors", &error);
  if (st)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, st->tensors);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        g_free (ssfpn_st_tensor_to_f32 (value));
      ssfpn_safetensors_free (st);
    }
  g_clear_error (&error);

  model = ssfpn_model_open_bytes (bytes, "fuzz.safetensors", &error);
  if (model)
    ssfpn_model_unref (model);
  g_clear_error (&error);

  g_bytes_unref (bytes);
  return 0;
}
