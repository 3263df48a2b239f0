/* NumPy .npy reading and writing (float32, C order).
 *
 * The format: the magic "\x93NUMPY", a major and a minor version byte, the
 * header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0),
 * then the header, a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 64, 64), }
 * padded with spaces and ended by '\n', then the raw data.
 */
#include "npy.h"

#include "ssfpn/ssfpn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAGIC "\x93NUMPY"
#define MAGIC_LENGTH 6
/* magic, version, 4-byte header length: the longest fixed prefix */
#define MAX_PREFIX_LENGTH 12
/* A header larger than this is not a real .npy file. */
#define MAX_HEADER_LENGTH (1u << 20)

typedef struct {
  const char *name;  /* file name for messages */
  const char *text;  /* header dict text */
  gsize length;
  gsize pos;
} HeaderParser;

/* ---- the fixed prefix ------------------------------------------------- */

/* Checks magic and version in @prefix (@available bytes) and returns the
 * offset and length of the header text. */
static gboolean
parse_prefix (const guint8 *prefix, gsize available, const char *name,
              gsize *header_offset, gsize *header_length, GError **error)
{
  if (available < MAGIC_LENGTH + 2
      || memcmp (prefix, MAGIC, MAGIC_LENGTH) != 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: not a NumPy .npy file (the magic \\x93NUMPY is missing)",
                   name);
      return FALSE;
    }

  int major = prefix[6], minor = prefix[7];
  gsize length_bytes;
  if (major == 1 && minor == 0)
    length_bytes = 2;
  else if ((major == 2 || major == 3) && minor == 0)
    length_bytes = 4;
  else
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: .npy format version %d.%d is not supported "
                   "(1.0, 2.0 and 3.0 are)", name, major, minor);
      return FALSE;
    }

  if (available < 8 + length_bytes)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: truncated: the file ends inside the .npy prefix", name);
      return FALSE;
    }

  gsize length = 0;
  for (gsize i = 0; i < length_bytes; i++)
    length |= (gsize) prefix[8 + i] << (8 * i);
  if (length == 0 || length > MAX_HEADER_LENGTH)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: .npy header length %" G_GSIZE_FORMAT " is not plausible",
                   name, length);
      return FALSE;
    }
  *header_offset = 8 + length_bytes;
  *header_length = length;
  return TRUE;
}

/* ---- the header dict -------------------------------------------------- */

static gboolean
header_error (HeaderParser *p, GError **error, const char *what)
{
  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
               "%s: malformed .npy header (%s at byte %" G_GSIZE_FORMAT "): %.*s",
               p->name, what, p->pos, (int) MIN (p->length, 120), p->text);
  return FALSE;
}

static void
skip_space (HeaderParser *p)
{
  while (p->pos < p->length && g_ascii_isspace (p->text[p->pos]))
    p->pos++;
}

static gboolean
accept_char (HeaderParser *p, char c)
{
  skip_space (p);
  if (p->pos < p->length && p->text[p->pos] == c)
    {
      p->pos++;
      return TRUE;
    }
  return FALSE;
}

/* A quoted Python string without escapes (all the keys and dtype strings
 * NumPy writes are plain). */
static char *
parse_string (HeaderParser *p, GError **error)
{
  skip_space (p);
  if (p->pos >= p->length || (p->text[p->pos] != '\'' && p->text[p->pos] != '"'))
    {
      header_error (p, error, "expected a quoted string");
      return NULL;
    }
  char quote = p->text[p->pos++];
  gsize start = p->pos;
  while (p->pos < p->length && p->text[p->pos] != quote)
    {
      if (p->text[p->pos] == '\\')
        {
          header_error (p, error, "escapes in strings are not supported");
          return NULL;
        }
      p->pos++;
    }
  if (p->pos >= p->length)
    {
      header_error (p, error, "unterminated string");
      return NULL;
    }
  char *value = g_strndup (p->text + start, p->pos - start);
  p->pos++;
  return value;
}

