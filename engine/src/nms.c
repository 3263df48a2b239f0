/* YOLOv5 v6.0 non_max_suppression: as detect.py calls it (each box with its
 * best class) or, with multi_label, as val.py does (each box once for every
 * class scoring above the threshold).
 *
 * The arithmetic follows the PyTorch reference step by step, in float32, so
 * that results agree bit for bit: score = obj * cls; xywh -> xyxy as
 * cx -/+ w / 2; per-class separation by adding class * 4096 to the boxes;
 * areas and IoU as torchvision's CPU nms kernel computes them. Contraction
 * into fused multiply-adds would change the last bit, so it is off here.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize ("fp-contract=off")
#endif

#include "ssfpn/ssfpn.h"

#include <math.h>
#include <stdlib.h>

/* YOLOv5's max_wh: class offset that keeps boxes of different classes from
 * overlapping in batched NMS. */
#define CLASS_OFFSET 4096.0f
/* YOLOv5's max_nms: candidates beyond this many are dropped by score. */
#define MAX_NMS_CANDIDATES 30000

typedef struct {
  float x1, y1, x2, y2; /* in input pixels, as reported */
  float score;
  int class_id;
  int order;            /* position among the candidates as YOLOv5 lists
                         * them (row, then class): ties keep this order */
} Candidate;

void
ssfpn_nms_options_init (SsfpnNmsOptions *options)
{
  options->conf_threshold = 0.25f;
  options->iou_threshold = 0.45f;
  options->max_detections = 300;
  options->agnostic = FALSE;
  options->classes = NULL;
  options->n_classes = 0;
  options->multi_label = FALSE;
}

/* std::max and std::min as torchvision's kernel uses them: the first
 * argument unless the second is strictly beyond it (matters for NaN). */
static inline float
max_like_std (float a, float b)
{
  return a < b ? b : a;
}

static inline float
min_like_std (float a, float b)
{
  return b < a ? b : a;
}

/* Highest score first; equal scores keep their listing order. */
static int
compare_candidates (const void *a, const void *b)
{
  const Candidate *ca = a, *cb = b;

  if (ca->score > cb->score)
    return -1;
  if (ca->score < cb->score)
    return 1;
  return (ca->order > cb->order) - (ca->order < cb->order);
}

static gboolean
class_is_wanted (const SsfpnNmsOptions *options, int class_id)
{
  if (options->classes == NULL)
    return TRUE;
  for (int i = 0; i < options->n_classes; i++)
    if (options->classes[i] == class_id)
      return TRUE;
  return FALSE;
}

static void
add_candidate (Candidate *cand, const float *row, float score, int class_id,
               int order)
{
  const float half_w = row[2] / 2.0f, half_h = row[3] / 2.0f;

  cand->x1 = row[0] - half_w;
  cand->y1 = row[1] - half_h;
  cand->x2 = row[0] + half_w;
  cand->y2 = row[1] + half_h;
  cand->score = score;
  cand->class_id = class_id;
  cand->order = order;
}

/* Fills @candidates (room for rows x nc with multi_label, else rows) with
 * the (row, class) pairs that pass the confidence thresholds and the class
 * filter, in row order and, within a row, class order; returns their
 * count. */
static int
collect_candidates (const float *output, int rows, int nc,
                    const SsfpnNmsOptions *options, Candidate *candidates)
{
  const int columns = 5 + nc;
  const float conf = options->conf_threshold;
  int count = 0;

  for (int r = 0; r < rows; r++)
    {
      const float *row = output + (gsize) r * columns;
      const float objectness = row[4];

      if (!(objectness > conf))
        continue;

      if (options->multi_label)
        {
          for (int c = 0; c < nc; c++)
            {
              float score = row[5 + c] * objectness;
              if (score > conf && class_is_wanted (options, c))
                {
                  add_candidate (&candidates[count], row, score, c, count);
                  count++;
                }
            }
          continue;
        }

      /* torch.max: the first maximum wins; a NaN anywhere wins outright. */
      float best = row[5] * objectness;
      int best_class = 0;
      for (int c = 1; c < nc && !isnan (best); c++)
        {
          float score = row[5 + c] * objectness;
          if (score > best || isnan (score))
            {
              best = score;
              best_class = c;
            }
        }
      if (!(best > conf) || !class_is_wanted (options, best_class))
        continue;
      add_candidate (&candidates[count], row, best, best_class, count);
      count++;
    }
  return count;
}

