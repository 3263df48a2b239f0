/* COCO-style box evaluation, step by step as pycocotools' COCOeval
 * (evaluate, evaluateImg, accumulate, summarize) for bounding boxes without
 * crowd annotations. The arithmetic is the same double-precision arithmetic
 * in the same order, so the figures agree to rounding; fused multiply-adds
 * would change the last bits of IoUs that sit on a threshold, so they are
 * off here.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize ("fp-contract=off")
#endif

#include "coco_eval.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ssfpn/ssfpn.h"

#define N_IOU COCO_N_IOU_THRESHOLDS
#define N_RECALL COCO_N_RECALL_THRESHOLDS

/* pycocotools' areaRng, bounds included at both ends. */
static const double area_bounds[COCO_N_AREAS][2] = {
  { 0.0, 1e10 },
  { 0.0, 32.0 * 32.0 },
  { 32.0 * 32.0, 96.0 * 96.0 },
  { 96.0 * 96.0, 1e10 },
};

/* numpy.linspace(start, stop, n): i * ((stop - start) / (n - 1)) + start,
 * and exactly @stop last. */
static double
linspace (double start, double stop, int n, int index)
{
  if (index == n - 1)
    return stop;
  double step = (stop - start) / (double) (n - 1);
  return (double) index * step + start;
}

double
coco_iou_threshold (int index)
{
  return linspace (0.5, 0.95, N_IOU, index);
}

static double
recall_threshold (int index)
{
  return linspace (0.0, 1.0, N_RECALL, index);
}

/* One class and area range over all images: the detections evaluated, in
 * image order and within an image by score, and what they matched. */
typedef struct {
  GArray *scores;   /* double */
  GArray *matched;  /* guint8 [N_IOU] per detection */
  GArray *ignored;  /* guint8 [N_IOU] per detection */
  int n_positives;  /* ground truths not ignored */
  gboolean any;     /* some image had a ground truth or a detection */
} Accumulator;

static void
accumulator_init (Accumulator *acc)
{
  acc->scores = g_array_new (FALSE, FALSE, sizeof (double));
  acc->matched = g_array_new (FALSE, FALSE, N_IOU);
  acc->ignored = g_array_new (FALSE, FALSE, N_IOU);
  acc->n_positives = 0;
  acc->any = FALSE;
}

static void
accumulator_clear (Accumulator *acc)
{
  g_array_free (acc->scores, TRUE);
  g_array_free (acc->matched, TRUE);
  g_array_free (acc->ignored, TRUE);
}

static void
accumulator_reset (Accumulator *acc)
{
  g_array_set_size (acc->scores, 0);
  g_array_set_size (acc->matched, 0);
  g_array_set_size (acc->ignored, 0);
  acc->n_positives = 0;
  acc->any = FALSE;
}

/* A detection index with its sort keys: numpy's stable argsort of -score
 * is a sort by score, then by position. */
typedef struct {
  double score;
  int position;
} Ranked;

static int
compare_ranked (const void *a, const void *b)
{
  const Ranked *ra = a, *rb = b;

  if (ra->score > rb->score)
    return -1;
  if (ra->score < rb->score)
    return 1;
  return (ra->position > rb->position) - (ra->position < rb->position);
}

/* maskApi.c's bbIou for one pair, no crowd. */
static double
box_iou (double dx, double dy, double dw, double dh,
         double gx, double gy, double gw, double gh)
{
  double ga = gw * gh, da = dw * dh;
  double w = fmin (dw + dx, gw + gx) - fmax (dx, gx);
  if (w <= 0)
    return 0.0;
  double h = fmin (dh + dy, gh + gy) - fmax (dy, gy);
  if (h <= 0)
    return 0.0;
  double i = w * h;
  return i / (da + ga - i);
}

/* What one image contributes for one class: its detections (best first,
 * at most COCO_MAX_DETECTIONS), its ground truths and their IoUs. */
typedef struct {
  const CocoDetection **dets;
  int n_dets;
  const CocoGroundTruth **gts;
  int n_gts;
  double *ious;     /* [det][gt] */
  /* scratch for the matching */
  guint8 *gt_ignored;
  int *gt_order;
  guint8 *gt_matched;
  guint8 *det_matched;  /* [N_IOU][det] */
  guint8 *det_ignored;  /* [N_IOU][det] */
} ImageClass;

