/* The on-disk cache of cuDNN engine choices; see cuda_engine_cache.h.
 *
 * File format (text, one record per line):
 *   ssfpn cudnn engines 1
 *   key model=<hash> gpu=<name> sm=<major>.<minor> cudnn=<version> ...
 *   conv <op> <tier> <engine index> <n knobs> <type>:<value> ...
 *   end <number of conv lines>
 */
#define G_LOG_DOMAIN "ssfpn-cuda"

#include "cuda/cuda_engine_cache.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <errno.h>
#include <string.h>

#define HEADER "ssfpn cudnn engines 1"

struct _CudaEngineCache {
  char *path;            /* NULL: cache off */
  char *key;
  guint n_ops;
  CudaConvChoice *choices; /* per op */
  gboolean *present;       /* per op */
  gboolean changed;
};

/* ---- hashing -------------------------------------------------------------- */

/* FNV-1a over 32-bit words: fast enough for tens of millions of weights
 * at plan time, and any change of a weight changes the key. */
typedef struct {
  guint64 value;
} Hash;

static void
hash_word (Hash *h, guint32 word)
{
  h->value ^= word;
  h->value *= G_GUINT64_CONSTANT (0x100000001b3);
}

static void
hash_int (Hash *h, gint64 value)
{
  hash_word (h, (guint32) value);
  hash_word (h, (guint32) ((guint64) value >> 32));
}

static void
hash_floats (Hash *h, const float *values, gsize n)
{
  hash_int (h, values != NULL ? (gint64) n : -1);
  for (gsize i = 0; values != NULL && i < n; i++) {
    guint32 bits;

    memcpy (&bits, &values[i], sizeof bits);
    hash_word (h, bits);
  }
}

static void
hash_bytes (Hash *h, const char *text)
{
  for (const char *p = text; *p != '\0'; p++)
    hash_word (h, (guint8) *p);
}

guint64
cuda_graph_hash (const SsfpnGraph *graph)
{
  Hash h = { G_GUINT64_CONSTANT (0xcbf29ce484222325) };

  hash_int (&h, graph->nc);
  hash_int (&h, graph->na);
  hash_int (&h, graph->nl);
  for (guint t = 0; t < graph->tensors->len; t++) {
    const SsfpnTensor *tensor = ssfpn_graph_tensor (graph, (int) t);

    hash_int (&h, tensor->channels);
    hash_int (&h, tensor->parent);
    hash_int (&h, tensor->channel_offset);
  }
  for (guint i = 0; i < graph->ops->len; i++) {
    const SsfpnOp *op = ssfpn_graph_op (graph, (int) i);

    hash_int (&h, op->type);
    hash_int (&h, op->input);
    hash_int (&h, op->output);
    switch (op->type) {
      case SSFPN_OP_CONV2D:{
        const SsfpnConv2dParams *c = &op->p.conv;
        gsize n_weights = (gsize) c->out_channels
            * (c->groups > 0 ? c->in_channels / c->groups : 0)
            * c->kernel * c->kernel;

        hash_int (&h, c->in_offset);
        hash_int (&h, c->in_channels);
        hash_int (&h, c->out_channels);
        hash_int (&h, c->kernel);
        hash_int (&h, c->stride);
        hash_int (&h, c->pad);
        hash_int (&h, c->groups);
        hash_int (&h, c->act);
        hash_floats (&h, &c->act_alpha, 1);
        hash_floats (&h, &c->out_scale, 1);
        hash_int (&h, c->residual);
        hash_int (&h, c->accumulate);
        hash_floats (&h, c->weight, n_weights);
        hash_floats (&h, c->bias, c->out_channels);
        hash_floats (&h, c->out_shift, c->out_channels);
        break;
      }
      case SSFPN_OP_UPSAMPLE_NEAREST:
        hash_int (&h, op->p.upsample.factor);
        break;
      case SSFPN_OP_MAXPOOL:
        hash_int (&h, op->p.maxpool.kernel);
        hash_int (&h, op->p.maxpool.stride);
        hash_int (&h, op->p.maxpool.pad);
        break;
      case SSFPN_OP_SPACE_TO_DEPTH:
      case SSFPN_OP_CONTRACT:
        hash_int (&h, op->p.reorder.gain);
        break;
      case SSFPN_OP_COPY:
        break;
      case SSFPN_OP_DETECT:
        hash_int (&h, op->p.detect.level);
        hash_int (&h, op->p.detect.stride);
        hash_int (&h, op->p.detect.na);
        hash_int (&h, op->p.detect.nc);
        hash_floats (&h, op->p.detect.anchors, 2 * (gsize) op->p.detect.na);
        break;
    }
  }
  return h.value;
}

/* ---- reading -------------------------------------------------------------- */

static gboolean
parse_int (const char *text, gint64 min, gint64 max, gint64 *value)
{
  char *end = NULL;

  errno = 0;
  *value = g_ascii_strtoll (text, &end, 10);
  return errno == 0 && end != text && *end == '\0' && *value >= min
         && *value <= max;
}

