/* Flip test-time augmentation. A left-right mirror of the input maps the
 * anchor grid's cell (y, x) to (y, nx - 1 - x) at every level, since the
 * input size is a multiple of each stride, and a box centre cx to W - cx;
 * the anchors keep their shapes, so each anchor's four views can be
 * averaged row by row (objectness, class scores and box together) before
 * NMS, which then sees one set of candidates as without augmentation. */
#include "augment.h"

#include <string.h>

/* The views of SSFPN_AUGMENT_FLIPS: the image, mirrored left-right,
 * top-bottom, both. SSFPN_AUGMENT_NONE is the first view alone. */
static const struct {
  gboolean x, y;
} flip_views[] = { { FALSE, FALSE }, { TRUE, FALSE }, { FALSE, TRUE },
                   { TRUE, TRUE } };

int
ssfpn_augment_view_count (SsfpnAugment augment)
{
  switch (augment) {
  case SSFPN_AUGMENT_NONE:
    return 1;
  case SSFPN_AUGMENT_FLIPS:
    return G_N_ELEMENTS (flip_views);
  }
  return 0;
}

static void
flip_plane (const float *src, int height, int width, gboolean fx,
            gboolean fy, float *dst)
{
  for (int y = 0; y < height; y++) {
    const float *in = src + (gsize) (fy ? height - 1 - y : y) * width;
    float *out = dst + (gsize) y * width;
    if (!fx) {
      memcpy (out, in, (gsize) width * sizeof (float));
      continue;
    }
    for (int x = 0; x < width; x++)
      out[x] = in[width - 1 - x];
  }
}

void
ssfpn_augment_expand (SsfpnAugment augment, const float *input, int batch,
                      int height, int width, float *views)
{
  int n_views = ssfpn_augment_view_count (augment);
  gsize plane = (gsize) height * width;

  for (int b = 0; b < batch; b++)
    for (int v = 0; v < n_views; v++)
      for (int c = 0; c < 3; c++)
        flip_plane (input + ((gsize) b * 3 + c) * plane, height, width,
                    flip_views[v].x, flip_views[v].y,
                    views + (((gsize) b * n_views + v) * 3 + c) * plane);
}

void
ssfpn_augment_merge (SsfpnAugment augment, const SsfpnModel *model,
                     const float *views, int batch, int height, int width,
                     float *output)
{
  int n_views = ssfpn_augment_view_count (augment);
  int cols = ssfpn_model_output_columns (model);
  int rows = ssfpn_model_output_rows (model, height, width);
  int anchors = ssfpn_model_anchors_per_level (model);
  gsize image = (gsize) rows * cols;
  float scale = 1.0f / (float) n_views;

  for (int b = 0; b < batch; b++) {
    float *out = output + b * image;
    gsize level_start = 0;

    memset (out, 0, image * sizeof (float));
    for (int l = 0; l < ssfpn_model_num_levels (model); l++) {
      int stride = ssfpn_model_stride (model, l);
      int ny = height / stride, nx = width / stride;

      for (int v = 0; v < n_views; v++) {
        gboolean fx = flip_views[v].x, fy = flip_views[v].y;
        const float *view = views + ((gsize) b * n_views + v) * image;

        for (int a = 0; a < anchors; a++)
          for (int y = 0; y < ny; y++)
            for (int x = 0; x < nx; x++) {
              gsize cell = level_start + ((gsize) a * ny + y) * nx + x;
              gsize source = level_start
                  + ((gsize) a * ny + (fy ? ny - 1 - y : y)) * nx
                  + (fx ? nx - 1 - x : x);
              const float *in = view + source * cols;
              float *o = out + cell * cols;

              o[0] += fx ? (float) width - in[0] : in[0];
              o[1] += fy ? (float) height - in[1] : in[1];
              for (int k = 2; k < cols; k++)
                o[k] += in[k];
            }
      }
      level_start += (gsize) anchors * ny * nx;
    }
    for (gsize i = 0; i < image; i++)
      out[i] *= scale;
  }
}

const char *
ssfpn_augment_name (SsfpnAugment augment)
{
  switch (augment) {
  case SSFPN_AUGMENT_NONE:
    return "none";
  case SSFPN_AUGMENT_FLIPS:
    return "flips";
  }
  return NULL;
}

gboolean
ssfpn_augment_from_name (const char *name, SsfpnAugment *augment)
{
  static const SsfpnAugment all[] = { SSFPN_AUGMENT_NONE,
                                      SSFPN_AUGMENT_FLIPS };

  for (gsize i = 0; name != NULL && i < G_N_ELEMENTS (all); i++)
    if (strcmp (name, ssfpn_augment_name (all[i])) == 0) {
      *augment = all[i];
      return TRUE;
    }
  return FALSE;
}
