/* NumPy .npy files of float32 arrays, for the `ssfpn` command and tests.
 *
 * Reading accepts format versions 1.0, 2.0 and 3.0, dtype '<f4' in C order,
 * rank 0 to NPY_MAX_RANK; anything else is an SSFPN_ERROR_FORMAT error that
 * names the file and the problem. Writing produces version 1.0.
 */
#ifndef SSFPN_NPY_H
#define SSFPN_NPY_H

#include <glib.h>

G_BEGIN_DECLS

#define NPY_MAX_RANK 8

typedef struct {
  int rank;
  gint64 shape[NPY_MAX_RANK];
  gsize count;   /* elements: the product of the shape */
  float *data;   /* count floats, C order */
} NpyArray;

/* Reads @path; SSFPN_ERROR_IO when it cannot be read. */
NpyArray *npy_read (const char *path, GError **error);

/* Parses a whole file held in memory; @name stands for the file in
 * messages. */
NpyArray *npy_parse (const guint8 *bytes, gsize length, const char *name,
                     GError **error);

void npy_array_free (NpyArray *array);

/* Writes @data (the product of @shape floats) to @path as version 1.0. */
gboolean npy_write (const char *path, int rank, const gint64 *shape,
                    const float *data, GError **error);

/* The same file in memory, for tests and for callers that write
 * elsewhere. */
GBytes *npy_encode (int rank, const gint64 *shape, const float *data,
                    GError **error);

/* "(1, 3, 640, 640)", as NumPy prints a shape; free with g_free. */
char *npy_shape_to_string (int rank, const gint64 *shape);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NpyArray, npy_array_free)

G_END_DECLS

#endif /* SSFPN_NPY_H */