static void
image_class_collect (ImageClass *ic, const CocoImage *image, int class_id,
                     Ranked *ranked)
{
  int n = 0;
  for (int i = 0; i < image->n_detections; i++)
    if (image->detections[i].class_id == class_id)
      {
        ranked[n].score = image->detections[i].score;
        ranked[n].position = i;
        n++;
      }
  qsort (ranked, n, sizeof *ranked, compare_ranked);
  ic->n_dets = MIN (n, COCO_MAX_DETECTIONS);
  for (int d = 0; d < ic->n_dets; d++)
    ic->dets[d] = &image->detections[ranked[d].position];

  ic->n_gts = 0;
  for (int i = 0; i < image->n_ground_truths; i++)
    if (image->ground_truths[i].class_id == class_id)
      ic->gts[ic->n_gts++] = &image->ground_truths[i];

  for (int d = 0; d < ic->n_dets; d++)
    for (int g = 0; g < ic->n_gts; g++)
      {
        const CocoDetection *det = ic->dets[d];
        const CocoGroundTruth *gt = ic->gts[g];
        ic->ious[d * ic->n_gts + g] = box_iou (det->x, det->y, det->width,
                                               det->height, gt->x, gt->y,
                                               gt->width, gt->height);
      }
}

/* evaluateImg for one area range: greedy matching at every threshold, then
 * the results appended to @acc. */
static void
image_class_match (ImageClass *ic, CocoAreaRange area, Accumulator *acc)
{
  const double lo = area_bounds[area][0], hi = area_bounds[area][1];
  const int G = ic->n_gts, D = ic->n_dets;

  if (G == 0 && D == 0)
    return;
  acc->any = TRUE;

  /* Ground truths outside the range are ignored, and tried last. */
  int n_order = 0;
  for (int g = 0; g < G; g++)
    {
      double a = ic->gts[g]->width * ic->gts[g]->height;
      ic->gt_ignored[g] = a < lo || a > hi;
      if (!ic->gt_ignored[g])
        {
          ic->gt_order[n_order++] = g;
          acc->n_positives++;
        }
    }
  for (int g = 0; g < G; g++)
    if (ic->gt_ignored[g])
      ic->gt_order[n_order++] = g;

  memset (ic->det_matched, 0, (gsize) N_IOU * D);
  memset (ic->det_ignored, 0, (gsize) N_IOU * D);
  for (int t = 0; t < N_IOU; t++)
    {
      guint8 *det_matched = ic->det_matched + t * D;
      guint8 *det_ignored = ic->det_ignored + t * D;
      memset (ic->gt_matched, 0, G);
      for (int d = 0; d < D; d++)
        {
          double best = fmin (coco_iou_threshold (t), 1 - 1e-10);
          int m = -1;
          for (int k = 0; k < G; k++)
            {
              int g = ic->gt_order[k];
              if (ic->gt_matched[g])
                continue;
              /* A match to a real ground truth beats any ignored one. */
              if (m > -1 && !ic->gt_ignored[m] && ic->gt_ignored[g])
                break;
              double iou = ic->ious[d * G + g];
              if (iou < best)
                continue;
              best = iou;
              m = g;
            }
          if (m == -1)
            continue;
          det_ignored[d] = ic->gt_ignored[m];
          det_matched[d] = 1;
          ic->gt_matched[m] = 1;
        }
      /* Unmatched detections outside the range do not count against. */
      for (int d = 0; d < D; d++)
        {
          double a = ic->dets[d]->width * ic->dets[d]->height;
          if (!det_matched[d] && (a < lo || a > hi))
            det_ignored[d] = 1;
        }
    }

  for (int d = 0; d < D; d++)
    {
      guint8 matched[N_IOU], ignored[N_IOU];
      for (int t = 0; t < N_IOU; t++)
        {
          matched[t] = ic->det_matched[t * D + d];
          ignored[t] = ic->det_ignored[t * D + d];
        }
      g_array_append_val (acc->scores, ic->dets[d]->score);
      g_array_append_vals (acc->matched, matched, 1);
      g_array_append_vals (acc->ignored, ignored, 1);
    }
}

/* accumulate for one class and area range: the precision at each recall
 * threshold averaged, per IoU threshold, into @mean_precision[N_IOU]; -1 when
 * there is no ground truth to recall. */
