/* .npy reading and writing: round trips, headers as NumPy writes them, and
 * every kind of malformed file with the message it must produce. */
#include "npy.h"
#include "ssfpn/ssfpn.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include "check.h"


/* A file image: prefix for @version (1, 2 or 3), @dict padded to 64 bytes
 * with a final newline unless @raw_dict, then @data_bytes bytes of data
 * counting up (as floats 0, 1, 2, ... when a multiple of 4). */
static GBytes *
make_file (int version, const char *dict, gboolean raw_dict, gsize data_bytes)
{
  GString *header = g_string_new (dict);
  gsize prefix = version == 1 ? 10 : 12;
  if (!raw_dict)
    {
      while ((prefix + header->len + 1) % 64 != 0)
        g_string_append_c (header, ' ');
      g_string_append_c (header, '\n');
    }
  GByteArray *file = g_byte_array_new ();
  g_byte_array_append (file, (const guint8 *) "\x93NUMPY", 6);
  guint8 ver[2] = { (guint8) version, 0 };
  g_byte_array_append (file, ver, 2);
  guint8 len[4] = { header->len & 0xff, (header->len >> 8) & 0xff,
                    (header->len >> 16) & 0xff, 0 };
  g_byte_array_append (file, len, version == 1 ? 2 : 4);
  g_byte_array_append (file, (const guint8 *) header->str, header->len);
  for (gsize i = 0; i < data_bytes / 4; i++)
    {
      float v = (float) i;
      g_byte_array_append (file, (const guint8 *) &v, 4);
    }
  for (gsize i = 0; i < data_bytes % 4; i++)
    {
      guint8 zero = 0;
      g_byte_array_append (file, &zero, 1);
    }
  g_string_free (header, TRUE);
  return g_byte_array_free_to_bytes (file);
}

/* Parses @file and checks that it fails with @code and a message holding
 * every one of the NULL-terminated @fragments. */
static void
expect_error (const char *what, GBytes *file, int code, ...)
{
  g_autoptr (GError) error = NULL;
  gsize length;
  const guint8 *bytes = g_bytes_get_data (file, &length);
  NpyArray *array = npy_parse (bytes, length, "IN.npy", &error);

  CHECK (array == NULL && error != NULL, "%s: was accepted", what);
  npy_array_free (array);
  g_bytes_unref (file);
  if (error == NULL)
    return;
  CHECK (g_error_matches (error, SSFPN_ERROR, code), "%s: error code %d, want %d",
         what, error->code, code);

  va_list args;
  va_start (args, code);
  for (const char *fragment; (fragment = va_arg (args, const char *)) != NULL;)
    CHECK (strstr (error->message, fragment) != NULL,
           "%s: message \"%s\" lacks \"%s\"", what, error->message, fragment);
  va_end (args);
}

static void
test_round_trip_file (void)
{
  static const gint64 shapes[][NPY_MAX_RANK] = {
    { 0 }, { 7 }, { 2, 3, 4, 5 }, { 1, 2, 1, 2, 1, 2, 1, 3 }, { 4, 0, 3 },
  };
  static const int ranks[] = { 0, 1, 4, 8, 3 };
  g_autofree char *dir = g_dir_make_tmp ("test-npy-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "a.npy", NULL);

  for (gsize s = 0; s < G_N_ELEMENTS (ranks); s++)
    {
      g_autoptr (GError) error = NULL;
      gsize count = 1;
      for (int i = 0; i < ranks[s]; i++)
        count *= shapes[s][i];
      g_autofree float *data = g_new (float, MAX (count, 1));
      for (gsize i = 0; i < count; i++)
        data[i] = (float) i * 0.37f - 5.0f;

      CHECK (npy_write (path, ranks[s], shapes[s], data, &error),
             "write rank %d: %s", ranks[s], error ? error->message : "");
      g_autoptr (NpyArray) back = npy_read (path, &error);
      CHECK (back != NULL, "read rank %d: %s", ranks[s], error ? error->message : "");
      if (back == NULL)
        continue;
      CHECK (back->rank == ranks[s] && back->count == count
             && memcmp (back->shape, shapes[s], sizeof (gint64) * ranks[s]) == 0,
             "rank %d: shape changed", ranks[s]);
      CHECK (count == 0 || memcmp (back->data, data, count * sizeof (float)) == 0,
             "rank %d: data changed", ranks[s]);

      /* The header is padded so the data starts on a 64-byte boundary. */
      g_autofree char *contents = NULL;
      gsize length = 0;
      g_file_get_contents (path, &contents, &length, NULL);
      CHECK ((length - count * 4) % 64 == 0, "rank %d: data offset %" G_GSIZE_FORMAT
             " not 64-aligned", ranks[s], length - count * 4);
    }
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_round_trip_memory (void)
{
  const gint64 shape[2] = { 3, 2 };
  const float data[6] = { 1, -2, 3.5f, 0, 1e-30f, 7 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) file = npy_encode (2, shape, data, &error);
  CHECK (file != NULL, "encode: %s", error ? error->message : "");
  gsize length;
  const guint8 *bytes = g_bytes_get_data (file, &length);
  CHECK (memmem (bytes, length,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }",
                 58) != NULL, "encode: header not as NumPy writes it");
  g_autoptr (NpyArray) back = npy_parse (bytes, length, "mem.npy", &error);
  CHECK (back && back->rank == 2 && back->shape[0] == 3 && back->shape[1] == 2
         && memcmp (back->data, data, sizeof data) == 0, "memory round trip");

  const gint64 big[NPY_MAX_RANK + 1] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
  g_clear_error (&error);
  CHECK (!npy_write ("/nonexistent-dir/x.npy", 2, shape, data, &error)
         && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_IO)
         && strstr (error->message, "/nonexistent-dir/x.npy"),
         "write to a missing directory did not fail with the path");
  g_clear_error (&error);
  CHECK (npy_encode (NPY_MAX_RANK + 1, big, data, &error) == NULL && error,
         "rank 9 was encoded");
}

