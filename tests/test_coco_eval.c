/* The COCO evaluation core (coco_eval.c) on hand-made cases whose figures
 * follow from the definition in docs/eval.md by hand. The comparison with
 * pycocotools on many random cases is scripts/check-coco-eval.sh.
 */
#include "coco_eval.h"
#include "ssfpn/ssfpn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "check.h"


#define CHECK_NEAR(value, expected, what)                                    \
  CHECK (fabs ((value) - (expected)) <= 1e-12, "%s: %.15g, expected %.15g",  \
         what, (double) (value), (double) (expected))

#define GT(x, y, w, h, c) { (x), (y), (w), (h), (c) }
#define DET(x, y, w, h, s, c) { (x), (y), (w), (h), (s), (c) }

/* Runs the core on one image; returns FALSE (and counts a failure) when it
 * refuses. */
static gboolean
evaluate_one (const CocoGroundTruth *gts, int n_gts, const CocoDetection *dets,
              int n_dets, int n_classes, CocoEvalResult *result)
{
  CocoImage image = { gts, n_gts, dets, n_dets };
  g_autoptr (GError) error = NULL;
  gboolean ok = coco_evaluate (&image, 1, n_classes, result, &error);
  CHECK (ok, "coco_evaluate failed: %s", error ? error->message : "?");
  return ok;
}

static void
test_thresholds (void)
{
  CHECK (coco_iou_threshold (0) == 0.5, "first IoU threshold %.17g",
         coco_iou_threshold (0));
  CHECK (coco_iou_threshold (5) == 0.75, "sixth IoU threshold %.17g",
         coco_iou_threshold (5));
  CHECK (coco_iou_threshold (9) == 0.95, "last IoU threshold %.17g",
         coco_iou_threshold (9));
}

/* Every ground truth found exactly, over classes, images and sizes. */
static void
test_perfect (void)
{
  const CocoGroundTruth gts0[] = {
    GT (10, 10, 20, 20, 0), GT (100, 40, 50, 50, 1), GT (200, 200, 120, 110, 2),
  };
  const CocoGroundTruth gts1[] = { GT (0, 0, 64, 16, 1), GT (5, 5, 31, 30, 0) };
  const CocoDetection dets0[] = {
    DET (100, 40, 50, 50, 0.5, 1), DET (10, 10, 20, 20, 0.9, 0),
    DET (200, 200, 120, 110, 0.3, 2),
  };
  const CocoDetection dets1[] = {
    DET (5, 5, 31, 30, 0.2, 0), DET (0, 0, 64, 16, 0.95, 1),
  };
  const CocoImage images[] = {
    { gts0, 3, dets0, 3 }, { gts1, 2, dets1, 2 },
  };
  CocoEvalResult r;
  g_autoptr (GError) error = NULL;

  if (!coco_evaluate (images, 2, 4, &r, &error))
    {
      CHECK (FALSE, "coco_evaluate: %s", error->message);
      return;
    }
  CHECK_NEAR (r.ap, 1.0, "perfect AP");
  CHECK_NEAR (r.ap50, 1.0, "perfect AP50");
  CHECK_NEAR (r.ap75, 1.0, "perfect AP75");
  CHECK_NEAR (r.ap_small, 1.0, "perfect AP small");
  CHECK_NEAR (r.ap_medium, 1.0, "perfect AP medium");
  CHECK_NEAR (r.ap_large, 1.0, "perfect AP large");
  CHECK_NEAR (r.class_ap[0], 1.0, "perfect class 0 AP");
  CHECK_NEAR (r.class_ap[2], 1.0, "perfect class 2 AP");
  /* Class 3 has no ground truth: excluded, not zero. */
  CHECK_NEAR (r.class_ap[3], -1.0, "class without ground truth");
  CHECK (r.class_instances[1] == 2 && r.class_detections[1] == 2,
         "class 1: %d instances, %d detections", r.class_instances[1],
         r.class_detections[1]);
  coco_eval_result_clear (&r);
}

/* Two ground truths; the detections in score order are FP, TP, TP: the
 * precision envelope is 2/3 at every recall, so AP = 2/3. As TP, FP, TP:
 * precision 1 up to recall 0.5 (51 thresholds) and 2/3 beyond (50), so
 * AP = (51 + 50 * 2/3) / 101. */
