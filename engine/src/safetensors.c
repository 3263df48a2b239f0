/* The safetensors container: an 8-byte little-endian header length N, N
 * bytes of JSON describing the tensors, then the tensor bytes.
 *
 * Nothing in the file is trusted until checked: the header length against
 * the file, the JSON's shape and nesting, every entry's dtype, shape and
 * offsets, sizes against overflow, tensors against each other. Every
 * failure is a GError whose message starts with the source name. */
#include "safetensors.h"

#include "json_text.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "ssfpn/ssfpn.h"

/* A real header is a few hundred kilobytes; anything near this is hostile. */
#define MAX_HEADER_BYTES G_GUINT64_CONSTANT (100000000)
#define HEADER_LENGTH_BYTES 8

/* ---- element conversions ----------------------------------------------- */

static float
float_from_bits (guint32 bits)
{
  float value;

  memcpy (&value, &bits, sizeof value);
  return value;
}

float
ssfpn_f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exponent = (h >> 10) & 0x1f;
  guint32 mantissa = h & 0x3ff;

  if (exponent == 0x1f) /* inf, or nan with its payload kept */
    return float_from_bits (sign | 0x7f800000 | (mantissa << 13));

  if (exponent == 0)
    {
      if (mantissa == 0)
        return float_from_bits (sign);
      /* Subnormal half: normalise, it is a normal float. */
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400) == 0)
        {
          mantissa <<= 1;
          exponent--;
        }
      mantissa &= 0x3ff;
      return float_from_bits (sign | (exponent << 23) | (mantissa << 13));
    }

  return float_from_bits (sign | ((exponent + 127 - 15) << 23)
                          | (mantissa << 13));
}

float
ssfpn_bf16_to_f32 (guint16 b)
{
  return float_from_bits ((guint32) b << 16);
}

static gsize
dtype_size (SsfpnDtype dtype)
{
  switch (dtype)
    {
    case SSFPN_DTYPE_F32:
      return 4;
    case SSFPN_DTYPE_I64:
      return 8;
    default:
      return 2;
    }
}

static const char *
dtype_name (SsfpnDtype dtype)
{
  switch (dtype)
    {
    case SSFPN_DTYPE_F32:
      return "F32";
    case SSFPN_DTYPE_F16:
      return "F16";
    case SSFPN_DTYPE_BF16:
      return "BF16";
    case SSFPN_DTYPE_I64:
      return "I64";
    }
  return "?";
}

float *
ssfpn_st_tensor_to_f32 (const SsfpnStTensor *tensor)
{
  gsize n = (gsize) tensor->numel;
  float *out = g_new (float, MAX (n, 1));

  /* The data sits at any byte offset in the file: copy, never cast. */
  if (tensor->dtype == SSFPN_DTYPE_F32)
    {
      memcpy (out, tensor->data, n * sizeof (float));
#if G_BYTE_ORDER == G_BIG_ENDIAN
      for (gsize i = 0; i < n; i++)
        {
          guint32 bits;
          memcpy (&bits, &out[i], 4);
          bits = GUINT32_FROM_LE (bits);
          memcpy (&out[i], &bits, 4);
        }
#endif
      return out;
    }

  if (tensor->dtype == SSFPN_DTYPE_I64)
    {
      for (gsize i = 0; i < n; i++)
        {
          gint64 value;
          memcpy (&value, tensor->data + 8 * i, 8);
          out[i] = (float) GINT64_FROM_LE (value);
        }
      return out;
    }

  for (gsize i = 0; i < n; i++)
    {
      guint16 bits;

      memcpy (&bits, tensor->data + 2 * i, 2);
      bits = GUINT16_FROM_LE (bits);
      out[i] = tensor->dtype == SSFPN_DTYPE_F16 ? ssfpn_f16_to_f32 (bits)
                                                 : ssfpn_bf16_to_f32 (bits);
    }
  return out;
}

/* ---- the tensor table --------------------------------------------------- */

static void
st_tensor_free (gpointer data)
{
  SsfpnStTensor *tensor = data;

  g_free (tensor->name);
  g_free (tensor);
}

/* A non-negative JSON integer; @value is set only on success. */
static gboolean
node_get_count (JsonNode *node, gint64 *value, gboolean *negative)
{
  gint64 v;

  *negative = FALSE;
  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  v = json_node_get_int (node);
  if (v < 0)
    {
      *negative = TRUE;
      return FALSE;
    }
  *value = v;
  return TRUE;
}