static void
test_accepted_headers (void)
{
  static const struct { int version; const char *dict; } ok[] = {
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" },
    { 1, "{'descr':'<f4','fortran_order':False,'shape':(2,3)}" },
    { 1, "{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f4\"}" },
    { 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }" },
    { 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" },
    { 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) file = make_file (ok[i].version, ok[i].dict, FALSE, 24);
      gsize length;
      const guint8 *bytes = g_bytes_get_data (file, &length);
      g_autoptr (NpyArray) array = npy_parse (bytes, length, "ok.npy", &error);
      CHECK (array != NULL && array->count == 6 && array->data[5] == 5.0f,
             "header %s (v%d) rejected: %s", ok[i].dict, ok[i].version,
             error ? error->message : "wrong content");
    }

  /* A file NumPy itself wrote. */
  g_autofree char *path = g_build_filename (data_dir (), "nms", "few_boxes.npy", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (NpyArray) array = npy_read (path, &error);
  CHECK (array && array->rank == 2 && array->shape[0] == 12 && array->shape[1] == 8,
         "numpy-written %s: %s", path, error ? error->message : "wrong shape");
}

#define DICT(descr, order, shape) \
  "{'descr': '" descr "', 'fortran_order': " order ", 'shape': " shape ", }"

static void
test_malformed (void)
{
  GBytes *bad_magic = g_bytes_new_static ("\x93NUMPX\x01\x00\x10\x00{}", 12);
  expect_error ("wrong magic", bad_magic, SSFPN_ERROR_FORMAT, "IN.npy",
                "not a NumPy .npy file", NULL);
  expect_error ("empty", g_bytes_new_static ("", 0), SSFPN_ERROR_FORMAT,
                "IN.npy", "magic", NULL);
  expect_error ("version 4", make_file (4, DICT ("<f4", "False", "(6,)"), FALSE, 24),
                SSFPN_ERROR_FORMAT, "IN.npy", "version 4.0", NULL);
  expect_error ("prefix cut", g_bytes_new_static ("\x93NUMPY\x01\x00\x10", 9),
                SSFPN_ERROR_FORMAT, "truncated", NULL);

  expect_error ("float64", make_file (1, DICT ("<f8", "False", "(1, 3, 4, 4)"),
                                      FALSE, 384),
                SSFPN_ERROR_FORMAT,
                "IN.npy: dtype <f8 (float64); expected <f4 (float32)", NULL);
  expect_error ("uint8", make_file (1, DICT ("|u1", "False", "(1, 3, 4, 4)"),
                                    FALSE, 48),
                SSFPN_ERROR_FORMAT, "dtype |u1 (uint8); expected <f4", NULL);
  expect_error ("big-endian", make_file (1, DICT (">f4", "False", "(6,)"), FALSE, 24),
                SSFPN_ERROR_FORMAT, "dtype >f4 (float32, big-endian)", NULL);
  expect_error ("half", make_file (1, DICT ("<f2", "False", "(6,)"), FALSE, 12),
                SSFPN_ERROR_FORMAT, "(float16)", NULL);
  expect_error ("structured",
                make_file (1, "{'descr': [('a', '<f4'), ('b', '<i4')], "
                           "'fortran_order': False, 'shape': (3,), }", FALSE, 24),
                SSFPN_ERROR_FORMAT, "structured", NULL);
  expect_error ("fortran", make_file (1, DICT ("<f4", "True", "(2, 3)"), FALSE, 24),
                SSFPN_ERROR_FORMAT, "IN.npy", "Fortran order", NULL);

  expect_error ("missing key",
                make_file (1, "{'descr': '<f4', 'shape': (6,), }", FALSE, 24),
                SSFPN_ERROR_FORMAT, "'fortran_order' is missing", NULL);
  expect_error ("extra key",
                make_file (1, "{'descr': '<f4', 'fortran_order': False, "
                           "'shape': (6,), 'x': 1}", FALSE, 24),
                SSFPN_ERROR_FORMAT, "'x'", NULL);
  expect_error ("repeated key",
                make_file (1, "{'descr': '<f4', 'descr': '<f4', "
                           "'fortran_order': False, 'shape': (6,)}", FALSE, 24),
                SSFPN_ERROR_FORMAT, "repeated", NULL);
  expect_error ("negative dim", make_file (1, DICT ("<f4", "False", "(-6,)"), FALSE, 24),
                SSFPN_ERROR_FORMAT, "malformed .npy header", NULL);
  expect_error ("bad tuple", make_file (1, DICT ("<f4", "False", "(2 3)"), FALSE, 24),
                SSFPN_ERROR_FORMAT, "malformed .npy header", NULL);
  expect_error ("bad bool", make_file (1, DICT ("<f4", "false", "(6,)"), FALSE, 24),
                SSFPN_ERROR_FORMAT, "True or False", NULL);
  expect_error ("no newline",
                make_file (1, DICT ("<f4", "False", "(6,)"), TRUE, 24),
                SSFPN_ERROR_FORMAT, "newline", NULL);
  expect_error ("rank 9",
                make_file (1, DICT ("<f4", "False", "(1, 1, 1, 1, 1, 1, 1, 1, 6)"),
                           FALSE, 24),
                SSFPN_ERROR_FORMAT, "more than 8 dimensions", NULL);
  expect_error ("huge shape",
                make_file (1, DICT ("<f4", "False", "(4294967296, 4294967296, 16)"),
                           FALSE, 24),
                SSFPN_ERROR_FORMAT, "too large", NULL);

  expect_error ("truncated data",
                make_file (1, DICT ("<f4", "False", "(1, 3, 4, 4)"), FALSE, 100),
                SSFPN_ERROR_FORMAT, "IN.npy: truncated", "(1, 3, 4, 4)", "192", "100",
                NULL);
  expect_error ("extra data", make_file (1, DICT ("<f4", "False", "(2, 3)"), FALSE, 28),
                SSFPN_ERROR_FORMAT, "disagree", NULL);

  /* The header claims more bytes than the file has. */
  GBytes *whole = make_file (1, DICT ("<f4", "False", "(6,)"), FALSE, 0);
  GBytes *cut = g_bytes_new_from_bytes (whole, 0, 40);
  g_bytes_unref (whole);
  expect_error ("header cut", cut, SSFPN_ERROR_FORMAT,
                "truncated: the file ends inside the .npy header", NULL);
}

static void
test_read_errors (void)
{
  g_autoptr (GError) error = NULL;
  NpyArray *array = npy_read ("/nonexistent/IN.npy", &error);
  CHECK (array == NULL && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_IO)
         && strstr (error->message, "/nonexistent/IN.npy"),
         "missing file: %s", error ? error->message : "accepted");

  /* A truncated file on disk gives the same message as in memory. */
  g_autofree char *dir = g_dir_make_tmp ("test-npy-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "short.npy", NULL);
  g_autoptr (GBytes) file = make_file (1, DICT ("<f4", "False", "(1, 3, 8, 8)"),
                                       FALSE, 700);
  g_file_set_contents (path, g_bytes_get_data (file, NULL),
                       g_bytes_get_size (file), NULL);
  g_clear_error (&error);
  array = npy_read (path, &error);
  CHECK (array == NULL && error && strstr (error->message, "truncated")
         && strstr (error->message, path), "truncated file: %s",
         error ? error->message : "accepted");
  g_unlink (path);

  g_clear_error (&error);
  array = npy_read (dir, &error);
  CHECK (array == NULL && error != NULL, "a directory was read");
  g_rmdir (dir);
}

int
main (void)
{
  test_round_trip_file ();
  test_round_trip_memory ();
  test_accepted_headers ();
  test_malformed ();
  test_read_errors ();
  printf ("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