/* One "conv" line into the cache; the reason in @why when it is bad. */
static gboolean
parse_conv (CudaEngineCache *cache, const SsfpnGraph *graph, char **fields,
            const char **why)
{
  guint n_fields = g_strv_length (fields);
  gint64 op, tier, engine, n_knobs;
  CudaConvChoice choice = { 0 };

  if (n_fields < 5 || !parse_int (fields[1], 0, (gint64) cache->n_ops - 1, &op)
      || !parse_int (fields[2], 0, CUDA_CONV_TIERS - 1, &tier)
      || !parse_int (fields[3], 0, G_MAXINT64, &engine)
      || !parse_int (fields[4], 0, CUDA_CONV_MAX_KNOBS, &n_knobs)
      || n_fields != 5 + (guint) n_knobs) {
    *why = "a conv line does not parse";
    return FALSE;
  }
  if (ssfpn_graph_op (graph, (int) op)->type != SSFPN_OP_CONV2D
      || cache->present[op]) {
    *why = "a conv line names an op that is no convolution, or twice";
    return FALSE;
  }
  choice.tier = (int) tier;
  choice.engine_index = engine;
  choice.n_knobs = (int) n_knobs;
  for (int k = 0; k < n_knobs; k++) {
    char **pair = g_strsplit (fields[5 + k], ":", 3);
    gint64 type = 0, value = 0;
    gboolean ok = g_strv_length (pair) == 2
                  && parse_int (pair[0], 0, G_MAXINT32, &type)
                  && parse_int (pair[1], G_MININT64, G_MAXINT64, &value);

    g_strfreev (pair);
    if (!ok) {
      *why = "a knob does not parse";
      return FALSE;
    }
    choice.knob_types[k] = (int) type;
    choice.knob_values[k] = value;
  }
  cache->choices[op] = choice;
  cache->present[op] = TRUE;
  return TRUE;
}

/* FALSE with @why when the file is not one this key can trust. */
static gboolean
parse_file (CudaEngineCache *cache, const SsfpnGraph *graph,
            const char *contents, const char **why)
{
  char **lines = g_strsplit (contents, "\n", -1);
  char *key_line = g_strconcat ("key ", cache->key, NULL);
  guint n_lines = g_strv_length (lines), i = 2;
  gint64 convs = 0, declared = -1;
  gboolean ok = FALSE;

  if (n_lines < 3 || strcmp (lines[0], HEADER) != 0) {
    *why = "not an engine cache of this version";
    goto out;
  }
  if (strcmp (lines[1], key_line) != 0) {
    *why = "written for another model, GPU, cuDNN or plan";
    goto out;
  }
  for (; i < n_lines && declared < 0; i++) {
    char **fields = g_strsplit (lines[i], " ", -1);
    gboolean line_ok;

    if (fields[0] != NULL && strcmp (fields[0], "conv") == 0) {
      line_ok = parse_conv (cache, graph, fields, why);
      convs++;
    } else if (fields[0] != NULL && strcmp (fields[0], "end") == 0) {
      line_ok = g_strv_length (fields) == 2
                && parse_int (fields[1], 0, G_MAXINT32, &declared)
                && declared == convs;
      if (!line_ok)
        *why = "the end line does not match the conv lines (truncated?)";
    } else {
      line_ok = FALSE;
      *why = "an unknown line";
    }
    g_strfreev (fields);
    if (!line_ok)
      goto out;
  }
  if (declared < 0) {
    *why = "no end line (truncated?)";
    goto out;
  }
  for (; i < n_lines; i++)
    if (lines[i][0] != '\0') {
      *why = "text after the end line";
      goto out;
    }
  ok = TRUE;

out:
  g_free (key_line);
  g_strfreev (lines);
  return ok;
}

static char *
make_key (const SsfpnGraph *graph, int device, int batch, int height,
          int width, CudaDtype dtype)
{
  struct cudaDeviceProp props;

  if (cudaGetDeviceProperties (&props, device) != cudaSuccess) {
    (void) cudaGetLastError ();
    return NULL;
  }
  /* Spaces in the GPU name are fine: the key line is compared whole. */
  return g_strdup_printf ("model=%016" G_GINT64_MODIFIER "x gpu=%s sm=%d.%d "
                          "cudnn=%zu batch=%d input=%dx%d precision=%s",
                          cuda_graph_hash (graph), props.name, props.major,
                          props.minor, cudnnGetVersion (), batch, height,
                          width, dtype == CUDA_DTYPE_F16 ? "fp16" : "fp32");
}

