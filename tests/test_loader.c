/* The loader against malformed files: one table row per problem the model
 * format says a loader must reject, each a mutation of a tiny valid model
 * built here in memory. Container rows are checked both at the safetensors
 * level and through ssfpn_model_open_bytes; model rows (missing or
 * misshaped tensors, bad configuration or metadata) through the model API.
 * Also: valid variants open, files on disk carry their path into messages,
 * and the F16/BF16 conversions are exact. */
#include <math.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "safetensors.h"
#include "ssfpn/ssfpn.h"

static int n_passed, n_failed;
static gboolean verbose; /* SSFPN_TEST_VERBOSE set: print each message */

static gboolean
check (gboolean condition, const char *what, const char *format, ...)
  G_GNUC_PRINTF (3, 4);

static gboolean
check (gboolean condition, const char *what, const char *format, ...)
{
  va_list args;

  if (condition)
    {
      n_passed++;
      return TRUE;
    }
  n_failed++;
  g_printerr ("FAIL %s: ", what);
  va_start (args, format);
  g_vfprintf (stderr, format, args);
  va_end (args);
  g_printerr ("\n");
  return FALSE;
}

/* ---- a safetensors writer with hooks for breaking things --------------- */

typedef enum { STORE_F32, STORE_F16, STORE_BF16, STORE_F64, STORE_I64 } Storage;

typedef struct {
  char *name;
  char *dtype_json;   /* as written; NULL omits the key */
  char *shape_json;   /* as written; NULL omits the key */
  char *offsets_json; /* as written; NULL omits; "auto" computes them */
  char *entry_json;   /* when set, the whole entry as written */
  char *alias_of;     /* data_offsets start where this tensor's start */
  Storage storage;
  GArray *values;     /* float; encoded per storage into the data area */
} FakeTensor;

typedef struct {
  char *key;
  char *value_json;
} FakeMeta;

typedef struct {
  GPtrArray *tensors;   /* FakeTensor */
  GPtrArray *metadata;  /* FakeMeta */
  char *metadata_json;  /* when set, replaces the __metadata__ object */
  char *header_json;    /* when set, replaces the whole header */
  gboolean header_length_set;
  guint64 header_length;
  gsize truncate_by;    /* bytes cut from the end of the file */
  gsize keep_only;      /* when set, the file is cut to this many bytes */
} FakeFile;

static void
fake_tensor_free (gpointer data)
{
  FakeTensor *t = data;

  g_free (t->name);
  g_free (t->dtype_json);
  g_free (t->shape_json);
  g_free (t->offsets_json);
  g_free (t->entry_json);
  g_free (t->alias_of);
  g_array_unref (t->values);
  g_free (t);
}

static void
fake_meta_free (gpointer data)
{
  FakeMeta *m = data;

  g_free (m->key);
  g_free (m->value_json);
  g_free (m);
}

static void
fake_file_free (FakeFile *f)
{
  g_ptr_array_unref (f->tensors);
  g_ptr_array_unref (f->metadata);
  g_free (f->metadata_json);
  g_free (f->header_json);
  g_free (f);
}

static void
append_json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (; *s; s++)
    {
      if (*s == '"' || *s == '\\')
        g_string_append_printf (out, "\\%c", *s);
      else if ((guchar) *s < 0x20)
        g_string_append_printf (out, "\\u%04x", (guchar) *s);
      else
        g_string_append_c (out, *s);
    }
  g_string_append_c (out, '"');
}

static char *
json_string (const char *s)
{
  GString *out = g_string_new (NULL);

  append_json_string (out, s);
  return g_string_free (out, FALSE);
}

static FakeTensor *
fake_find (FakeFile *f, const char *name)
{
  for (guint i = 0; i < f->tensors->len; i++)
    {
      FakeTensor *t = g_ptr_array_index (f->tensors, i);
      if (g_str_equal (t->name, name))
        return t;
    }
  g_error ("test bug: no fake tensor %s", name);
  return NULL;
}

/* A tensor of @numel values from a fixed pattern, exactly representable
 * in F16 and BF16 (multiples of 1/16 below 1). */
static FakeTensor *
fake_add (FakeFile *f, const char *name, const char *shape_json, int numel,
          float first, float step)
{
  FakeTensor *t = g_new0 (FakeTensor, 1);

  t->name = g_strdup (name);
  t->dtype_json = g_strdup ("\"F32\"");
  t->shape_json = g_strdup (shape_json);
  t->offsets_json = g_strdup ("auto");
  t->storage = STORE_F32;
  t->values = g_array_sized_new (FALSE, FALSE, sizeof (float), numel);
  for (int i = 0; i < numel; i++)
    {
      float v = step == 0.0f ? first : first + step * (float) (i % 13);
      g_array_append_val (t->values, v);
    }
  g_ptr_array_add (f->tensors, t);
  return t;
}

static void
fake_remove (FakeFile *f, const char *name)
{
  g_ptr_array_remove (f->tensors, fake_find (f, name));
}

/* Changes a tensor's shape and gives it matching data. */
static void
fake_reshape (FakeFile *f, const char *name, const char *shape_json,
              int numel)
{
  FakeTensor *t = fake_find (f, name);
  float v = 0.125f;

  g_free (t->shape_json);
  t->shape_json = g_strdup (shape_json);
  g_array_set_size (t->values, 0);
  for (int i = 0; i < numel; i++)
    g_array_append_val (t->values, v);
}

static void
fake_set_storage (FakeTensor *t, Storage storage)
{
  static const char *names[] = { "\"F32\"", "\"F16\"", "\"BF16\"",
                                 "\"F64\"", "\"I64\"" };

  t->storage = storage;
  g_free (t->dtype_json);
  t->dtype_json = g_strdup (names[storage]);
}

static void
fake_set_field (char **field, const char *json)
{
  g_free (*field);
  *field = g_strdup (json);
}

static FakeMeta *
fake_meta_find (FakeFile *f, const char *key)
{
  for (guint i = 0; i < f->metadata->len; i++)
    {
      FakeMeta *m = g_ptr_array_index (f->metadata, i);
      if (g_str_equal (m->key, key))
        return m;
    }
  return NULL;
}

/* Sets metadata @key to the raw JSON @value_json (not necessarily a
 * string), adding it when absent; NULL removes it. */
static void
fake_meta_raw (FakeFile *f, const char *key, const char *value_json)
{
  FakeMeta *m = fake_meta_find (f, key);

  if (!value_json)
    {
      if (m)
        g_ptr_array_remove (f->metadata, m);
      return;
    }
  if (!m)
    {
      m = g_new0 (FakeMeta, 1);
      m->key = g_strdup (key);
      g_ptr_array_add (f->metadata, m);
    }
  g_free (m->value_json);
  m->value_json = g_strdup (value_json);
}

/* Sets metadata @key to the string @value; NULL removes it. */
static void
fake_meta (FakeFile *f, const char *key, const char *value)
{
  char *quoted = value ? json_string (value) : NULL;

  fake_meta_raw (f, key, quoted);
  g_free (quoted);
}

static const char *tiny_config =
    "{\"nc\": 2, \"depth_multiple\": 1.0, \"width_multiple\": 1.0, "
    "\"anchors\": [[10, 13, 16, 30]], "
    "\"backbone\": [[-1, 1, \"Conv\", [8, 3, 2]]], "
    "\"head\": [[[0], 1, \"Detect\", [\"nc\", \"anchors\"]]]}";

/* One stride-2 Conv to 8 channels, one Detect level with 2 anchors over
 * 2 classes: the smallest network that exercises weights, metadata and
 * the configuration. */