static void
test_false_positive (void)
{
  const CocoGroundTruth gts[] = { GT (0, 0, 40, 40, 0), GT (100, 100, 40, 40, 0) };
  const CocoDetection fp_first[] = {
    DET (0, 0, 40, 40, 0.8, 0), DET (300, 300, 40, 40, 0.9, 0),
    DET (100, 100, 40, 40, 0.7, 0),
  };
  const CocoDetection fp_middle[] = {
    DET (0, 0, 40, 40, 0.9, 0), DET (300, 300, 40, 40, 0.8, 0),
    DET (100, 100, 40, 40, 0.7, 0),
  };
  CocoEvalResult r;

  if (evaluate_one (gts, 2, fp_first, 3, 1, &r))
    {
      CHECK_NEAR (r.ap, 2.0 / 3.0, "FP at the top");
      CHECK_NEAR (r.ap50, 2.0 / 3.0, "FP at the top, AP50");
      coco_eval_result_clear (&r);
    }
  if (evaluate_one (gts, 2, fp_middle, 3, 1, &r))
    {
      CHECK_NEAR (r.ap, (51.0 + 50.0 * 2.0 / 3.0) / 101.0, "FP in the middle");
      coco_eval_result_clear (&r);
    }
}

/* IoU 0.72 (a 72x100 box inside a 100x100 one) passes the thresholds
 * 0.50 to 0.70 only: AP 0.5, AP50 1, AP75 0. */
static void
test_iou_thresholds (void)
{
  const CocoGroundTruth gts[] = { GT (0, 0, 100, 100, 0) };
  const CocoDetection dets[] = { DET (0, 0, 72, 100, 0.6, 0) };
  CocoEvalResult r;

  if (!evaluate_one (gts, 1, dets, 1, 1, &r))
    return;
  CHECK_NEAR (r.ap, 0.5, "IoU 0.72 AP");
  CHECK_NEAR (r.ap50, 1.0, "IoU 0.72 AP50");
  CHECK_NEAR (r.ap75, 0.0, "IoU 0.72 AP75");
  CHECK_NEAR (coco_eval_mean_precision (&r, 0, COCO_AREA_ALL, 4), 1.0,
              "IoU 0.72 at threshold 0.70");
  CHECK_NEAR (coco_eval_mean_precision (&r, 0, COCO_AREA_ALL, 5), 0.0,
              "IoU 0.72 at threshold 0.75");
  coco_eval_result_clear (&r);
}

static void
test_empty (void)
{
  CocoEvalResult r;
  g_autoptr (GError) error = NULL;

  /* No images at all: nothing to measure. */
  CHECK (coco_evaluate (NULL, 0, 3, &r, &error), "no images: %s",
         error ? error->message : "?");
  CHECK_NEAR (r.ap, -1.0, "no images AP");
  CHECK_NEAR (r.ap_small, -1.0, "no images AP small");
  coco_eval_result_clear (&r);

  /* Detections but no ground truth: still nothing to recall. */
  const CocoDetection dets[] = { DET (0, 0, 10, 10, 0.9, 1) };
  if (evaluate_one (NULL, 0, dets, 1, 2, &r))
    {
      CHECK_NEAR (r.ap, -1.0, "detections only AP");
      CHECK_NEAR (r.class_ap[1], -1.0, "detections only class AP");
      coco_eval_result_clear (&r);
    }

  /* Ground truth and no detections: AP 0. */
  const CocoGroundTruth gts[] = { GT (0, 0, 10, 10, 1) };
  if (evaluate_one (gts, 1, NULL, 0, 2, &r))
    {
      CHECK_NEAR (r.ap, 0.0, "ground truth only AP");
      CHECK_NEAR (r.class_ap[1], 0.0, "ground truth only class AP");
      CHECK_NEAR (r.class_ap[0], -1.0, "the other class");
      CHECK_NEAR (r.ap_medium, -1.0, "no medium ground truth");
      coco_eval_result_clear (&r);
    }
}

/* A small and a large ground truth; detections in score order: a small
 * FP, the large one found, the small one found.
 *   all:    FP, TP, TP                     -> 2/3
 *   small:  FP, (matched an ignored GT), TP -> envelope 1/2 -> 1/2
 *   large:  (small FP ignored), TP, (matched an ignored GT) -> 1
 *   medium: no ground truth                 -> -1 */