static gboolean
parse_bool (HeaderParser *p, gboolean *value, GError **error)
{
  skip_space (p);
  const char *rest = p->text + p->pos;
  gsize left = p->length - p->pos;
  if (left >= 4 && strncmp (rest, "True", 4) == 0)
    {
      *value = TRUE;
      p->pos += 4;
      return TRUE;
    }
  if (left >= 5 && strncmp (rest, "False", 5) == 0)
    {
      *value = FALSE;
      p->pos += 5;
      return TRUE;
    }
  return header_error (p, error, "expected True or False");
}

/* A tuple of non-negative integers: "()", "(5,)", "(1, 3, 64, 64)". */
static gboolean
parse_shape (HeaderParser *p, int *rank, gint64 *shape, GError **error)
{
  if (!accept_char (p, '('))
    return header_error (p, error, "expected a shape tuple");
  *rank = 0;
  for (;;)
    {
      if (accept_char (p, ')'))
        return TRUE;
      skip_space (p);
      if (p->pos >= p->length || !g_ascii_isdigit (p->text[p->pos]))
        return header_error (p, error, "expected a non-negative dimension");
      gint64 dim = 0;
      while (p->pos < p->length && g_ascii_isdigit (p->text[p->pos]))
        {
          if (dim > (G_MAXINT64 - 9) / 10)
            return header_error (p, error, "dimension too large");
          dim = dim * 10 + (p->text[p->pos++] - '0');
        }
      /* Python 2 wrote long integers with an L suffix. */
      if (p->pos < p->length && p->text[p->pos] == 'L')
        p->pos++;
      if (*rank == NPY_MAX_RANK)
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s: arrays of more than %d dimensions are not supported",
                       p->name, NPY_MAX_RANK);
          return FALSE;
        }
      shape[(*rank)++] = dim;
      if (accept_char (p, ')'))
        return TRUE;
      if (!accept_char (p, ','))
        return header_error (p, error, "expected ',' or ')' in the shape");
    }
}

/* Skips a bracketed value (a structured dtype's field list). */
static gboolean
skip_bracketed (HeaderParser *p, GError **error)
{
  int depth = 0;
  skip_space (p);
  do
    {
      if (p->pos >= p->length)
        return header_error (p, error, "unbalanced brackets");
      char c = p->text[p->pos++];
      if (c == '[' || c == '(')
        depth++;
      else if (c == ']' || c == ')')
        depth--;
    }
  while (depth > 0);
  return TRUE;
}

/* "float64" for "<f8", with "big-endian" added for '>' order. */
static char *
describe_dtype (const char *descr)
{
  const char *s = descr;
  const char *order = "";
  if (*s == '<' || *s == '>' || *s == '|' || *s == '=')
    {
      if (*s == '>')
        order = ", big-endian";
      s++;
    }
  char kind = *s;
  int size = (kind && g_ascii_isdigit (s[1])) ? atoi (s + 1) : 0;
  const char *family = NULL;
  int bits = size * 8;
  switch (kind)
    {
    case 'f': family = "float"; break;
    case 'i': family = "int"; break;
    case 'u': family = "uint"; break;
    case 'c': family = "complex"; break;
    case 'b': family = "bool"; bits = 0; break;
    case 'S': family = "bytes"; bits = 0; break;
    case 'U': family = "str"; bits = 0; break;
    case 'O': family = "object"; bits = 0; break;
    default: break;
    }
  if (family == NULL)
    return g_strdup ("unknown type");
  if (bits > 0)
    return g_strdup_printf ("%s%d%s", family, bits, order);
  return g_strdup_printf ("%s%s", family, order);
}

static gboolean
check_dtype (const char *name, const char *descr, GError **error)
{
  if (strcmp (descr, "<f4") == 0)
    return TRUE;
  g_autofree char *what = describe_dtype (descr);
  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
               "%s: dtype %s (%s); expected <f4 (float32)", name, descr, what);
  return FALSE;
}