static FakeFile *
fake_tiny_model (void)
{
  FakeFile *f = g_new0 (FakeFile, 1);
  FakeTensor *anchors;
  static const float anchor_values[] = { 5.0f, 6.5f, 8.0f, 15.0f };

  f->tensors = g_ptr_array_new_with_free_func (fake_tensor_free);
  f->metadata = g_ptr_array_new_with_free_func (fake_meta_free);

  fake_add (f, "model.0.conv.weight", "[8, 3, 3, 3]", 8 * 3 * 3 * 3,
            -0.375f, 0.0625f);
  fake_add (f, "model.0.bn.weight", "[8]", 8, 0.5f, 0.0625f);
  fake_add (f, "model.0.bn.bias", "[8]", 8, -0.25f, 0.0625f);
  fake_add (f, "model.0.bn.running_mean", "[8]", 8, -0.125f, 0.03125f);
  fake_add (f, "model.0.bn.running_var", "[8]", 8, 0.75f, 0.0625f);
  fake_add (f, "model.1.m.0.weight", "[14, 8, 1, 1]", 14 * 8, -0.25f,
            0.03125f);
  fake_add (f, "model.1.m.0.bias", "[14]", 14, -0.5f, 0.0625f);
  anchors = fake_add (f, "model.1.anchors", "[1, 2, 2]", 0, 0.0f, 0.0f);
  g_array_append_vals (anchors->values, anchor_values, 4);

  fake_meta (f, "ssfpn.format", "1");
  fake_meta (f, "ssfpn.config", tiny_config);
  fake_meta (f, "ssfpn.names", "[\"a\", \"b\"]");
  fake_meta (f, "ssfpn.stride", "[2]");
  fake_meta (f, "ssfpn.imgsz", "[32, 32]");
  return f;
}

/* Exact for the normal, exactly representable values used here. */
static guint16
f32_to_f16_exact (float v)
{
  guint32 bits;
  int exponent;

  memcpy (&bits, &v, 4);
  if ((bits & 0x7fffffff) == 0)
    return (guint16) (bits >> 16);
  exponent = (int) ((bits >> 23) & 0xff) - 127 + 15;
  g_assert (exponent > 0 && exponent < 31 && (bits & 0x1fff) == 0);
  return (guint16) (((bits >> 16) & 0x8000) | ((guint32) exponent << 10)
                    | ((bits & 0x7fffff) >> 13));
}

static void
encode_values (GByteArray *data, const FakeTensor *t)
{
  for (guint i = 0; i < t->values->len; i++)
    {
      float v = g_array_index (t->values, float, i);
      guint32 bits32;
      guint16 bits16;
      guint64 bits64;
      double d = v;

      switch (t->storage)
        {
        case STORE_F32:
          memcpy (&bits32, &v, 4);
          bits32 = GUINT32_TO_LE (bits32);
          g_byte_array_append (data, (guint8 *) &bits32, 4);
          break;
        case STORE_F16:
          bits16 = GUINT16_TO_LE (f32_to_f16_exact (v));
          g_byte_array_append (data, (guint8 *) &bits16, 2);
          break;
        case STORE_BF16:
          memcpy (&bits32, &v, 4);
          g_assert ((bits32 & 0xffff) == 0);
          bits16 = GUINT16_TO_LE ((guint16) (bits32 >> 16));
          g_byte_array_append (data, (guint8 *) &bits16, 2);
          break;
        case STORE_F64:
          memcpy (&bits64, &d, 8);
          bits64 = GUINT64_TO_LE (bits64);
          g_byte_array_append (data, (guint8 *) &bits64, 8);
          break;
        case STORE_I64:
          bits64 = GUINT64_TO_LE ((guint64) (gint64) v);
          g_byte_array_append (data, (guint8 *) &bits64, 8);
          break;
        }
    }
}

static GBytes *
fake_file_serialize (const FakeFile *f)
{
  GString *header = g_string_new ("{");
  GByteArray *data = g_byte_array_new ();
  GByteArray *file = g_byte_array_new ();
  guint64 *begins = g_new0 (guint64, f->tensors->len + 1);
  guint64 length;
  gboolean first = TRUE;

  if (f->metadata_json || f->metadata->len > 0)
    {
      g_string_append (header, "\"__metadata__\": ");
      if (f->metadata_json)
        g_string_append (header, f->metadata_json);
      else
        {
          g_string_append_c (header, '{');
          for (guint i = 0; i < f->metadata->len; i++)
            {
              FakeMeta *m = g_ptr_array_index (f->metadata, i);
              if (i)
                g_string_append (header, ", ");
              append_json_string (header, m->key);
              g_string_append_printf (header, ": %s", m->value_json);
            }
          g_string_append_c (header, '}');
        }
      first = FALSE;
    }

  for (guint i = 0; i < f->tensors->len; i++)
    {
      FakeTensor *t = g_ptr_array_index (f->tensors, i);
      guint64 begin = data->len, end;
      gboolean first_field = TRUE;

      begins[i] = begin;
      encode_values (data, t);
      end = data->len;
      if (t->alias_of)
        for (guint j = 0; j < i; j++)
          {
            FakeTensor *other = g_ptr_array_index (f->tensors, j);
            if (g_str_equal (other->name, t->alias_of))
              {
                end = begins[j] + (end - begin);
                begin = begins[j];
              }
          }

      g_string_append (header, first ? "" : ", ");
      first = FALSE;
      append_json_string (header, t->name);
      g_string_append (header, ": ");
      if (t->entry_json)
        {
          g_string_append (header, t->entry_json);
          continue;
        }
      g_string_append_c (header, '{');
      if (t->dtype_json)
        {
          g_string_append_printf (header, "\"dtype\": %s", t->dtype_json);
          first_field = FALSE;
        }
      if (t->shape_json)
        {
          g_string_append_printf (header, "%s\"shape\": %s",
                                  first_field ? "" : ", ", t->shape_json);
          first_field = FALSE;
        }
      if (t->offsets_json && g_str_equal (t->offsets_json, "auto"))
        g_string_append_printf (header, "%s\"data_offsets\": [%"
                                G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]",
                                first_field ? "" : ", ", begin, end);
      else if (t->offsets_json)
        g_string_append_printf (header, "%s\"data_offsets\": %s",
                                first_field ? "" : ", ", t->offsets_json);
      g_string_append_c (header, '}');
    }
  g_string_append_c (header, '}');

  if (f->header_json)
    g_string_assign (header, f->header_json);
  /* Pad so the data area starts at an odd address: every read of tensor
   * data must cope with misalignment. */
  while ((8 + header->len) % 8 != 1)
    g_string_append_c (header, ' ');

  length = f->header_length_set ? f->header_length : header->len;
  length = GUINT64_TO_LE (length);
  g_byte_array_append (file, (guint8 *) &length, 8);
  g_byte_array_append (file, (guint8 *) header->str, (guint) header->len);
  g_byte_array_append (file, data->data, data->len);
  if (f->truncate_by > 0)
    g_byte_array_set_size (file, file->len - (guint) f->truncate_by);
  if (f->keep_only > 0)
    g_byte_array_set_size (file, (guint) f->keep_only);

  g_free (begins);
  g_string_free (header, TRUE);
  g_byte_array_unref (data);
  return g_byte_array_free_to_bytes (file);
}

/* ---- the mutations ------------------------------------------------------ */

static char *
repeat_char (char c, gsize n)
{
  char *s = g_malloc (n + 1);

  memset (s, c, n);
  s[n] = '\0';
  return s;
}

static void m_short_file (FakeFile *f) { f->keep_only = 5; }
static void m_header_length_4g (FakeFile *f)
{
  f->header_length_set = TRUE;
  f->header_length = G_GUINT64_CONSTANT (4294967296);
}
static void m_json_broken (FakeFile *f) { fake_set_field (&f->header_json, "{\"a\": "); }
static void m_json_comment (FakeFile *f) { fake_set_field (&f->header_json, "{/* [ */}"); }
static void m_json_single_quotes (FakeFile *f) { fake_set_field (&f->header_json, "{'a': 1}"); }
static void m_json_not_utf8 (FakeFile *f) { fake_set_field (&f->header_json, "{\"\xff\xfe\": 1}"); }
static void m_json_array (FakeFile *f) { fake_set_field (&f->header_json, "[1, 2]"); }
static void m_json_empty (FakeFile *f) { fake_set_field (&f->header_json, ""); }
static void m_json_deep (FakeFile *f)
{
  g_free (f->header_json);
  f->header_json = repeat_char ('[', 200000);
}
/* json-glib reads past the closing quote after a lone high surrogate, so a
 * depth count that trusted its quoting would miss the brackets. */