static void
test_area_ranges (void)
{
  const CocoGroundTruth gts[] = {
    GT (0, 0, 20, 20, 0), GT (200, 200, 100, 100, 0),
  };
  const CocoDetection dets[] = {
    DET (500, 500, 10, 10, 0.9, 0), DET (200, 200, 100, 100, 0.8, 0),
    DET (0, 0, 20, 20, 0.7, 0),
  };
  CocoEvalResult r;

  if (!evaluate_one (gts, 2, dets, 3, 1, &r))
    return;
  CHECK_NEAR (r.ap, 2.0 / 3.0, "area all");
  CHECK_NEAR (r.ap_small, 0.5, "area small");
  CHECK_NEAR (r.ap_large, 1.0, "area large");
  CHECK_NEAR (r.ap_medium, -1.0, "area medium");
  coco_eval_result_clear (&r);

  /* 32 x 32 = 1024 lies in both small and medium (bounds included). */
  const CocoGroundTruth edge[] = { GT (0, 0, 32, 32, 0) };
  const CocoDetection edge_det[] = { DET (0, 0, 32, 32, 0.5, 0) };
  if (evaluate_one (edge, 1, edge_det, 1, 1, &r))
    {
      CHECK_NEAR (r.ap_small, 1.0, "32x32 is small");
      CHECK_NEAR (r.ap_medium, 1.0, "32x32 is medium");
      CHECK_NEAR (r.ap_large, -1.0, "32x32 is not large");
      coco_eval_result_clear (&r);
    }
}

/* Equal scores keep their input order (numpy's stable mergesort): FP then
 * TP gives precision 1/2 at full recall, TP then FP gives 1. Across images
 * the earlier image comes first. */
static void
test_ties (void)
{
  const CocoGroundTruth gts[] = { GT (0, 0, 50, 50, 0) };
  const CocoDetection fp_first[] = {
    DET (200, 200, 50, 50, 0.5, 0), DET (0, 0, 50, 50, 0.5, 0),
  };
  const CocoDetection tp_first[] = {
    DET (0, 0, 50, 50, 0.5, 0), DET (200, 200, 50, 50, 0.5, 0),
  };
  CocoEvalResult r;
  g_autoptr (GError) error = NULL;

  if (evaluate_one (gts, 1, fp_first, 2, 1, &r))
    {
      CHECK_NEAR (r.ap, 0.5, "tie, FP listed first");
      coco_eval_result_clear (&r);
    }
  if (evaluate_one (gts, 1, tp_first, 2, 1, &r))
    {
      CHECK_NEAR (r.ap, 1.0, "tie, TP listed first");
      coco_eval_result_clear (&r);
    }

  const CocoDetection fp[] = { DET (200, 200, 50, 50, 0.5, 0) };
  const CocoDetection tp[] = { DET (0, 0, 50, 50, 0.5, 0) };
  const CocoImage fp_image_first[] = { { NULL, 0, fp, 1 }, { gts, 1, tp, 1 } };
  const CocoImage tp_image_first[] = { { gts, 1, tp, 1 }, { NULL, 0, fp, 1 } };
  CHECK (coco_evaluate (fp_image_first, 2, 1, &r, &error), "two images");
  CHECK_NEAR (r.ap, 0.5, "tie across images, FP image first");
  coco_eval_result_clear (&r);
  CHECK (coco_evaluate (tp_image_first, 2, 1, &r, &error), "two images");
  CHECK_NEAR (r.ap, 1.0, "tie across images, TP image first");
  coco_eval_result_clear (&r);
}

/* Greedy matching in score order: the best detection takes the ground truth
 * it overlaps most, and a later detection cannot take it again. GT A at x 0,
 * GT B at x 50 (100 x 100 each). Detection 1 on A (IoU 1). Detection 2 at
 * x 40: IoU 60/140 with A, 90/110 = 0.818 with B, so it matches B at the
 * thresholds 0.50 to 0.80 (7 of 10); at the other 3 it is a FP and the
 * precision is 1 up to recall 0.5 only: 51/101. */
