/* COCO-style box evaluation (coco_eval.c), as pycocotools' COCOeval does it
 * for iouType "bbox" with no crowd annotations: IoU thresholds .50:.05:.95,
 * 101-point interpolated precision, at most 100 detections per image and
 * class, COCO's area ranges. Arrays in, figures out: no file I/O, so the
 * `ssfpn eval` command and the tests share it. docs/eval.md gives the full
 * definition.
 */
#ifndef SSFPN_COCO_EVAL_H
#define SSFPN_COCO_EVAL_H

#include <glib.h>

G_BEGIN_DECLS

#define COCO_N_IOU_THRESHOLDS 10     /* 0.50, 0.55, ..., 0.95 */
#define COCO_N_RECALL_THRESHOLDS 101 /* 0.00, 0.01, ..., 1.00 */
#define COCO_MAX_DETECTIONS 100      /* per image and class, by score */

typedef enum {
  COCO_AREA_ALL,    /* [0, 1e10] */
  COCO_AREA_SMALL,  /* [0, 32^2] */
  COCO_AREA_MEDIUM, /* [32^2, 96^2] */
  COCO_AREA_LARGE,  /* [96^2, 1e10] */
  COCO_N_AREAS,
} CocoAreaRange;

/* A box in pixels as COCO writes it: top-left corner and size. Its area is
 * width x height (for ground truths too: our labels have no masks). */
typedef struct {
  double x, y, width, height;
  int class_id;
} CocoGroundTruth;

typedef struct {
  double x, y, width, height;
  double score;
  int class_id;
} CocoDetection;

/* One image's annotations and detections, borrowed. The order of each array
 * matters where pycocotools' does: equal scores keep their order (a stable
 * sort), and of several ground truths with the same IoU the last wins. */
typedef struct {
  const CocoGroundTruth *ground_truths;
  int n_ground_truths;
  const CocoDetection *detections;
  int n_detections;
} CocoImage;

/* The figures. -1 (as COCO reports it) where nothing can be measured: no
 * class has a ground truth in that area range. */
typedef struct {
  int n_classes;
  double ap;        /* AP@[.5:.95], all areas */
  double ap50, ap75;
  double ap_small, ap_medium, ap_large;
  double *class_ap;        /* per class AP@[.5:.95], all areas; -1 without GT */
  double *class_ap50;      /* per class AP@.5, all areas; -1 without GT */
  int *class_instances;    /* ground truths per class */
  int *class_detections;   /* detections per class that were evaluated */
  /* [class][area][IoU threshold]: precision averaged over the recall
   * thresholds, or -1 where the class has no ground truth inside the area
   * range (pycocotools' precision[t, :, k, a, -1] before averaging). */
  double *mean_precision;
} CocoEvalResult;

/* Threshold @index (0 to COCO_N_IOU_THRESHOLDS - 1) as numpy.linspace
 * computes it in pycocotools, to the last bit. */
double coco_iou_threshold (int index);

/* Evaluates @n_images images over classes 0 to @n_classes - 1. Fails with
 * SSFPN_ERROR_ARGUMENT, naming the image and entry, on a class id out of
 * range, a negative size, or a value that is not finite. Clear @result
 * with coco_eval_result_clear. */
gboolean coco_evaluate (const CocoImage *images, int n_images, int n_classes,
                        CocoEvalResult *result, GError **error);

/* The entry of result->mean_precision for @class_id, @area, @threshold. */
double coco_eval_mean_precision (const CocoEvalResult *result, int class_id,
                                 CocoAreaRange area, int threshold);

void coco_eval_result_clear (CocoEvalResult *result);

G_END_DECLS

#endif /* SSFPN_COCO_EVAL_H */