static char *
shape_to_string (const SsfpnStTensor *tensor)
{
  GString *s = g_string_new ("[");

  for (int d = 0; d < tensor->rank; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? ", " : "",
                            tensor->shape[d]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* Byte range of one tensor in the data area, for the overlap check. */
typedef struct {
  guint64 begin, end;
  const char *name;
} TensorSpan;

static int
compare_spans (gconstpointer a, gconstpointer b)
{
  const TensorSpan *x = a, *y = b;

  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return 0;
}

/* Reads one tensor entry; on success returns the tensor with @span set. */
static SsfpnStTensor *
parse_tensor_entry (const char *source, const char *name, JsonNode *node,
                    const guint8 *data_area, guint64 data_size,
                    TensorSpan *span, GError **error)
{
  JsonObject *entry;
  JsonNode *field;
  JsonArray *array;
  const char *dtype;
  SsfpnStTensor *tensor = g_new0 (SsfpnStTensor, 1);
  guint64 numel = 1, nbytes, offsets[2];
  guint rank;
  gboolean negative;

  tensor->name = g_strdup (name);

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": entry is not a JSON object", source,
                   name);
      goto fail;
    }
  entry = json_node_get_object (node);

  /* dtype */
  field = json_object_get_member (entry, "dtype");
  if (!field)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": \"dtype\" is missing", source, name);
      goto fail;
    }
  if (!JSON_NODE_HOLDS_VALUE (field)
      || json_node_get_value_type (field) != G_TYPE_STRING)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": \"dtype\" is not a string", source,
                   name);
      goto fail;
    }
  dtype = json_node_get_string (field);
  if (g_str_equal (dtype, "F32"))
    tensor->dtype = SSFPN_DTYPE_F32;
  else if (g_str_equal (dtype, "F16"))
    tensor->dtype = SSFPN_DTYPE_F16;
  else if (g_str_equal (dtype, "BF16"))
    tensor->dtype = SSFPN_DTYPE_BF16;
  else if (g_str_equal (dtype, "I64")
           && g_str_has_suffix (name, ".num_batches_tracked"))
    tensor->dtype = SSFPN_DTYPE_I64;
  else
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": unknown dtype \"%s\" "
                   "(expected F32, F16 or BF16)", source, name, dtype);
      goto fail;
    }

  /* shape */
  field = json_object_get_member (entry, "shape");
  if (!field)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": \"shape\" is missing", source, name);
      goto fail;
    }
  if (!JSON_NODE_HOLDS_ARRAY (field))
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": \"shape\" is not an array", source,
                   name);
      goto fail;
    }
  array = json_node_get_array (field);
  rank = json_array_get_length (array);
  if (rank > SSFPN_MAX_RANK)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": rank %u exceeds the maximum of %d",
                   source, name, rank, SSFPN_MAX_RANK);
      goto fail;
    }
  tensor->rank = (int) rank;
  for (guint d = 0; d < rank; d++)
    {
      JsonNode *dim = json_array_get_element (array, d);
      gint64 size;

      if (!node_get_count (dim, &size, &negative))
        {
          /* json-glib reads integers past 2^63 as negative ones. */
          if (negative)
            g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                         "%s: tensor \"%s\": shape[%u] is negative or "
                         "not below 2^63", source, name, d);
          else
            g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                         "%s: tensor \"%s\": shape[%u] is not an integer",
                         source, name, d);
          goto fail;
        }
      tensor->shape[d] = size;
      if (!g_uint64_checked_mul (&numel, numel, (guint64) size))
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s: tensor \"%s\": element count overflows", source,
                       name);
          goto fail;
        }
    }
  if (!g_uint64_checked_mul (&nbytes, numel, dtype_size (tensor->dtype))
      || nbytes > (guint64) G_MAXINT64)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": byte size of the shape overflows",
                   source, name);
      goto fail;
    }
  tensor->numel = (gint64) numel;

  /* data_offsets */
  field = json_object_get_member (entry, "data_offsets");
  if (!field)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": \"data_offsets\" is missing", source,
                   name);
      goto fail;
    }
  if (!JSON_NODE_HOLDS_ARRAY (field)
      || json_array_get_length (json_node_get_array (field)) != 2)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": \"data_offsets\" is not an array of "
                   "two integers", source, name);
      goto fail;
    }
  array = json_node_get_array (field);
  for (guint k = 0; k < 2; k++)
    {
      JsonNode *offset = json_array_get_element (array, k);
      gint64 value;

      if (!node_get_count (offset, &value, &negative))
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s: tensor \"%s\": data_offsets[%u] is %s", source,
                       name, k, negative ? "negative or not below 2^63"
                       : "not an integer");
          goto fail;
        }
      offsets[k] = (guint64) value;
    }
  if (offsets[0] > offsets[1])
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": data_offsets begin %" G_GUINT64_FORMAT
                   " is after end %" G_GUINT64_FORMAT, source, name,
                   offsets[0], offsets[1]);
      goto fail;
    }
  if (offsets[1] > data_size)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": data_offsets [%" G_GUINT64_FORMAT
                   ", %" G_GUINT64_FORMAT "] lie outside the data area (%"
                   G_GUINT64_FORMAT " bytes)", source, name, offsets[0],
                   offsets[1], data_size);
      goto fail;
    }
  if (offsets[1] - offsets[0] != nbytes)
    {
      char *shape = shape_to_string (tensor);

      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: tensor \"%s\": data_offsets span %" G_GUINT64_FORMAT
                   " bytes but shape %s x %s needs %" G_GUINT64_FORMAT
                   " bytes", source, name, offsets[1] - offsets[0], shape,
                   dtype_name (tensor->dtype), nbytes);
      g_free (shape);
      goto fail;
    }

  tensor->data = data_area + offsets[0];
  span->begin = offsets[0];
  span->end = offsets[1];
  span->name = tensor->name;
  return tensor;