/* Parses the header dict into @rank and @shape, checking dtype and order. */
static gboolean
parse_header (const char *name, const char *text, gsize length, int *rank,
              gint64 *shape, GError **error)
{
  HeaderParser parser = { name, text, length, 0 };
  HeaderParser *p = &parser;
  g_autofree char *descr = NULL;
  gboolean fortran_order = FALSE;
  gboolean have_descr = FALSE, have_order = FALSE, have_shape = FALSE;
  gboolean structured = FALSE;

  if (length == 0 || text[length - 1] != '\n')
    return header_error (p, error, "the header does not end with a newline");
  if (memchr (text, '\0', length) != NULL)
    return header_error (p, error, "NUL byte in the header");

  if (!accept_char (p, '{'))
    return header_error (p, error, "expected '{'");
  while (!accept_char (p, '}'))
    {
      g_autofree char *key = parse_string (p, error);
      if (key == NULL)
        return FALSE;
      if (!accept_char (p, ':'))
        return header_error (p, error, "expected ':'");

      if (strcmp (key, "descr") == 0 && !have_descr)
        {
          skip_space (p);
          if (p->pos < p->length && p->text[p->pos] == '[')
            {
              if (!skip_bracketed (p, error))
                return FALSE;
              structured = TRUE;
            }
          else if ((descr = parse_string (p, error)) == NULL)
            return FALSE;
          have_descr = TRUE;
        }
      else if (strcmp (key, "fortran_order") == 0 && !have_order)
        {
          if (!parse_bool (p, &fortran_order, error))
            return FALSE;
          have_order = TRUE;
        }
      else if (strcmp (key, "shape") == 0 && !have_shape)
        {
          if (!parse_shape (p, rank, shape, error))
            return FALSE;
          have_shape = TRUE;
        }
      else
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s: malformed .npy header: unexpected or repeated key '%s'",
                       name, key);
          return FALSE;
        }

      if (!accept_char (p, ','))
        {
          if (accept_char (p, '}'))
            break;
          return header_error (p, error, "expected ',' or '}'");
        }
    }
  skip_space (p);
  if (p->pos != p->length)
    return header_error (p, error, "text after the closing '}'");

  if (!have_descr || !have_order || !have_shape)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: malformed .npy header: the key '%s' is missing", name,
                   !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
      return FALSE;
    }
  if (structured)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: dtype is a structured (record) type; expected <f4 (float32)",
                   name);
      return FALSE;
    }
  if (!check_dtype (name, descr, error))
    return FALSE;
  if (fortran_order)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: the array is in Fortran order; only C order is supported "
                   "(save it with numpy.ascontiguousarray)", name);
      return FALSE;
    }
  return TRUE;
}

/* The element count of @shape, or FALSE when its bytes overflow gsize. */
static gboolean
shape_count (int rank, const gint64 *shape, gsize *count)
{
  gsize n = 1;
  for (int i = 0; i < rank; i++)
    {
      if (shape[i] < 0 || (guint64) shape[i] > G_MAXSIZE
          || !g_size_checked_mul (&n, n, (gsize) shape[i]))
        return FALSE;
    }
  gsize bytes;
  if (!g_size_checked_mul (&bytes, n, sizeof (float)))
    return FALSE;
  *count = n;
  return TRUE;
}