static void
accumulate (const Accumulator *acc, double *mean_precision)
{
  if (!acc->any || acc->n_positives == 0)
    {
      for (int t = 0; t < N_IOU; t++)
        mean_precision[t] = -1.0;
      return;
    }

  const int n = (int) acc->scores->len;
  Ranked *ranked = g_new (Ranked, MAX (n, 1));
  double *recall = g_new (double, MAX (n, 1));
  double *precision = g_new (double, MAX (n, 1));
  const guint8 *matched = (const guint8 *) acc->matched->data;
  const guint8 *ignored = (const guint8 *) acc->ignored->data;

  for (int i = 0; i < n; i++)
    {
      ranked[i].score = g_array_index (acc->scores, double, i);
      ranked[i].position = i;
    }
  qsort (ranked, n, sizeof *ranked, compare_ranked);

  for (int t = 0; t < N_IOU; t++)
    {
      double tp = 0.0, fp = 0.0;
      /* Ignored detections stay in the list, adding to neither count. */
      for (int i = 0; i < n; i++)
        {
          int p = ranked[i].position;
          if (!ignored[p * N_IOU + t])
            {
              if (matched[p * N_IOU + t])
                tp += 1.0;
              else
                fp += 1.0;
            }
          recall[i] = tp / acc->n_positives;
          precision[i] = tp / (fp + tp + DBL_EPSILON);
        }
      /* The precision envelope: monotone from the right. */
      for (int i = n - 1; i > 0; i--)
        if (precision[i] > precision[i - 1])
          precision[i - 1] = precision[i];

      /* For each recall threshold the first point reaching it
       * (searchsorted, side left); none reaching it counts 0. */
      double sum = 0.0;
      int i = 0;
      for (int r = 0; r < N_RECALL; r++)
        {
          double threshold = recall_threshold (r);
          while (i < n && recall[i] < threshold)
            i++;
          if (i == n)
            break;
          sum += precision[i];
        }
      mean_precision[t] = sum / N_RECALL;
    }

  g_free (ranked);
  g_free (recall);
  g_free (precision);
}

static gboolean
check_value (double value, gboolean may_be_negative, int image, int entry,
             const char *what, const char *field, GError **error)
{
  if (isfinite (value) && (may_be_negative || value >= 0.0))
    return TRUE;
  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
               "COCO evaluation: image %d, %s %d: %s %g is %s", image, what,
               entry, field, value,
               isfinite (value) ? "negative" : "not a finite number");
  return FALSE;
}

static gboolean
check_class (int class_id, int n_classes, int image, int entry,
             const char *what, GError **error)
{
  if (class_id >= 0 && class_id < n_classes)
    return TRUE;
  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
               "COCO evaluation: image %d, %s %d: class %d is not in "
               "0..%d", image, what, entry, class_id, n_classes - 1);
  return FALSE;
}

static gboolean
check_images (const CocoImage *images, int n_images, int n_classes,
              GError **error)
{
  for (int i = 0; i < n_images; i++)
    {
      const CocoImage *im = &images[i];
      if (im->n_ground_truths < 0 || im->n_detections < 0
          || (im->n_ground_truths > 0 && im->ground_truths == NULL)
          || (im->n_detections > 0 && im->detections == NULL))
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                       "COCO evaluation: image %d has %d ground truths and "
                       "%d detections, or a missing array", i,
                       im->n_ground_truths, im->n_detections);
          return FALSE;
        }
      for (int j = 0; j < im->n_ground_truths; j++)
        {
          const CocoGroundTruth *g = &im->ground_truths[j];
          if (!check_class (g->class_id, n_classes, i, j, "ground truth", error)
              || !check_value (g->x, TRUE, i, j, "ground truth", "x", error)
              || !check_value (g->y, TRUE, i, j, "ground truth", "y", error)
              || !check_value (g->width, FALSE, i, j, "ground truth", "width", error)
              || !check_value (g->height, FALSE, i, j, "ground truth", "height", error))
            return FALSE;
        }
      for (int j = 0; j < im->n_detections; j++)
        {
          const CocoDetection *d = &im->detections[j];
          if (!check_class (d->class_id, n_classes, i, j, "detection", error)
              || !check_value (d->x, TRUE, i, j, "detection", "x", error)
              || !check_value (d->y, TRUE, i, j, "detection", "y", error)
              || !check_value (d->width, FALSE, i, j, "detection", "width", error)
              || !check_value (d->height, FALSE, i, j, "detection", "height", error)
              || !check_value (d->score, TRUE, i, j, "detection", "score", error))
            return FALSE;
        }
    }
  return TRUE;
}

/* Mean of the entries that are not -1 (summarize's s[s > -1]), over
 * classes and the thresholds [@first, @last]; -1 when there are none. */
static double
summarize (const CocoEvalResult *result, CocoAreaRange area, int first,
           int last)
{
  double sum = 0.0;
  int count = 0;
  for (int k = 0; k < result->n_classes; k++)
    for (int t = first; t <= last; t++)
      {
        double p = coco_eval_mean_precision (result, k, area, t);
        if (p > -1.0)
          {
            sum += p;
            count++;
          }
      }
  return count > 0 ? sum / count : -1.0;
}

static double
summarize_class (const CocoEvalResult *result, int class_id, int first,
                 int last)
{
  CocoEvalResult one = *result;
  one.n_classes = 1;
  one.mean_precision = result->mean_precision
                       + (gsize) class_id * COCO_N_AREAS * N_IOU;
  return summarize (&one, COCO_AREA_ALL, first, last);
}

