/* Reading the safetensors container: header, metadata and tensor table,
 * every field validated before it is trusted. Tensor bytes stay in the
 * mapped file; conversion to float happens on request. */
#ifndef SSFPN_SAFETENSORS_H
#define SSFPN_SAFETENSORS_H

#include <glib.h>

G_BEGIN_DECLS

#define SSFPN_MAX_RANK 8

typedef enum {
  SSFPN_DTYPE_F32,
  SSFPN_DTYPE_F16,
  SSFPN_DTYPE_BF16,
  /* Accepted only for `*.num_batches_tracked`, which PyTorch keeps as
   * int64 and the engine ignores: files saved straight from a state_dict
   * load without editing. */
  SSFPN_DTYPE_I64,
} SsfpnDtype;

typedef struct {
  char *name;
  SsfpnDtype dtype;
  int rank;
  gint64 shape[SSFPN_MAX_RANK];
  gint64 numel;
  const guint8 *data; /* inside the mapped file; not aligned */
} SsfpnStTensor;

typedef struct {
  char *source;          /* file name used in messages */
  GBytes *bytes;         /* the whole file */
  GHashTable *tensors;   /* name -> SsfpnStTensor* */
  GHashTable *metadata;  /* key -> value, both strings */
} SsfpnSafetensors;

/* Maps @path read-only and parses it. */
SsfpnSafetensors *ssfpn_safetensors_open (const char *path, GError **error);
/* Parses @bytes (referenced); @source names it in messages. */
SsfpnSafetensors *ssfpn_safetensors_parse (GBytes *bytes, const char *source,
                                           GError **error);
void ssfpn_safetensors_free (SsfpnSafetensors *st);

/* NULL when absent. */
const SsfpnStTensor *ssfpn_safetensors_get (const SsfpnSafetensors *st,
                                            const char *name);
const char *ssfpn_safetensors_metadata (const SsfpnSafetensors *st,
                                        const char *key);

/* A new float32 copy of the tensor's values (g_free it). */
float *ssfpn_st_tensor_to_f32 (const SsfpnStTensor *tensor);

/* Element conversions, exposed for tests. */
float ssfpn_f16_to_f32 (guint16 h);
float ssfpn_bf16_to_f32 (guint16 b);

G_END_DECLS

#endif /* SSFPN_SAFETENSORS_H */