static void
test_greedy (void)
{
  const CocoGroundTruth gts[] = {
    GT (0, 0, 100, 100, 0), GT (50, 0, 100, 100, 0),
  };
  const CocoDetection dets[] = {
    DET (40, 0, 100, 100, 0.8, 0), DET (0, 0, 100, 100, 0.9, 0),
  };
  CocoEvalResult r;

  if (!evaluate_one (gts, 2, dets, 2, 1, &r))
    return;
  CHECK_NEAR (r.ap, (7.0 + 3.0 * 51.0 / 101.0) / 10.0, "greedy matching");
  CHECK_NEAR (coco_eval_mean_precision (&r, 0, COCO_AREA_ALL, 6), 1.0,
              "greedy at 0.80");
  CHECK_NEAR (coco_eval_mean_precision (&r, 0, COCO_AREA_ALL, 7), 51.0 / 101.0,
              "greedy at 0.85");
  coco_eval_result_clear (&r);

  /* Of two ground truths with the same IoU the later one is taken. A at
   * x 0 and B at x 20; detection 1 at x 10 overlaps both by 90/110;
   * detection 2 sits on A (IoU 1; 80/120 with B). Taking B leaves A to
   * detection 2: both match at 0.50 to 0.80; beyond, detection 1 is a FP
   * before a TP: precision 1/2 up to recall 1/2, 25.5/101. (Taking A would
   * leave detection 2 a FP at 0.70 to 0.80.) */
  const CocoGroundTruth pair[] = {
    GT (0, 0, 100, 100, 0), GT (20, 0, 100, 100, 0),
  };
  const CocoDetection between[] = {
    DET (10, 0, 100, 100, 0.9, 0), DET (0, 0, 100, 100, 0.8, 0),
  };
  if (evaluate_one (pair, 2, between, 2, 1, &r))
    {
      CHECK_NEAR (r.ap, (7.0 + 3.0 * 25.5 / 101.0) / 10.0,
                  "equal IoUs: the later ground truth");
      coco_eval_result_clear (&r);
    }
}

/* Only the 100 best detections of a class in an image count. */
static void
test_max_detections (void)
{
  const CocoGroundTruth gts[] = { GT (0, 0, 50, 50, 0) };
  CocoDetection dets[150];
  CocoEvalResult r;

  for (int rank_of_hit = 100; rank_of_hit <= 101; rank_of_hit++)
    {
      for (int i = 0; i < 150; i++)
        {
          /* Scores 1.0, 0.99, ... by rank; the hit at @rank_of_hit. */
          double x = i + 1 == rank_of_hit ? 0.0 : 1000.0 + 60.0 * i;
          CocoDetection d = DET (x, 0, 50, 50, 1.0 - i * 0.001, 0);
          dets[i] = d;
        }
      if (!evaluate_one (gts, 1, dets, 150, 1, &r))
        return;
      CHECK (r.class_detections[0] == 100, "%d detections evaluated",
             r.class_detections[0]);
      CHECK_NEAR (r.ap, rank_of_hit == 100 ? 0.01 : 0.0,
                  rank_of_hit == 100 ? "hit at rank 100" : "hit at rank 101");
      coco_eval_result_clear (&r);
    }
}

static void
test_errors (void)
{
  const CocoGroundTruth bad_class[] = { GT (0, 0, 10, 10, 3) };
  const CocoDetection nan_score[] = { DET (0, 0, 10, 10, NAN, 0) };
  const CocoGroundTruth negative[] = { GT (0, 0, -1, 10, 0) };
  CocoImage image = { bad_class, 1, NULL, 0 };
  CocoEvalResult r;
  GError *error = NULL;

  CHECK (!coco_evaluate (&image, 1, 3, &r, &error)
         && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT)
         && strstr (error->message, "class 3") != NULL,
         "class out of range: %s", error ? error->message : "accepted");
  g_clear_error (&error);

  image = (CocoImage) { NULL, 0, nan_score, 1 };
  CHECK (!coco_evaluate (&image, 1, 3, &r, &error)
         && strstr (error->message, "score") != NULL,
         "NaN score: %s", error ? error->message : "accepted");
  g_clear_error (&error);

  image = (CocoImage) { negative, 1, NULL, 0 };
  CHECK (!coco_evaluate (&image, 1, 3, &r, &error)
         && strstr (error->message, "width") != NULL,
         "negative width: %s", error ? error->message : "accepted");
  g_clear_error (&error);

  CHECK (!coco_evaluate (NULL, 0, 0, &r, &error), "no classes accepted");
  g_clear_error (&error);
}

int
main (void)
{
  test_thresholds ();
  test_perfect ();
  test_false_positive ();
  test_iou_thresholds ();
  test_empty ();
  test_area_ranges ();
  test_ties ();
  test_greedy ();
  test_max_detections ();
  test_errors ();

  printf ("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