fail:
  st_tensor_free (tensor);
  return NULL;
}

static gboolean
parse_metadata (const char *source, JsonNode *node, GHashTable *metadata,
                GError **error)
{
  JsonObject *object;
  GList *members;
  gboolean ok = TRUE;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: \"__metadata__\" is not a JSON object", source);
      return FALSE;
    }
  object = json_node_get_object (node);
  members = json_object_get_members (object);
  for (GList *l = members; l; l = l->next)
    {
      const char *key = l->data;
      JsonNode *value = json_object_get_member (object, key);

      if (!JSON_NODE_HOLDS_VALUE (value)
          || json_node_get_value_type (value) != G_TYPE_STRING)
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s: metadata \"%s\" is not a string", source, key);
          ok = FALSE;
          break;
        }
      g_hash_table_insert (metadata, g_strdup (key),
                           g_strdup (json_node_get_string (value)));
    }
  g_list_free (members);
  return ok;
}

/* No two non-empty tensors may share a byte. */
static gboolean
check_overlaps (const char *source, GArray *spans, GError **error)
{
  const TensorSpan *furthest = NULL;

  g_array_sort (spans, compare_spans);
  for (guint i = 0; i < spans->len; i++)
    {
      const TensorSpan *span = &g_array_index (spans, TensorSpan, i);

      if (span->begin == span->end)
        continue;
      if (furthest && span->begin < furthest->end)
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s: tensors \"%s\" [%" G_GUINT64_FORMAT ", %"
                       G_GUINT64_FORMAT ") and \"%s\" [%" G_GUINT64_FORMAT
                       ", %" G_GUINT64_FORMAT ") overlap", source,
                       furthest->name, furthest->begin, furthest->end,
                       span->name, span->begin, span->end);
          return FALSE;
        }
      if (!furthest || span->end > furthest->end)
        furthest = span;
    }
  return TRUE;
}

static JsonNode *
parse_header_json (const char *source, const char *text, gsize length,
                   GError **error)
{
  g_autofree char *what = g_strdup_printf ("%s: header", source);
  JsonNode *root = ssfpn_json_parse (text, length, what, error);

  if (root != NULL && !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: header JSON is not an object", source);
      g_clear_pointer (&root, json_node_unref);
    }
  return root;
}