static NpyArray *
array_for_header (const char *name, const char *text, gsize length,
                  gsize data_bytes, GError **error)
{
  int rank = 0;
  gint64 shape[NPY_MAX_RANK];
  gsize count;

  if (!parse_header (name, text, length, &rank, shape, error))
    return NULL;
  g_autofree char *shape_text = npy_shape_to_string (rank, shape);
  if (!shape_count (rank, shape, &count))
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: shape %s is too large", name, shape_text);
      return NULL;
    }
  gsize needed = count * sizeof (float);
  if (data_bytes < needed)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: truncated: shape %s needs %" G_GSIZE_FORMAT
                   " bytes of float32 data, the file has %" G_GSIZE_FORMAT,
                   name, shape_text, needed, data_bytes);
      return NULL;
    }
  if (data_bytes > needed)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: shape %s needs %" G_GSIZE_FORMAT
                   " bytes of float32 data, but the file has %" G_GSIZE_FORMAT
                   " (shape and byte count disagree)",
                   name, shape_text, needed, data_bytes);
      return NULL;
    }

  NpyArray *array = g_new0 (NpyArray, 1);
  array->rank = rank;
  memcpy (array->shape, shape, sizeof (gint64) * rank);
  array->count = count;
  array->data = g_try_malloc (MAX (needed, 1));
  if (array->data == NULL)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO,
                   "%s: cannot allocate %" G_GSIZE_FORMAT " bytes for shape %s",
                   name, needed, shape_text);
      npy_array_free (array);
      return NULL;
    }
  return array;
}

static void
floats_from_little_endian (float *data, gsize count)
{
#if G_BYTE_ORDER == G_BIG_ENDIAN
  guint32 *words = (guint32 *) data;
  for (gsize i = 0; i < count; i++)
    words[i] = GUINT32_FROM_LE (words[i]);
#else
  (void) data;
  (void) count;
#endif
}

/* ---- public ----------------------------------------------------------- */

void
npy_array_free (NpyArray *array)
{
  if (array == NULL)
    return;
  g_free (array->data);
  g_free (array);
}

NpyArray *
npy_parse (const guint8 *bytes, gsize length, const char *name, GError **error)
{
  gsize header_offset, header_length;

  if (!parse_prefix (bytes, length, name, &header_offset, &header_length, error))
    return NULL;
  if (length - header_offset < header_length)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: truncated: the file ends inside the .npy header", name);
      return NULL;
    }
  gsize data_offset = header_offset + header_length;
  NpyArray *array = array_for_header (name, (const char *) bytes + header_offset,
                                      header_length, length - data_offset, error);
  if (array == NULL)
    return NULL;
  memcpy (array->data, bytes + data_offset, array->count * sizeof (float));
  floats_from_little_endian (array->data, array->count);
  return array;
}

NpyArray *
npy_read (const char *path, GError **error)
{
  guint8 prefix[MAX_PREFIX_LENGTH];
  gsize header_offset, header_length;
  struct stat st;
  NpyArray *array = NULL;
  char *header = NULL;

  FILE *file = fopen (path, "rb");
  if (file == NULL)
    {
      int saved = errno;
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "%s: cannot open: %s",
                   path, g_strerror (saved));
      return NULL;
    }
  if (fstat (fileno (file), &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO,
                   "%s: not a regular file", path);
      goto out;
    }

  gsize file_size = (gsize) st.st_size;
  gsize got = fread (prefix, 1, MIN (file_size, sizeof prefix), file);
  if (!parse_prefix (prefix, got, path, &header_offset, &header_length, error))
    goto out;
  if (file_size - header_offset < header_length)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: truncated: the file ends inside the .npy header", path);
      goto out;
    }

  header = g_malloc (header_length);
  if (fseek (file, (long) header_offset, SEEK_SET) != 0
      || fread (header, 1, header_length, file) != header_length)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO,
                   "%s: cannot read the .npy header", path);
      goto out;
    }

  gsize data_bytes = file_size - header_offset - header_length;
  array = array_for_header (path, header, header_length, data_bytes, error);
  if (array == NULL)
    goto out;
  if (fread (array->data, sizeof (float), array->count, file) != array->count)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO,
                   "%s: cannot read %" G_GSIZE_FORMAT " floats of data: %s",
                   path, array->count,
                   ferror (file) ? g_strerror (errno) : "the file shrank");
      g_clear_pointer (&array, npy_array_free);
      goto out;
    }
  floats_from_little_endian (array->data, array->count);

out:
  g_free (header);
  fclose (file);
  return array;
}