CudaEngineCache *
cuda_engine_cache_open (const SsfpnGraph *graph, int device, int batch,
                        int height, int width, CudaDtype dtype, gboolean read)
{
  CudaEngineCache *cache = g_new0 (CudaEngineCache, 1);
  char *contents = NULL, *name;
  const char *why = NULL;
  GError *error = NULL;
  Hash h = { G_GUINT64_CONSTANT (0xcbf29ce484222325) };

  cache->n_ops = graph->ops->len;
  cache->choices = g_new0 (CudaConvChoice, MAX (cache->n_ops, 1));
  cache->present = g_new0 (gboolean, MAX (cache->n_ops, 1));
  if (g_strcmp0 (g_getenv ("SSFPN_CUDA_CACHE"), "0") == 0)
    return cache;
  cache->key = make_key (graph, device, batch, height, width, dtype);
  if (cache->key == NULL)
    return cache;
  hash_bytes (&h, cache->key);
  name = g_strdup_printf ("cudnn-engines-%016" G_GINT64_MODIFIER "x.txt",
                          h.value);
  /* GLib reads $XDG_CACHE_HOME, else ~/.cache. */
  cache->path = g_build_filename (g_get_user_cache_dir (), "ssfpn", name,
                                  NULL);
  g_free (name);

  /* An explicit SSFPN_CUDA_TUNE asks for a new search: the result then
   * replaces the file. */
  if (g_getenv ("SSFPN_CUDA_TUNE") != NULL || !read) {
    g_debug ("engine cache %s not read: %s", cache->path,
             read ? "SSFPN_CUDA_TUNE is set" : "its choices failed");
    return cache;
  }
  if (!g_file_get_contents (cache->path, &contents, NULL, &error)) {
    g_debug ("engine cache %s: %s", cache->path, error->message);
    g_clear_error (&error);
    return cache;
  }
  if (!parse_file (cache, graph, contents, &why)) {
    g_debug ("engine cache %s ignored: %s", cache->path, why);
    memset (cache->present, 0, cache->n_ops * sizeof (gboolean));
  } else {
    g_debug ("engine cache %s: read", cache->path);
  }
  g_free (contents);
  return cache;
}

void
cuda_engine_cache_free (CudaEngineCache *cache)
{
  if (cache == NULL)
    return;
  g_free (cache->path);
  g_free (cache->key);
  g_free (cache->choices);
  g_free (cache->present);
  g_free (cache);
}

gboolean
cuda_engine_cache_has_choices (const CudaEngineCache *cache)
{
  for (guint i = 0; i < cache->n_ops; i++)
    if (cache->present[i])
      return TRUE;
  return FALSE;
}

const CudaConvChoice *
cuda_engine_cache_lookup (const CudaEngineCache *cache, guint op)
{
  return op < cache->n_ops && cache->present[op] ? &cache->choices[op] : NULL;
}

/* Field by field: the struct's padding and unused knob slots are not
 * part of the choice, and a byte compare would see them. */
static gboolean
same_choice (const CudaConvChoice *a, const CudaConvChoice *b)
{
  if (a->tier != b->tier || a->engine_index != b->engine_index
      || a->n_knobs != b->n_knobs)
    return FALSE;
  for (int i = 0; i < a->n_knobs; i++)
    if (a->knob_types[i] != b->knob_types[i]
        || a->knob_values[i] != b->knob_values[i])
      return FALSE;
  return TRUE;
}

void
cuda_engine_cache_store (CudaEngineCache *cache, guint op,
                         const CudaConvChoice *choice)
{
  if (op >= cache->n_ops)
    return;
  if (cache->present[op] && same_choice (&cache->choices[op], choice))
    return;
  cache->choices[op] = *choice;
  cache->present[op] = TRUE;
  cache->changed = TRUE;
}

void
cuda_engine_cache_save (CudaEngineCache *cache)
{
  GString *text;
  GError *error = NULL;
  char *dir;
  int convs = 0;

  if (cache->path == NULL || !cache->changed)
    return;
  text = g_string_new (HEADER "\n");
  g_string_append_printf (text, "key %s\n", cache->key);
  for (guint op = 0; op < cache->n_ops; op++) {
    const CudaConvChoice *c = &cache->choices[op];

    if (!cache->present[op])
      continue;
    g_string_append_printf (text, "conv %u %d %" G_GINT64_FORMAT " %d", op,
                            c->tier, c->engine_index, c->n_knobs);
    for (int k = 0; k < c->n_knobs; k++)
      g_string_append_printf (text, " %d:%" G_GINT64_FORMAT, c->knob_types[k],
                              c->knob_values[k]);
    g_string_append_c (text, '\n');
    convs++;
  }
  g_string_append_printf (text, "end %d\n", convs);

  dir = g_path_get_dirname (cache->path);
  /* g_file_set_contents writes a temporary file and renames it: a reader
   * never sees half a file. */
  if (g_mkdir_with_parents (dir, 0755) != 0)
    g_debug ("engine cache: cannot create %s: %s", dir, g_strerror (errno));
  else if (!g_file_set_contents (cache->path, text->str, (gssize) text->len,
                                 &error))
    g_debug ("engine cache: %s", error->message);
  else
    g_debug ("engine cache %s: written, %d convolutions", cache->path, convs);
  g_clear_error (&error);
  g_free (dir);
  g_string_free (text, TRUE);
  cache->changed = FALSE;
}

const char *
cuda_engine_cache_path (const CudaEngineCache *cache)
{
  return cache->path;
}