SsfpnSafetensors *
ssfpn_safetensors_parse (GBytes *bytes, const char *source, GError **error)
{
  SsfpnSafetensors *st;
  const guint8 *file;
  gsize file_size;
  guint64 header_length, data_size;
  JsonNode *root = NULL;
  JsonObject *header;
  GList *members = NULL;
  GArray *spans = NULL;

  g_return_val_if_fail (bytes != NULL, NULL);
  g_return_val_if_fail (source != NULL, NULL);

  st = g_new0 (SsfpnSafetensors, 1);
  st->source = g_strdup (source);
  st->bytes = g_bytes_ref (bytes);
  st->tensors = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                       st_tensor_free);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        g_free);

  file = g_bytes_get_data (bytes, &file_size);
  if (file_size < HEADER_LENGTH_BYTES)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: file is %" G_GSIZE_FORMAT " bytes, too short for the "
                   "8-byte header length", source, file_size);
      goto fail;
    }
  memcpy (&header_length, file, sizeof header_length);
  header_length = GUINT64_FROM_LE (header_length);
  if (header_length > file_size - HEADER_LENGTH_BYTES)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: header length %" G_GUINT64_FORMAT " is larger than "
                   "the file (%" G_GSIZE_FORMAT " bytes)", source,
                   header_length, file_size);
      goto fail;
    }
  if (header_length > MAX_HEADER_BYTES)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: header length %" G_GUINT64_FORMAT " exceeds the "
                   "limit of 100 MB", source, header_length);
      goto fail;
    }
  data_size = file_size - HEADER_LENGTH_BYTES - header_length;

  root = parse_header_json (source, (const char *) file + HEADER_LENGTH_BYTES,
                            (gsize) header_length, error);
  if (!root)
    goto fail;
  header = json_node_get_object (root);

  spans = g_array_new (FALSE, FALSE, sizeof (TensorSpan));
  members = json_object_get_members (header);
  for (GList *l = members; l; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (header, name);
      SsfpnStTensor *tensor;
      TensorSpan span;

      if (g_str_equal (name, "__metadata__"))
        {
          if (!parse_metadata (source, node, st->metadata, error))
            goto fail;
          continue;
        }
      tensor = parse_tensor_entry (source, name, node,
                                   file + HEADER_LENGTH_BYTES + header_length,
                                   data_size, &span, error);
      if (!tensor)
        goto fail;
      g_hash_table_insert (st->tensors, tensor->name, tensor);
      g_array_append_val (spans, span);
    }

  if (!check_overlaps (source, spans, error))
    goto fail;

  g_list_free (members);
  g_array_unref (spans);
  json_node_unref (root);
  return st;

fail:
  g_list_free (members);
  if (spans)
    g_array_unref (spans);
  if (root)
    json_node_unref (root);
  ssfpn_safetensors_free (st);
  return NULL;
}

SsfpnSafetensors *
ssfpn_safetensors_open (const char *path, GError **error)
{
  GMappedFile *mapped;
  GError *map_error = NULL;
  GBytes *bytes;
  SsfpnSafetensors *st;
  struct stat info;
  int fd;

  g_return_val_if_fail (path != NULL, NULL);

  fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "%s: cannot open: %s",
                   path, g_strerror (saved_errno));
      return NULL;
    }
  if (fstat (fd, &info) != 0 || !S_ISREG (info.st_mode))
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO,
                   "%s: not a regular file", path);
      close (fd);
      return NULL;
    }
  mapped = g_mapped_file_new_from_fd (fd, FALSE, &map_error);
  close (fd);
  if (!mapped)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "%s: cannot map: %s",
                   path, map_error->message);
      g_error_free (map_error);
      return NULL;
    }
  bytes = g_mapped_file_get_bytes (mapped);
  g_mapped_file_unref (mapped);

  st = ssfpn_safetensors_parse (bytes, path, error);
  g_bytes_unref (bytes);
  return st;
}

void
ssfpn_safetensors_free (SsfpnSafetensors *st)
{
  if (!st)
    return;
  g_hash_table_unref (st->tensors);
  g_hash_table_unref (st->metadata);
  g_bytes_unref (st->bytes);
  g_free (st->source);
  g_free (st);
}

const SsfpnStTensor *
ssfpn_safetensors_get (const SsfpnSafetensors *st, const char *name)
{
  return g_hash_table_lookup (st->tensors, name);
}

const char *
ssfpn_safetensors_metadata (const SsfpnSafetensors *st, const char *key)
{
  return g_hash_table_lookup (st->metadata, key);
}