double
coco_eval_mean_precision (const CocoEvalResult *result, int class_id,
                          CocoAreaRange area, int threshold)
{
  return result->mean_precision[((gsize) class_id * COCO_N_AREAS + area) * N_IOU
                                + threshold];
}

gboolean
coco_evaluate (const CocoImage *images, int n_images, int n_classes,
               CocoEvalResult *result, GError **error)
{
  memset (result, 0, sizeof *result);
  if (n_classes < 1 || n_images < 0 || (n_images > 0 && images == NULL))
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "COCO evaluation needs at least one class and a list of "
                   "images (got %d classes, %d images)", n_classes, n_images);
      return FALSE;
    }
  if (!check_images (images, n_images, n_classes, error))
    return FALSE;

  int max_dets = 0, max_gts = 0;
  for (int i = 0; i < n_images; i++)
    {
      max_dets = MAX (max_dets, images[i].n_detections);
      max_gts = MAX (max_gts, images[i].n_ground_truths);
    }
  const int kept = MIN (max_dets, COCO_MAX_DETECTIONS);

  ImageClass ic = {
    .dets = g_new (const CocoDetection *, MAX (kept, 1)),
    .gts = g_new (const CocoGroundTruth *, MAX (max_gts, 1)),
    .ious = g_new (double, MAX ((gsize) kept * max_gts, 1)),
    .gt_ignored = g_new (guint8, MAX (max_gts, 1)),
    .gt_order = g_new (int, MAX (max_gts, 1)),
    .gt_matched = g_new (guint8, MAX (max_gts, 1)),
    .det_matched = g_new (guint8, MAX ((gsize) N_IOU * kept, 1)),
    .det_ignored = g_new (guint8, MAX ((gsize) N_IOU * kept, 1)),
  };
  Ranked *ranked = g_new (Ranked, MAX (max_dets, 1));
  Accumulator accs[COCO_N_AREAS];
  for (int a = 0; a < COCO_N_AREAS; a++)
    accumulator_init (&accs[a]);

  result->n_classes = n_classes;
  result->class_ap = g_new (double, n_classes);
  result->class_ap50 = g_new (double, n_classes);
  result->class_instances = g_new0 (int, n_classes);
  result->class_detections = g_new0 (int, n_classes);
  result->mean_precision = g_new (double, (gsize) n_classes * COCO_N_AREAS * N_IOU);

  for (int k = 0; k < n_classes; k++)
    {
      for (int a = 0; a < COCO_N_AREAS; a++)
        accumulator_reset (&accs[a]);
      for (int i = 0; i < n_images; i++)
        {
          image_class_collect (&ic, &images[i], k, ranked);
          result->class_instances[k] += ic.n_gts;
          result->class_detections[k] += ic.n_dets;
          for (int a = 0; a < COCO_N_AREAS; a++)
            image_class_match (&ic, a, &accs[a]);
        }
      for (int a = 0; a < COCO_N_AREAS; a++)
        accumulate (&accs[a], result->mean_precision
                              + ((gsize) k * COCO_N_AREAS + a) * N_IOU);
    }

  result->ap = summarize (result, COCO_AREA_ALL, 0, N_IOU - 1);
  result->ap50 = summarize (result, COCO_AREA_ALL, 0, 0);
  result->ap75 = summarize (result, COCO_AREA_ALL, 5, 5);
  result->ap_small = summarize (result, COCO_AREA_SMALL, 0, N_IOU - 1);
  result->ap_medium = summarize (result, COCO_AREA_MEDIUM, 0, N_IOU - 1);
  result->ap_large = summarize (result, COCO_AREA_LARGE, 0, N_IOU - 1);
  for (int k = 0; k < n_classes; k++)
    {
      result->class_ap[k] = summarize_class (result, k, 0, N_IOU - 1);
      result->class_ap50[k] = summarize_class (result, k, 0, 0);
    }

  for (int a = 0; a < COCO_N_AREAS; a++)
    accumulator_clear (&accs[a]);
  g_free (ranked);
  g_free (ic.dets);
  g_free (ic.gts);
  g_free (ic.ious);
  g_free (ic.gt_ignored);
  g_free (ic.gt_order);
  g_free (ic.gt_matched);
  g_free (ic.det_matched);
  g_free (ic.det_ignored);
  return TRUE;
}

void
coco_eval_result_clear (CocoEvalResult *result)
{
  g_clear_pointer (&result->class_ap, g_free);
  g_clear_pointer (&result->class_ap50, g_free);
  g_clear_pointer (&result->class_instances, g_free);
  g_clear_pointer (&result->class_detections, g_free);
  g_clear_pointer (&result->mean_precision, g_free);
  result->n_classes = 0;
}