int
ssfpn_nms (const float *output, int rows, int nc,
           const SsfpnNmsOptions *options, SsfpnDetection *out, int capacity)
{
  SsfpnNmsOptions defaults;

  g_return_val_if_fail (rows >= 0 && nc >= 1, 0);
  g_return_val_if_fail (rows == 0 || output != NULL, 0);
  g_return_val_if_fail (capacity <= 0 || out != NULL, 0);

  if (options == NULL)
    {
      ssfpn_nms_options_init (&defaults);
      options = &defaults;
    }
  /* A non-positive max_detections leaves only the capacity as the limit. */
  int limit = capacity;
  if (options->max_detections > 0 && options->max_detections < limit)
    limit = options->max_detections;
  if (rows == 0 || limit <= 0)
    return 0;

  /* g_new aborts with a message on overflow; rows x nc is small for any
   * network that fits in memory. */
  Candidate *candidates = g_new (Candidate, options->multi_label
                                 ? (gsize) rows * nc : (gsize) rows);
  int n = collect_candidates (output, rows, nc, options, candidates);
  int kept = 0;

  if (n == 0)
    goto out;

  /* The candidates in score order; YOLOv5 cuts them at max_nms first and
   * torchvision sorts again, which gives the same order. */
  qsort (candidates, n, sizeof *candidates, compare_candidates);
  if (n > MAX_NMS_CANDIDATES)
    n = MAX_NMS_CANDIDATES;

  /* The boxes NMS sees: shifted by class * 4096 unless agnostic, with the
   * areas computed from the shifted coordinates, as torchvision does. */
  float *boxes = g_new (float, (gsize) n * 5);
  guint8 *suppressed = g_new0 (guint8, n);
  for (int i = 0; i < n; i++)
    {
      const float shift = options->agnostic
                          ? 0.0f : (float) candidates[i].class_id * CLASS_OFFSET;
      float *b = boxes + (gsize) i * 5;
      b[0] = candidates[i].x1 + shift;
      b[1] = candidates[i].y1 + shift;
      b[2] = candidates[i].x2 + shift;
      b[3] = candidates[i].y2 + shift;
      b[4] = (b[2] - b[0]) * (b[3] - b[1]);
    }

  const float iou_threshold = options->iou_threshold;
  for (int i = 0; i < n && kept < limit; i++)
    {
      if (suppressed[i])
        continue;

      const Candidate *cand = &candidates[i];
      out[kept].x1 = cand->x1;
      out[kept].y1 = cand->y1;
      out[kept].x2 = cand->x2;
      out[kept].y2 = cand->y2;
      out[kept].confidence = cand->score;
      out[kept].class_id = cand->class_id;
      kept++;

      /* Later keeps cannot change the ones already made, so the scan can
       * stop as soon as the limit is reached. */
      if (kept == limit)
        break;

      const float *bi = boxes + (gsize) i * 5;
      for (int j = i + 1; j < n; j++)
        {
          if (suppressed[j])
            continue;
          const float *bj = boxes + (gsize) j * 5;
          const float xx1 = max_like_std (bi[0], bj[0]);
          const float yy1 = max_like_std (bi[1], bj[1]);
          const float xx2 = min_like_std (bi[2], bj[2]);
          const float yy2 = min_like_std (bi[3], bj[3]);
          const float w = max_like_std (0.0f, xx2 - xx1);
          const float h = max_like_std (0.0f, yy2 - yy1);
          const float inter = w * h;
          const float iou = inter / (bi[4] + bj[4] - inter);
          if (iou > iou_threshold)
            suppressed[j] = 1;
        }
    }

  g_free (suppressed);
  g_free (boxes);
out:
  g_free (candidates);
  return kept;
}