static void m_json_lone_surrogate (FakeFile *f)
{
  char *deep = repeat_char ('[', 300000);

  g_free (f->header_json);
  f->header_json = g_strconcat ("[\"\\ud800\"A\",", deep, NULL);
  g_free (deep);
}
static void m_json_nul_escape (FakeFile *f) { fake_meta_raw (f, "ssfpn.format", "\"1\\u0000garbage\""); }
static void m_json_too_many_values (FakeFile *f)
{
  GString *text = g_string_new ("[");

  for (int i = 0; i <= 2000000; i++)
    g_string_append (text, "0,");
  g_string_append (text, "0]");
  g_free (f->header_json);
  f->header_json = g_string_free (text, FALSE);
}
static void m_entry_string (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->entry_json, "\"hello\""); }
static void m_dtype_missing (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->dtype_json, NULL); }
static void m_dtype_number (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->dtype_json, "32"); }
static void m_dtype_f64 (FakeFile *f) { fake_set_storage (fake_find (f, "model.0.bn.bias"), STORE_F64); }
static void m_dtype_i64 (FakeFile *f) { fake_set_storage (fake_find (f, "model.0.bn.bias"), STORE_I64); }
static void m_dtype_lowercase (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->dtype_json, "\"f32\""); }
static void m_shape_missing (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->shape_json, NULL); }
static void m_shape_number (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->shape_json, "8"); }
static void m_shape_negative (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.conv.weight")->shape_json, "[8, -3, 3, 3]"); }
static void m_shape_fraction (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.conv.weight")->shape_json, "[8, 3, 3, 3.0]"); }
static void m_shape_string (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->shape_json, "[\"8\"]"); }
static void m_shape_rank9 (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->shape_json, "[1, 1, 1, 1, 1, 1, 1, 1, 8]"); }
static void m_shape_overflow (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->shape_json, "[4294967296, 4294967296, 16]"); }
static void m_bytes_overflow (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->shape_json, "[4611686018427387904, 2]"); }
static void m_offsets_missing (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->offsets_json, NULL); }
static void m_offsets_one (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->offsets_json, "[0]"); }
static void m_offsets_object (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->offsets_json, "{\"begin\": 0}"); }
static void m_offsets_fraction (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->offsets_json, "[0.5, 32]"); }
static void m_offsets_negative (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->offsets_json, "[-4, 28]"); }
static void m_offsets_huge (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->offsets_json, "[0, 9223372036854775808]"); }
static void m_offsets_reversed (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->offsets_json, "[40, 8]"); }
static void m_offsets_outside (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->offsets_json, "[0, 99999999]"); }
static void m_data_truncated (FakeFile *f) { f->truncate_by = 4; }
static void m_offsets_vs_shape (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.conv.weight")->shape_json, "[8, 3, 3, 2]"); }
static void m_overlap (FakeFile *f) { fake_set_field (&fake_find (f, "model.0.bn.bias")->alias_of, "model.0.bn.weight"); }
static void m_overlap_partial (FakeFile *f) { fake_set_field (&fake_find (f, "model.1.m.0.bias")->offsets_json, "[1000, 1056]"); }
static void m_metadata_string (FakeFile *f) { fake_set_field (&f->metadata_json, "\"x\""); }
static void m_metadata_number (FakeFile *f) { fake_meta_raw (f, "ssfpn.format", "1"); }
static void m_metadata_object (FakeFile *f) { fake_meta_raw (f, "ssfpn.names", "[\"a\", \"b\"]"); }
static void m_duplicate_tensor (FakeFile *f)
{
  fake_add (f, "model.0.bn.bias", "[8]", 8, 0.0f, 0.0f);
}
static void m_duplicate_metadata (FakeFile *f)
{
  fake_set_field (&f->metadata_json,
                  "{\"ssfpn.format\": \"1\", \"ssfpn.format\": \"1\"}");
}

/* Model-level problems: the container is sound. */
static void w_missing_conv (FakeFile *f) { fake_remove (f, "model.0.conv.weight"); }
static void w_missing_running_var (FakeFile *f) { fake_remove (f, "model.0.bn.running_var"); }
static void w_missing_anchors (FakeFile *f) { fake_remove (f, "model.1.anchors"); }
static void w_conv_kernel (FakeFile *f) { fake_reshape (f, "model.0.conv.weight", "[8, 3, 5, 5]", 8 * 3 * 25); }
static void w_conv_inputs (FakeFile *f) { fake_reshape (f, "model.0.conv.weight", "[8, 4, 3, 3]", 8 * 4 * 9); }
static void w_conv_rank (FakeFile *f) { fake_reshape (f, "model.0.conv.weight", "[8, 27]", 8 * 27); }
static void w_bn_size (FakeFile *f) { fake_reshape (f, "model.0.bn.weight", "[16]", 16); }
static void w_detect_outputs (FakeFile *f) { fake_reshape (f, "model.1.m.0.weight", "[12, 8, 1, 1]", 12 * 8); }
static void w_detect_bias (FakeFile *f) { fake_reshape (f, "model.1.m.0.bias", "[7]", 7); }
static void w_anchors_shape (FakeFile *f) { fake_reshape (f, "model.1.anchors", "[1, 3, 2]", 6); }
static void c_missing (FakeFile *f) { fake_meta (f, "ssfpn.config", NULL); }
static void c_not_json (FakeFile *f) { fake_meta (f, "ssfpn.config", "{nc: 2"); }
static void c_not_object (FakeFile *f) { fake_meta (f, "ssfpn.config", "[1]"); }
static void c_deep (FakeFile *f)
{
  char *deep = repeat_char ('[', 200000);

  fake_meta (f, "ssfpn.config", deep);
  g_free (deep);
}
static void c_unknown_module (FakeFile *f)
{
  fake_meta (f, "ssfpn.config",
             "{\"nc\": 2, \"depth_multiple\": 1.0, \"width_multiple\": 1.0, "
             "\"anchors\": [[10, 13, 16, 30]], "
             "\"backbone\": [[-1, 1, \"Conv9\", [8, 3, 2]]], "
             "\"head\": [[[0], 1, \"Detect\", [\"nc\", \"anchors\"]]]}");
}
static void c_duplicate_key (FakeFile *f)
{
  fake_meta (f, "ssfpn.config",
             "{\"nc\": 2, \"depth_multiple\": 1.0, \"width_multiple\": 1.0, "
             "\"anchors\": [[10, 13, 16, 30]], "
             "\"backbone\": [[-1, 1, \"Conv\", [8, 3, 2]]], "
             "\"head\": [[[0], 1, \"Detect\", [\"nc\", \"anchors\"]]], "
             "\"nc\": 3}");
}
/* 759 bytes that would build a million Upsample copies. */
static void c_repeats_scaled (FakeFile *f)
{
  fake_meta (f, "ssfpn.config",
             "{\"nc\": 2, \"depth_multiple\": 1000, \"width_multiple\": 1.0, "
             "\"anchors\": [[10, 13, 16, 30]], "
             "\"backbone\": [[-1, 1, \"Conv\", [8, 3, 2]], "
             "[-1, 1024, \"nn.Upsample\", [\"None\", 1, \"nearest\"]]], "
             "\"head\": [[[0], 1, \"Detect\", [\"nc\", \"anchors\"]]]}");
}
static void c_repeats_total (FakeFile *f)
{
  GString *config = g_string_new (
      "{\"nc\": 2, \"depth_multiple\": 1.0, \"width_multiple\": 1.0, "
      "\"anchors\": [[10, 13, 16, 30]], "
      "\"backbone\": [[-1, 1, \"Conv\", [8, 3, 2]]");

  for (int i = 0; i < 17; i++)
    g_string_append (config, ", [-1, 1024, \"nn.Upsample\", [\"None\", 1, "
                     "\"nearest\"]]");
  g_string_append (config, "], \"head\": [[[0], 1, \"Detect\", [\"nc\", "
                   "\"anchors\"]]]}");
  fake_meta (f, "ssfpn.config", config->str);
  g_string_free (config, TRUE);
}
/* A 3x3 kernel of stride 2 over a 2x2 map without padding: PyTorch
 * refuses it; C division would make it 1x1. */
static void c_kernel_over_input (FakeFile *f)
{
  fake_meta (f, "ssfpn.config",
             "{\"nc\": 2, \"depth_multiple\": 1.0, \"width_multiple\": 1.0, "
             "\"anchors\": [[10, 13, 16, 30]], "
             "\"backbone\": [[-1, 1, \"Conv\", [8, 3, 2]], "
             "[-1, 1, \"Conv\", [8, 15, 1, 0]], [-1, 1, \"Conv\", [8, 3, 2, 0]]], "
             "\"head\": [[[0], 1, \"Detect\", [\"nc\", \"anchors\"]]]}");
  fake_add (f, "model.1.conv.weight", "[8, 8, 15, 15]", 8 * 8 * 225, 0.0f,
            0.001f);
  fake_add (f, "model.2.conv.weight", "[8, 8, 3, 3]", 8 * 8 * 9, 0.0f, 0.01f);
  for (int layer = 1; layer <= 2; layer++)
    {
      static const char *parts[] = { "weight", "bias", "running_mean",
                                     "running_var" };
      for (guint k = 0; k < G_N_ELEMENTS (parts); k++)
        {
          char *name = g_strdup_printf ("model.%d.bn.%s", layer, parts[k]);
          fake_add (f, name, "[8]", 8, 0.5f, 0.0f);
          g_free (name);
        }
    }
  fake_remove (f, "model.1.m.0.weight");
  fake_remove (f, "model.1.m.0.bias");
  fake_remove (f, "model.1.anchors");
  fake_add (f, "model.3.m.0.weight", "[14, 8, 1, 1]", 14 * 8, -0.25f,
            0.03125f);
  fake_add (f, "model.3.m.0.bias", "[14]", 14, -0.5f, 0.0625f);
  fake_add (f, "model.3.anchors", "[1, 2, 2]", 4, 1.0f, 1.0f);
}
static void c_from_out_of_range (FakeFile *f)
{
  fake_meta (f, "ssfpn.config",
             "{\"nc\": 2, \"depth_multiple\": 1.0, \"width_multiple\": 1.0, "
             "\"anchors\": [[10, 13, 16, 30]], "
             "\"backbone\": [[-1, 1, \"Conv\", [8, 3, 2]]], "
             "\"head\": [[[5], 1, \"Detect\", [\"nc\", \"anchors\"]]]}");
}
static void c_missing_nc (FakeFile *f)
{
  fake_meta (f, "ssfpn.config",
             "{\"depth_multiple\": 1.0, \"width_multiple\": 1.0, "
             "\"anchors\": [[10, 13, 16, 30]], "
             "\"backbone\": [[-1, 1, \"Conv\", [8, 3, 2]]], "
             "\"head\": [[[0], 1, \"Detect\", [\"nc\", \"anchors\"]]]}");
}
static void c_bad_args (FakeFile *f)
{
  fake_meta (f, "ssfpn.config",
             "{\"nc\": 2, \"depth_multiple\": 1.0, \"width_multiple\": 1.0, "
             "\"anchors\": [[10, 13, 16, 30]], "
             "\"backbone\": [[-1, 1, \"Conv\", [\"x\", 3, 2]]], "
             "\"head\": [[[0], 1, \"Detect\", [\"nc\", \"anchors\"]]]}");
}
static void c_bad_activation (FakeFile *f)
{
  fake_meta (f, "ssfpn.config",
             "{\"nc\": 2, \"depth_multiple\": 1.0, \"width_multiple\": 1.0, "
             "\"activation\": \"Mish\", \"anchors\": [[10, 13, 16, 30]], "
             "\"backbone\": [[-1, 1, \"Conv\", [8, 3, 2]]], "
             "\"head\": [[[0], 1, \"Detect\", [\"nc\", \"anchors\"]]]}");
}
static void c_no_detect (FakeFile *f)
{
  fake_meta (f, "ssfpn.config",
             "{\"nc\": 2, \"depth_multiple\": 1.0, \"width_multiple\": 1.0, "
             "\"anchors\": [[10, 13, 16, 30]], "
             "\"backbone\": [[-1, 1, \"Conv\", [8, 3, 2]]], \"head\": []}");
}
static void d_format_missing (FakeFile *f) { fake_meta (f, "ssfpn.format", NULL); }
static void d_format_2 (FakeFile *f) { fake_meta (f, "ssfpn.format", "2"); }
static void d_names_missing (FakeFile *f) { fake_meta (f, "ssfpn.names", NULL); }
static void d_names_three (FakeFile *f) { fake_meta (f, "ssfpn.names", "[\"a\", \"b\", \"c\"]"); }
static void d_names_not_array (FakeFile *f) { fake_meta (f, "ssfpn.names", "a,b"); }
static void d_names_numbers (FakeFile *f) { fake_meta (f, "ssfpn.names", "[1, 2]"); }
static void d_stride_two_levels (FakeFile *f) { fake_meta (f, "ssfpn.stride", "[2, 4]"); }
static void d_stride_wrong (FakeFile *f) { fake_meta (f, "ssfpn.stride", "[4]"); }
static void d_stride_missing (FakeFile *f) { fake_meta (f, "ssfpn.stride", NULL); }
static void d_imgsz_one (FakeFile *f) { fake_meta (f, "ssfpn.imgsz", "[32]"); }
static void d_imgsz_zero (FakeFile *f) { fake_meta (f, "ssfpn.imgsz", "[0, 32]"); }
static void d_bn_eps_text (FakeFile *f) { fake_meta (f, "ssfpn.bn_eps", "abc"); }

typedef enum { CONTAINER, MODEL } Level;

typedef struct {
  const char *what;
  void (*mutate) (FakeFile *f);
  Level level;
  SsfpnErrorCode code;
  const char *expect[3]; /* substrings the message must contain */
} DefectRow;

static const DefectRow defects[] = {
  /* the container */
  { "file shorter than 8 bytes", m_short_file, CONTAINER, SSFPN_ERROR_FORMAT, { "file is 5 bytes", "too short" } },
  { "header length larger than the file", m_header_length_4g, CONTAINER, SSFPN_ERROR_FORMAT, { "header length 4294967296", "larger than the file" } },
  { "JSON does not parse", m_json_broken, CONTAINER, SSFPN_ERROR_FORMAT, { "does not parse" } },
  { "JSON with a comment", m_json_comment, CONTAINER, SSFPN_ERROR_FORMAT, { "does not parse" } },
  { "JSON with single quotes", m_json_single_quotes, CONTAINER, SSFPN_ERROR_FORMAT, { "does not parse" } },
  { "JSON not UTF-8", m_json_not_utf8, CONTAINER, SSFPN_ERROR_FORMAT, { "does not parse" } },
  { "JSON not an object", m_json_array, CONTAINER, SSFPN_ERROR_FORMAT, { "not an object" } },
  { "JSON empty", m_json_empty, CONTAINER, SSFPN_ERROR_FORMAT, { "header: JSON does not parse", "empty" } },
  { "JSON nested 200000 deep", m_json_deep, CONTAINER, SSFPN_ERROR_FORMAT, { "nested deeper" } },
  { "JSON lone surrogate, then deep", m_json_lone_surrogate, CONTAINER, SSFPN_ERROR_FORMAT, { "header: JSON does not parse", "high UTF-16 surrogate" } },
  { "JSON \\u0000 in a value", m_json_nul_escape, CONTAINER, SSFPN_ERROR_FORMAT, { "does not parse", "\\u0000" } },
  { "JSON of 2000002 values", m_json_too_many_values, CONTAINER, SSFPN_ERROR_FORMAT, { "more than 2000000 values" } },
  { "entry not an object", m_entry_string, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.0.bn.bias\"", "not a JSON object" } },
  { "dtype missing", m_dtype_missing, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.0.bn.bias\"", "\"dtype\" is missing" } },
  { "dtype not a string", m_dtype_number, CONTAINER, SSFPN_ERROR_FORMAT, { "\"dtype\" is not a string" } },
  { "unknown dtype F64", m_dtype_f64, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.0.bn.bias\"", "unknown dtype \"F64\"" } },
  { "I64 outside num_batches_tracked", m_dtype_i64, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.0.bn.bias\"", "unknown dtype \"I64\"" } },
  { "unknown dtype f32", m_dtype_lowercase, CONTAINER, SSFPN_ERROR_FORMAT, { "unknown dtype \"f32\"" } },
  { "shape missing", m_shape_missing, CONTAINER, SSFPN_ERROR_FORMAT, { "\"shape\" is missing" } },
  { "shape not an array", m_shape_number, CONTAINER, SSFPN_ERROR_FORMAT, { "\"shape\" is not an array" } },
  { "negative dimension", m_shape_negative, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.0.conv.weight\"", "shape[1] is negative or not below 2^63" } },
  { "fractional dimension", m_shape_fraction, CONTAINER, SSFPN_ERROR_FORMAT, { "shape[3] is not an integer" } },
  { "string dimension", m_shape_string, CONTAINER, SSFPN_ERROR_FORMAT, { "shape[0] is not an integer" } },
  { "rank 9", m_shape_rank9, CONTAINER, SSFPN_ERROR_FORMAT, { "rank 9" } },
  { "element count overflow", m_shape_overflow, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.0.bn.bias\"", "overflow" } },
  { "byte size overflow", m_bytes_overflow, CONTAINER, SSFPN_ERROR_FORMAT, { "overflow" } },
  { "data_offsets missing", m_offsets_missing, CONTAINER, SSFPN_ERROR_FORMAT, { "\"data_offsets\" is missing" } },
  { "data_offsets of one number", m_offsets_one, CONTAINER, SSFPN_ERROR_FORMAT, { "\"data_offsets\" is not an array of two integers" } },
  { "data_offsets an object", m_offsets_object, CONTAINER, SSFPN_ERROR_FORMAT, { "\"data_offsets\" is not an array of two integers" } },
  { "data_offsets fractional", m_offsets_fraction, CONTAINER, SSFPN_ERROR_FORMAT, { "data_offsets[0] is not an integer" } },
  { "data_offsets negative", m_offsets_negative, CONTAINER, SSFPN_ERROR_FORMAT, { "data_offsets[0] is negative" } },
  { "data_offsets past 2^63", m_offsets_huge, CONTAINER, SSFPN_ERROR_FORMAT, { "data_offsets[1] is negative or not below 2^63" } },
  { "data_offsets begin after end", m_offsets_reversed, CONTAINER, SSFPN_ERROR_FORMAT, { "begin 40 is after end 8" } },
  { "data_offsets outside the data area", m_offsets_outside, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.0.bn.bias\"", "outside the data area" } },
  { "data area truncated", m_data_truncated, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.1.anchors\"", "outside the data area" } },
  { "data_offsets disagree with the shape", m_offsets_vs_shape, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.0.conv.weight\"", "span 864 bytes", "needs 576 bytes" } },
  { "tensors overlap", m_overlap, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.0.bn.weight\"", "\"model.0.bn.bias\"", "overlap" } },
  { "tensors overlap partly", m_overlap_partial, CONTAINER, SSFPN_ERROR_FORMAT, { "\"model.1.m.0.weight\"", "\"model.1.m.0.bias\"", "overlap" } },
  { "__metadata__ not an object", m_metadata_string, CONTAINER, SSFPN_ERROR_FORMAT, { "\"__metadata__\" is not a JSON object" } },
  { "metadata value a number", m_metadata_number, CONTAINER, SSFPN_ERROR_FORMAT, { "metadata \"ssfpn.format\" is not a string" } },
  { "metadata value an array", m_metadata_object, CONTAINER, SSFPN_ERROR_FORMAT, { "metadata \"ssfpn.names\" is not a string" } },
  { "duplicate tensor name", m_duplicate_tensor, CONTAINER, SSFPN_ERROR_FORMAT, { "duplicate key \"model.0.bn.bias\"" } },
  { "duplicate metadata key", m_duplicate_metadata, CONTAINER, SSFPN_ERROR_FORMAT, { "duplicate key \"ssfpn.format\"" } },

  /* tensors the configuration needs */
  { "missing conv weight", w_missing_conv, MODEL, SSFPN_ERROR_WEIGHTS, { "model.0.conv.weight" } },
  { "missing BatchNorm variance", w_missing_running_var, MODEL, SSFPN_ERROR_WEIGHTS, { "model.0.bn.running_var" } },
  { "missing anchors", w_missing_anchors, MODEL, SSFPN_ERROR_WEIGHTS, { "model.1.anchors" } },
  { "conv kernel 5 instead of 3", w_conv_kernel, MODEL, SSFPN_ERROR_WEIGHTS, { "model.0.conv.weight" } },
  { "conv with 4 input channels", w_conv_inputs, MODEL, SSFPN_ERROR_WEIGHTS, { "model.0.conv.weight" } },
  { "conv weight of rank 2", w_conv_rank, MODEL, SSFPN_ERROR_WEIGHTS, { "model.0.conv.weight" } },
  { "BatchNorm of 16 channels", w_bn_size, MODEL, SSFPN_ERROR_WEIGHTS, { "model.0.bn.weight" } },
  { "Detect with 12 outputs", w_detect_outputs, MODEL, SSFPN_ERROR_WEIGHTS, { "model.1.m.0.weight" } },
  { "Detect bias of 7", w_detect_bias, MODEL, SSFPN_ERROR_WEIGHTS, { "model.1.m.0.bias" } },
  { "anchors for 3 per level", w_anchors_shape, MODEL, SSFPN_ERROR_WEIGHTS, { "model.1.anchors" } },

  /* the configuration */
  { "config missing", c_missing, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.config" } },
  { "config not JSON", c_not_json, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.config" } },
  { "config not an object", c_not_object, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.config" } },
  { "config nested 200000 deep", c_deep, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.config" } },
  { "unknown module", c_unknown_module, MODEL, SSFPN_ERROR_CONFIG, { "Conv9" } },
  { "config with a duplicate key", c_duplicate_key, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.config: duplicate key \"nc\"" } },
  { "repeats past 1024 after depth_multiple", c_repeats_scaled, MODEL, SSFPN_ERROR_CONFIG, { "layer 1", "1024000 repeats; at most 1024" } },
  { "repeats past 16384 in all", c_repeats_total, MODEL, SSFPN_ERROR_CONFIG, { "layer 16", "16385 times in all; at most 16384" } },
  { "kernel larger than the padded input", c_kernel_over_input, MODEL, SSFPN_ERROR_CONFIG, { "layer 2", "empty" } },
  { "from out of range", c_from_out_of_range, MODEL, SSFPN_ERROR_CONFIG, { "layer 1" } },
  { "nc missing", c_missing_nc, MODEL, SSFPN_ERROR_CONFIG, { "nc" } },
  { "Conv args not numbers", c_bad_args, MODEL, SSFPN_ERROR_CONFIG, { "layer 0" } },
  { "unknown activation", c_bad_activation, MODEL, SSFPN_ERROR_CONFIG, { "Mish" } },
  { "no Detect layer", c_no_detect, MODEL, SSFPN_ERROR_CONFIG, { "Detect" } },

  /* the other metadata */
  { "ssfpn.format missing", d_format_missing, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.format" } },
  { "ssfpn.format 2", d_format_2, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.format" } },
  { "ssfpn.names missing", d_names_missing, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.names" } },
  { "ssfpn.names of 3 for nc 2", d_names_three, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.names" } },
  { "ssfpn.names not JSON", d_names_not_array, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.names" } },
  { "ssfpn.names numbers", d_names_numbers, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.names" } },
  { "ssfpn.stride of 2 levels", d_stride_two_levels, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.stride" } },
  { "ssfpn.stride not the network's", d_stride_wrong, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.stride" } },
  { "ssfpn.stride missing", d_stride_missing, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.stride" } },
  { "ssfpn.imgsz of one number", d_imgsz_one, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.imgsz" } },
  { "ssfpn.imgsz zero", d_imgsz_zero, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.imgsz" } },
  { "ssfpn.bn_eps not a number", d_bn_eps_text, MODEL, SSFPN_ERROR_FORMAT, { "ssfpn.bn_eps" } },
};

/* ---- checks ------------------------------------------------------------- */

static const char *
code_name (int code)
{
  static const char *names[] = { "IO", "FORMAT", "CONFIG", "WEIGHTS",
                                 "DEVICE", "ARGUMENT", "UNSUPPORTED",
                                 "RUNTIME" };

  return code >= 0 && code < (int) G_N_ELEMENTS (names) ? names[code] : "?";
}

/* @error must be SSFPN_ERROR/@code, name @source and contain @expect. */
static void
check_error (const char *what, const GError *error, SsfpnErrorCode code,
             const char *source, gboolean source_first,
             const char *const expect[3])
{
  if (!check (error != NULL, what, "succeeded, expected an error"))
    return;
  check (error->domain == SSFPN_ERROR && error->code == (int) code, what,
         "error code %s, expected %s (%s)",
         error->domain == SSFPN_ERROR ? code_name (error->code) : "foreign",
         code_name (code), error->message);
  if (source_first)
    check (g_str_has_prefix (error->message, source), what,
           "message does not start with \"%s\": %s", source,
           error->message);
  else
    check (strstr (error->message, source) != NULL, what,
           "message does not name \"%s\": %s", source, error->message);
  for (int i = 0; i < 3 && expect[i]; i++)
    check (strstr (error->message, expect[i]) != NULL, what,
           "message lacks \"%s\": %s", expect[i], error->message);
}

static void
test_defect_rows (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (defects); i++)
    {
      const DefectRow *row = &defects[i];
      FakeFile *f = fake_tiny_model ();
      GBytes *bytes;
      GError *error = NULL;
      SsfpnSafetensors *st;
      SsfpnModel *model;

      row->mutate (f);
      bytes = fake_file_serialize (f);
      fake_file_free (f);

      st = ssfpn_safetensors_parse (bytes, "tiny.safetensors", &error);
      if (row->level == CONTAINER)
        {
          check (st == NULL, row->what, "container accepted");
          check_error (row->what, error, row->code, "tiny.safetensors", TRUE,
                       row->expect);
        }
      else
        check (st != NULL, row->what,
               "container of a model-level defect rejected: %s",
               error ? error->message : "?");
      ssfpn_safetensors_free (st);
      g_clear_error (&error);

      model = ssfpn_model_open_bytes (bytes, "tiny.safetensors", &error);
      if (verbose)
        g_print ("%-40s %s\n", row->what, error ? error->message : "(none)");
      check (model == NULL, row->what, "model opened");
      check_error (row->what, error, row->code, "tiny.safetensors",
                   row->level == CONTAINER, row->expect);
      if (model)
        ssfpn_model_unref (model);
      g_clear_error (&error);
      g_bytes_unref (bytes);
    }
}

/* A header length over the limit in a file large enough to hold it. */
static void
test_header_over_limit (void)
{
  const gsize size = 8 + 100000001;
  guint8 *file = g_malloc0 (size);
  guint64 length = GUINT64_TO_LE ((guint64) 100000001);
  GBytes *bytes;
  GError *error = NULL;
  SsfpnSafetensors *st;
  static const char *const expect[3] = { "header length 100000001",
                                         "100 MB" };

  memcpy (file, &length, 8);
  bytes = g_bytes_new_take (file, size);
  st = ssfpn_safetensors_parse (bytes, "huge.safetensors", &error);
  check (st == NULL, "header over 100 MB", "accepted");
  check_error ("header over 100 MB", error, SSFPN_ERROR_FORMAT,
               "huge.safetensors", TRUE, expect);
  ssfpn_safetensors_free (st);
  g_clear_error (&error);
  g_bytes_unref (bytes);
}

/* One level of stride 2 and two anchors: 2 x (h/2) x (w/2) output rows. */
static void
check_size_queries (const char *what, SsfpnModel *model)
{
  SsfpnLayerInfo *layers;
  GError *error = NULL;
  int n = 0;

  check (ssfpn_model_output_rows (model, 32, 32) == 512, what, "rows %d",
         ssfpn_model_output_rows (model, 32, 32));
  check (ssfpn_model_output_rows (model, 0, 32) == -1
         && ssfpn_model_output_rows (model, 33, 32) == -1, what,
         "rows for a size off the stride: %d, %d",
         ssfpn_model_output_rows (model, 0, 32),
         ssfpn_model_output_rows (model, 33, 32));
  /* 2 x 32768 x 32768 = 2^31 rows: one more than an int holds. */
  check (ssfpn_model_output_rows (model, 65536, 65536) == -1, what,
         "rows at 65536x65536: %d", ssfpn_model_output_rows (model, 65536,
                                                               65536));
  check (ssfpn_model_output_rows (model, 65534, 65536) > 0, what,
         "rows at 65534x65536: %d", ssfpn_model_output_rows (model, 65534,
                                                               65536));
  layers = ssfpn_model_layers (model, 65536, 65536, &n, &error);
  check (layers == NULL && error != NULL
         && strstr (error->message, "tiny.safetensors") != NULL, what,
         "layer table at 65536x65536: %s",
         error ? error->message : "no error");
  ssfpn_layer_info_free (layers, n);
  g_clear_error (&error);
}

static void
check_opens (const char *what, FakeFile *f)
{
  GBytes *bytes = fake_file_serialize (f);
  GError *error = NULL;
  SsfpnModel *model;

  model = ssfpn_model_open_bytes (bytes, "tiny.safetensors", &error);
  if (check (model != NULL, what, "does not open: %s",
             error ? error->message : "?"))
    {
      int height = 0, width = 0;

      check (ssfpn_model_num_classes (model) == 2, what, "classes %d",
             ssfpn_model_num_classes (model));
      check (g_strcmp0 (ssfpn_model_class_name (model, 1), "b") == 0, what,
             "class 1 is %s", ssfpn_model_class_name (model, 1));
      check (ssfpn_model_num_levels (model) == 1, what, "levels %d",
             ssfpn_model_num_levels (model));
      check (ssfpn_model_stride (model, 0) == 2, what, "stride %d",
             ssfpn_model_stride (model, 0));
      check (ssfpn_model_anchors_per_level (model) == 2, what, "anchors %d",
             ssfpn_model_anchors_per_level (model));
      ssfpn_model_input_size (model, &height, &width);
      check (height == 32 && width == 32, what, "imgsz %dx%d", height, width);
      check_size_queries (what, model);
      ssfpn_model_unref (model);
    }
  g_clear_error (&error);
  g_bytes_unref (bytes);
  fake_file_free (f);
}

static void
test_valid_variants (void)
{
  FakeFile *f;

  check_opens ("valid tiny model", fake_tiny_model ());

  f = fake_tiny_model ();
  for (guint i = 0; i < f->tensors->len; i++)
    fake_set_storage (g_ptr_array_index (f->tensors, i), STORE_F16);
  check_opens ("valid, all F16", f);

  f = fake_tiny_model ();
  for (guint i = 0; i < f->tensors->len; i++)
    fake_set_storage (g_ptr_array_index (f->tensors, i), i % 2 ? STORE_BF16
                                                               : STORE_F32);
  check_opens ("valid, BF16 and F32 mixed", f);

  f = fake_tiny_model ();
  fake_add (f, "model.0.bn.num_batches_tracked", "[]", 1, 100.0f, 0.0f);
  check_opens ("valid, with num_batches_tracked", f);

  /* PyTorch keeps num_batches_tracked as int64; a state_dict saved as is
   * must load. */
  f = fake_tiny_model ();
  fake_add (f, "model.0.bn.num_batches_tracked", "[]", 1, 100.0f, 0.0f);
  fake_set_storage (fake_find (f, "model.0.bn.num_batches_tracked"),
                    STORE_I64);
  check_opens ("valid, with an I64 num_batches_tracked", f);

  f = fake_tiny_model ();
  fake_meta (f, "ssfpn.bn_eps", "0.0001");
  check_opens ("valid, with ssfpn.bn_eps", f);

  /* What json.dumps writes for a float tensor's tolist(). */
  f = fake_tiny_model ();
  fake_meta (f, "ssfpn.stride", "[2.0]");
  fake_meta (f, "ssfpn.imgsz", "[32.0, 32.0]");
  check_opens ("valid, stride and imgsz as whole floats", f);
}

/* The container alone: lookups, metadata, empty and unaligned tensors,
 * conversions of stored values. */
static void
test_container_contents (void)
{
  FakeFile *f = fake_tiny_model ();
  GBytes *bytes;
  GError *error = NULL;
  SsfpnSafetensors *st;
  const SsfpnStTensor *t;
  const char *what = "container contents";

  fake_set_storage (fake_find (f, "model.0.bn.bias"), STORE_F16);
  fake_set_storage (fake_find (f, "model.0.bn.weight"), STORE_BF16);
  /* 3 F16 values: everything after starts 2 bytes off 4-byte alignment. */
  fake_set_storage (fake_add (f, "odd", "[3]", 3, 0.5f, 0.25f), STORE_F16);
  fake_add (f, "after_odd", "[2, 3]", 6, -1.0f, 0.5f);
  fake_add (f, "empty", "[4, 0]", 0, 0.0f, 0.0f);
  fake_add (f, "scalar", "[]", 1, 3.0f, 0.0f);
  bytes = fake_file_serialize (f);

  st = ssfpn_safetensors_parse (bytes, "tiny.safetensors", &error);
  if (!check (st != NULL, what, "does not parse: %s",
              error ? error->message : "?"))
    goto out;

  check (g_hash_table_size (st->tensors) == 12, what, "%u tensors",
         g_hash_table_size (st->tensors));
  check (g_strcmp0 (ssfpn_safetensors_metadata (st, "ssfpn.config"),
                    tiny_config) == 0, what, "config metadata differs");
  check (ssfpn_safetensors_metadata (st, "ssfpn.bn_eps") == NULL, what,
         "absent metadata found");
  check (ssfpn_safetensors_get (st, "model.9.conv.weight") == NULL, what,
         "absent tensor found");
  check (g_strcmp0 (st->source, "tiny.safetensors") == 0, what, "source %s",
         st->source);

  t = ssfpn_safetensors_get (st, "model.0.conv.weight");
  if (check (t != NULL, what, "conv weight missing"))
    check (t->dtype == SSFPN_DTYPE_F32 && t->rank == 4 && t->shape[0] == 8
           && t->shape[1] == 3 && t->shape[3] == 3 && t->numel == 216, what,
           "conv weight header wrong");

  t = ssfpn_safetensors_get (st, "empty");
  if (check (t != NULL, what, "empty tensor missing"))
    {
      float *values = ssfpn_st_tensor_to_f32 (t);
      check (t->numel == 0 && t->rank == 2 && t->shape[1] == 0
             && values != NULL, what, "empty tensor wrong");
      g_free (values);
    }
  t = ssfpn_safetensors_get (st, "scalar");
  if (check (t != NULL, what, "scalar missing"))
    {
      float *values = ssfpn_st_tensor_to_f32 (t);
      check (t->rank == 0 && t->numel == 1 && values[0] == 3.0f, what,
             "scalar wrong");
      g_free (values);
    }

  /* Every stored value comes back exactly, whatever the dtype. */
  for (guint i = 0; i < f->tensors->len; i++)
    {
      FakeTensor *fake = g_ptr_array_index (f->tensors, i);
      float *values;
      gboolean same = TRUE;

      t = ssfpn_safetensors_get (st, fake->name);
      if (!check (t != NULL, what, "%s missing", fake->name))
        continue;
      check (t->numel == (gint64) fake->values->len, what, "%s numel %"
             G_GINT64_FORMAT, fake->name, t->numel);
      values = ssfpn_st_tensor_to_f32 (t);
      for (guint k = 0; k < fake->values->len && same; k++)
        same = values[k] == g_array_index (fake->values, float, k);
      check (same, what, "%s values differ", fake->name);
      g_free (values);
    }
  check (ssfpn_safetensors_get (st, "model.0.bn.bias")->dtype
         == SSFPN_DTYPE_F16, what, "F16 dtype not kept");
  check (ssfpn_safetensors_get (st, "model.0.bn.weight")->dtype
         == SSFPN_DTYPE_BF16, what, "BF16 dtype not kept");

out:
  ssfpn_safetensors_free (st);
  g_clear_error (&error);
  g_bytes_unref (bytes);
  fake_file_free (f);
}

/* ---- files on disk ------------------------------------------------------ */

static char *
write_fake (const char *dir, const char *name, FakeFile *f)
{
  char *path = g_build_filename (dir, name, NULL);
  GBytes *bytes = fake_file_serialize (f);
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);

  if (!g_file_set_contents (path, data, (gssize) size, NULL))
    g_error ("cannot write %s", path);
  g_bytes_unref (bytes);
  fake_file_free (f);
  return path;
}

static void
expect_open_error (const char *what, const char *path, SsfpnErrorCode code,
                   const char *expect0)
{
  GError *error = NULL;
  SsfpnModel *model = ssfpn_model_open (path, &error);
  const char *expect[3] = { expect0 };

  check (model == NULL, what, "opened");
  check_error (what, error, code, path, FALSE, expect);
  if (model)
    ssfpn_model_unref (model);
  g_clear_error (&error);
}

static void
test_files (void)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("ssfpn-loader-XXXXXX", &error);
  char *valid, *overlap, *missing_weight, *empty, *absent, *subdir;
  FakeFile *f;
  SsfpnModel *model;

  if (!check (dir != NULL, "temporary directory", "%s",
              error ? error->message : "?"))
    {
      g_clear_error (&error);
      return;
    }

  valid = write_fake (dir, "valid.safetensors", fake_tiny_model ());
  model = ssfpn_model_open (valid, &error);
  if (check (model != NULL, "valid file opens", "%s",
             error ? error->message : "?"))
    {
      check (g_strcmp0 (ssfpn_model_path (model), valid) == 0,
             "model path", "%s", ssfpn_model_path (model));
      ssfpn_model_unref (model);
    }
  g_clear_error (&error);

  f = fake_tiny_model ();
  m_overlap (f);
  overlap = write_fake (dir, "overlap.safetensors", f);
  expect_open_error ("file with overlapping tensors", overlap,
                     SSFPN_ERROR_FORMAT, "overlap");

  f = fake_tiny_model ();
  w_missing_conv (f);
  missing_weight = write_fake (dir, "missing.safetensors", f);
  expect_open_error ("file without the conv weight", missing_weight,
                     SSFPN_ERROR_WEIGHTS, "model.0.conv.weight");

  empty = g_build_filename (dir, "empty.safetensors", NULL);
  g_file_set_contents (empty, "", 0, NULL);
  expect_open_error ("empty file", empty, SSFPN_ERROR_FORMAT, "too short");

  absent = g_build_filename (dir, "absent.safetensors", NULL);
  expect_open_error ("absent file", absent, SSFPN_ERROR_IO, NULL);

  subdir = g_build_filename (dir, "folder.safetensors", NULL);
  g_mkdir (subdir, 0700);
  expect_open_error ("directory", subdir, SSFPN_ERROR_IO, NULL);

  /* The container API names the path too. */
  {
    SsfpnSafetensors *st = ssfpn_safetensors_open (overlap, &error);
    const char *expect[3] = { "overlap" };

    check (st == NULL, "safetensors_open of a bad file", "accepted");
    check_error ("safetensors_open of a bad file", error,
                 SSFPN_ERROR_FORMAT, overlap, TRUE, expect);
    g_clear_error (&error);
    st = ssfpn_safetensors_open (subdir, &error);
    check (st == NULL && error && error->code == SSFPN_ERROR_IO
           && g_str_has_prefix (error->message, subdir),
           "safetensors_open of a directory", "%s",
           error ? error->message : "accepted");
    g_clear_error (&error);
    st = ssfpn_safetensors_open (valid, &error);
    check (st != NULL && ssfpn_safetensors_get (st, "model.1.anchors"),
           "safetensors_open of a valid file", "%s",
           error ? error->message : "anchors missing");
    ssfpn_safetensors_free (st);
    g_clear_error (&error);
  }

  g_remove (valid);
  g_remove (overlap);
  g_remove (missing_weight);
  g_remove (empty);
  g_rmdir (subdir);
  g_rmdir (dir);
  g_free (valid);
  g_free (overlap);
  g_free (missing_weight);
  g_free (empty);
  g_free (absent);
  g_free (subdir);
  g_free (dir);
}

/* ---- element conversions ------------------------------------------------ */

static guint32
bits_of (float v)
{
  guint32 bits;

  memcpy (&bits, &v, 4);
  return bits;
}

/* IEEE half and bfloat16 by their definition, in double arithmetic. */
static double
reference_value (guint16 bits, int exponent_bits, int mantissa_bits)
{
  int bias = (1 << (exponent_bits - 1)) - 1;
  int exponent = (bits >> mantissa_bits) & ((1 << exponent_bits) - 1);
  int mantissa = bits & ((1 << mantissa_bits) - 1);
  double sign = (bits >> 15) ? -1.0 : 1.0;

  if (exponent == (1 << exponent_bits) - 1)
    return mantissa ? NAN : sign * INFINITY;
  if (exponent == 0)
    return sign * ldexp (mantissa, 1 - bias - mantissa_bits);
  return sign * ldexp (mantissa + (1 << mantissa_bits),
                       exponent - bias - mantissa_bits);
}

static void
test_conversions (void)
{
  static const struct {
    guint16 bits;
    float value;
  } halves[] = {
    { 0x0000, 0.0f }, { 0x3c00, 1.0f }, { 0xc000, -2.0f },
    { 0x7bff, 65504.0f }, { 0x3555, 0.333251953125f },
    { 0x0400, 6.103515625e-05f },         /* smallest normal, 2^-14 */
    { 0x0001, 5.9604644775390625e-08f },  /* smallest subnormal, 2^-24 */
    { 0x8001, -5.9604644775390625e-08f },
    { 0x03ff, 6.0975551605224609375e-05f }, /* largest subnormal */
    { 0x0200, 3.0517578125e-05f },
  }, bfloats[] = {
    { 0x3f80, 1.0f }, { 0xc040, -3.0f }, { 0x4049, 3.140625f },
    { 0x7f7f, 3.3895313892515355e+38f }, /* largest finite */
    { 0x0080, 1.1754943508222875e-38f }, /* smallest normal, 2^-126 */
  };
  int mismatches = 0;

  for (gsize i = 0; i < G_N_ELEMENTS (halves); i++)
    check (bits_of (ssfpn_f16_to_f32 (halves[i].bits))
           == bits_of (halves[i].value), "f16 known value",
           "0x%04x -> %.9g, expected %.9g", halves[i].bits,
           ssfpn_f16_to_f32 (halves[i].bits), halves[i].value);
  for (gsize i = 0; i < G_N_ELEMENTS (bfloats); i++)
    check (bits_of (ssfpn_bf16_to_f32 (bfloats[i].bits))
           == bits_of (bfloats[i].value), "bf16 known value",
           "0x%04x -> %.9g, expected %.9g", bfloats[i].bits,
           ssfpn_bf16_to_f32 (bfloats[i].bits), bfloats[i].value);

  check (bits_of (ssfpn_f16_to_f32 (0x8000)) == 0x80000000u, "f16 -0",
         "sign of zero lost");
  check (isinf (ssfpn_f16_to_f32 (0x7c00)) && ssfpn_f16_to_f32 (0x7c00) > 0,
         "f16 +inf", "%g", ssfpn_f16_to_f32 (0x7c00));
  check (isinf (ssfpn_f16_to_f32 (0xfc00)) && ssfpn_f16_to_f32 (0xfc00) < 0,
         "f16 -inf", "%g", ssfpn_f16_to_f32 (0xfc00));
  check (isnan (ssfpn_f16_to_f32 (0x7e00)) && isnan (ssfpn_f16_to_f32 (0xfc01)),
         "f16 nan", "not a nan");
  check (bits_of (ssfpn_bf16_to_f32 (0x0001)) == 0x00010000u,
         "bf16 subnormal", "%g", ssfpn_bf16_to_f32 (0x0001));
  check (isinf (ssfpn_bf16_to_f32 (0xff80)) && ssfpn_bf16_to_f32 (0xff80) < 0,
         "bf16 -inf", "%g", ssfpn_bf16_to_f32 (0xff80));
  check (isnan (ssfpn_bf16_to_f32 (0x7fc0)) && isnan (ssfpn_bf16_to_f32 (0xff81)),
         "bf16 nan", "not a nan");

  /* All 65536 patterns of both formats against the definition. */
  for (guint b = 0; b <= 0xffff; b++)
    {
      double want_h = reference_value ((guint16) b, 5, 10);
      double want_b = reference_value ((guint16) b, 8, 7);
      float got_h = ssfpn_f16_to_f32 ((guint16) b);
      float got_b = ssfpn_bf16_to_f32 ((guint16) b);

      if (isnan (want_h) ? !isnan (got_h)
                         : bits_of (got_h) != bits_of ((float) want_h))
        mismatches++;
      if (isnan (want_b) ? !isnan (got_b)
                         : bits_of (got_b) != bits_of ((float) want_b))
        mismatches++;
    }
  check (mismatches == 0, "all f16/bf16 patterns", "%d mismatches",
         mismatches);
}

/* The model compiled into the library: the six shapes at 640x640
 * (docs/default-model.md), named as the default in messages. */
static void
test_default_model (void)
{
  static const char *const names[] = { "circle", "square", "triangle",
                                       "star", "hexagon", "cross" };
  GError *error = NULL;
  SsfpnModel *model = ssfpn_model_open_default (&error);
  if (!check (model != NULL, "default model opens", "%s",
              error ? error->message : ""))
    {
      g_clear_error (&error);
      return;
    }
  int height = 0, width = 0;
  ssfpn_model_input_size (model, &height, &width);
  check (height == 640 && width == 640, "default model size", "%dx%d",
         height, width);
  check (strcmp (ssfpn_model_path (model), SSFPN_DEFAULT_MODEL_NAME) == 0,
         "default model name", "%s", ssfpn_model_path (model));
  int classes = ssfpn_model_num_classes (model);
  check (classes == 6, "default model classes", "%d classes", classes);
  for (int i = 0; i < 6 && i < classes; i++)
    check (strcmp (ssfpn_model_class_name (model, i), names[i]) == 0,
           "default model class names", "class %d is %s, expected %s", i,
           ssfpn_model_class_name (model, i), names[i]);
  ssfpn_model_unref (model);
}

int
main (void)
{
  verbose = g_getenv ("SSFPN_TEST_VERBOSE") != NULL;
  test_conversions ();
  test_container_contents ();
  test_header_over_limit ();
  test_defect_rows ();
  test_valid_variants ();
  test_files ();
  test_default_model ();

  g_print ("%d passed, %d failed\n", n_passed, n_failed);
  return n_failed ? 1 : 0;
}