char *
npy_shape_to_string (int rank, const gint64 *shape)
{
  GString *s = g_string_new ("(");
  for (int i = 0; i < rank; i++)
    g_string_append_printf (s, i ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT,
                            shape[i]);
  if (rank == 1)
    g_string_append_c (s, ',');
  g_string_append_c (s, ')');
  return g_string_free (s, FALSE);
}

/* The version 1.0 prefix and header for @shape, padded so that the data
 * starts on a 64-byte boundary, as NumPy writes it. */
static GString *
build_header (int rank, const gint64 *shape)
{
  g_autofree char *shape_text = npy_shape_to_string (rank, shape);
  GString *dict = g_string_new (NULL);
  g_string_printf (dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
                   shape_text);
  gsize total = 10 + dict->len + 1;
  gsize padded = (total + 63) / 64 * 64;
  for (gsize i = total; i < padded; i++)
    g_string_append_c (dict, ' ');
  g_string_append_c (dict, '\n');

  guint16 length = (guint16) dict->len;
  GString *header = g_string_sized_new (padded);
  g_string_append_len (header, MAGIC, MAGIC_LENGTH);
  g_string_append_c (header, 1);
  g_string_append_c (header, 0);
  g_string_append_c (header, (char) (length & 0xff));
  g_string_append_c (header, (char) (length >> 8));
  g_string_append_len (header, dict->str, dict->len);
  g_string_free (dict, TRUE);
  return header;
}

static gboolean
check_shape_for_writing (int rank, const gint64 *shape, gsize *count,
                         GError **error)
{
  if (rank < 0 || rank > NPY_MAX_RANK)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "cannot write a .npy array of rank %d (0 to %d)", rank,
                   NPY_MAX_RANK);
      return FALSE;
    }
  if (!shape_count (rank, shape, count))
    {
      g_autofree char *text = npy_shape_to_string (rank, shape);
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "cannot write a .npy array of shape %s", text);
      return FALSE;
    }
  return TRUE;
}

GBytes *
npy_encode (int rank, const gint64 *shape, const float *data, GError **error)
{
  gsize count;
  if (!check_shape_for_writing (rank, shape, &count, error))
    return NULL;
  GString *file = build_header (rank, shape);
  gsize data_offset = file->len;
  g_string_append_len (file, (const char *) data, count * sizeof (float));
#if G_BYTE_ORDER == G_BIG_ENDIAN
  floats_from_little_endian ((float *) (file->str + data_offset), count);
#else
  (void) data_offset;
#endif
  return g_string_free_to_bytes (file);
}

gboolean
npy_write (const char *path, int rank, const gint64 *shape, const float *data,
           GError **error)
{
  gsize count;
  if (!check_shape_for_writing (rank, shape, &count, error))
    return FALSE;

  FILE *file = fopen (path, "wb");
  if (file == NULL)
    {
      int saved = errno;
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO,
                   "%s: cannot create: %s", path, g_strerror (saved));
      return FALSE;
    }

  /* A half-written file is removed, but not the name of a device or pipe
   * (/dev/stdout, a link to one) that was written to. */
  struct stat status;
  const gboolean regular = fstat (fileno (file), &status) == 0
    && S_ISREG (status.st_mode);
  GString *header = build_header (rank, shape);
  gboolean ok = fwrite (header->str, 1, header->len, file) == header->len;
  g_string_free (header, TRUE);
#if G_BYTE_ORDER == G_BIG_ENDIAN
  for (gsize i = 0; ok && i < count; i++)
    {
      guint32 word;
      memcpy (&word, &data[i], 4);
      word = GUINT32_TO_LE (word);
      ok = fwrite (&word, 4, 1, file) == 1;
    }
#else
  ok = ok && fwrite (data, sizeof (float), count, file) == count;
#endif
  int saved = errno;
  if (fclose (file) != 0 && ok)
    {
      ok = FALSE;
      saved = errno;
    }
  if (!ok)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "%s: cannot write: %s",
                   path, g_strerror (saved));
      if (regular)
        remove (path);
    }
  return ok;
}
