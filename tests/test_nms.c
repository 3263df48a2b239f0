/* ssfpn_nms against YOLOv5's non_max_suppression.
 *
 * The fixtures in tests/data/nms/ (tools/make_nms_fixtures.py) hold random
 * raw outputs and the detections PyTorch + torchvision give for them; the C
 * code must give the same boxes in the same order. Edge cases follow.
 */
#include "npy.h"
#include "ssfpn/ssfpn.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "check.h"


static gboolean
close_enough (double a, double b)
{
  return fabs (a - b) <= 1e-6;
}

/* Runs one fixture case; returns FALSE when its files are missing. */
static gboolean
check_fixture (const char *name)
{
  g_autofree char *npy_path = g_strdup_printf ("%s/nms/%s.npy", data_dir (), name);
  g_autofree char *json_path = g_strdup_printf ("%s/nms/%s.json", data_dir (), name);
  g_autoptr (GError) error = NULL;

  g_autoptr (NpyArray) raw = npy_read (npy_path, &error);
  if (raw == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return FALSE;
    }
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_file (parser, json_path, &error))
    {
      fprintf (stderr, "%s: %s\n", json_path, error->message);
      return FALSE;
    }
  JsonObject *spec = json_node_get_object (json_parser_get_root (parser));
  int rows = json_object_get_int_member (spec, "rows");
  int nc = json_object_get_int_member (spec, "nc");
  CHECK (raw->rank == 2 && raw->shape[0] == rows && raw->shape[1] == 5 + nc,
         "%s: fixture shape disagrees with its json", name);
  if (failed)
    return TRUE;

  SsfpnNmsOptions options;
  ssfpn_nms_options_init (&options);
  options.conf_threshold = json_object_get_double_member (spec, "conf");
  options.iou_threshold = json_object_get_double_member (spec, "iou");
  options.max_detections = json_object_get_int_member (spec, "max_det");
  options.agnostic = json_object_get_boolean_member (spec, "agnostic");
  options.multi_label = json_object_get_boolean_member (spec, "multi_label");
  int classes[128];
  JsonNode *classes_node = json_object_get_member (spec, "classes");
  if (!JSON_NODE_HOLDS_NULL (classes_node))
    {
      JsonArray *list = json_node_get_array (classes_node);
      options.n_classes = json_array_get_length (list);
      g_assert (options.n_classes <= (int) G_N_ELEMENTS (classes));
      for (int i = 0; i < options.n_classes; i++)
        classes[i] = json_array_get_int_element (list, i);
      options.classes = classes;
    }

  JsonArray *expected = json_object_get_array_member (spec, "detections");
  int n_expected = json_array_get_length (expected);
  int capacity = options.max_detections + 5;
  g_autofree SsfpnDetection *got = g_new0 (SsfpnDetection, capacity);
  int n = ssfpn_nms (raw->data, rows, nc, &options, got, capacity);

  CHECK (n == n_expected, "%s: %d detections, expected %d", name, n, n_expected);
  int mismatches = 0;
  for (int i = 0; i < MIN (n, n_expected); i++)
    {
      JsonObject *e = json_array_get_object_element (expected, i);
      JsonArray *box = json_object_get_array_member (e, "box");
      const float coords[4] = { got[i].x1, got[i].y1, got[i].x2, got[i].y2 };
      gboolean same = got[i].class_id == json_object_get_int_member (e, "class_id")
        && close_enough (got[i].confidence,
                         json_object_get_double_member (e, "confidence"));
      for (int k = 0; k < 4; k++)
        same = same && close_enough (coords[k], json_array_get_double_element (box, k));
      if (!same && mismatches++ < 3)
        fprintf (stderr, "%s: detection %d is class %d %.9g [%.9g %.9g %.9g %.9g], "
                 "expected class %d %.9g [%.9g %.9g %.9g %.9g]\n", name, i,
                 got[i].class_id, got[i].confidence, coords[0], coords[1],
                 coords[2], coords[3],
                 (int) json_object_get_int_member (e, "class_id"),
                 json_object_get_double_member (e, "confidence"),
                 json_array_get_double_element (box, 0),
                 json_array_get_double_element (box, 1),
                 json_array_get_double_element (box, 2),
                 json_array_get_double_element (box, 3));
    }
  CHECK (mismatches == 0, "%s: %d detections differ", name, mismatches);

  /* A short output buffer gets the best detections, in the same order. */
  if (n_expected > 2)
    {
      SsfpnDetection few[2];
      int n_few = ssfpn_nms (raw->data, rows, nc, &options, few, 2);
      CHECK (n_few == 2 && memcmp (few, got, sizeof few) == 0,
             "%s: capacity 2 gave %d detections or different ones", name, n_few);
    }
  return TRUE;
}

static void
test_no_rows (void)
{
  SsfpnNmsOptions options;
  SsfpnDetection out[4];
  ssfpn_nms_options_init (&options);
  CHECK (ssfpn_nms (NULL, 0, 3, &options, out, 4) == 0, "no rows gave detections");
}

static void
test_all_below_conf (void)
{
  /* Row 0: objectness below conf. Row 1: objectness above, but the score
   * obj * cls (0.5 * 0.45) below. Row 2: exactly at conf (not above). */
  const float rows[3][7] = {
    { 100, 100, 20, 20, 0.2f, 0.9f, 0.9f },
    { 200, 200, 20, 20, 0.5f, 0.45f, 0.1f },
    { 300, 300, 20, 20, 1.0f, 0.25f, 0.0f },
  };
  SsfpnNmsOptions options;
  SsfpnDetection out[4];
  ssfpn_nms_options_init (&options);
  CHECK (ssfpn_nms (&rows[0][0], 3, 2, &options, out, 4) == 0,
         "rows below the confidence threshold were kept");
}

static void
test_hand_computed (void)
{
  /* Two boxes of class 1 overlapping with IoU 0.6 (suppressed), one of
   * class 0 at the same place (kept: other class), one far away. */
  const float rows[4][7] = {
    { 50, 50, 20, 20, 0.9f, 0.1f, 0.9f },   /* (40,40)-(60,60), 0.81 */
    { 55, 50, 20, 20, 0.8f, 0.1f, 0.9f },   /* shifted by 5: IoU 0.6 */
    { 50, 50, 20, 20, 0.7f, 0.9f, 0.1f },   /* class 0, 0.63 */
    { 400, 300, 40, 10, 0.6f, 0.2f, 0.8f }, /* class 1, 0.48 */
  };
  SsfpnNmsOptions options;
  SsfpnDetection out[8];
  ssfpn_nms_options_init (&options);
  int n = ssfpn_nms (&rows[0][0], 4, 2, &options, out, 8);
  CHECK (n == 3, "hand case: %d detections, expected 3", n);
  if (n == 3)
    {
      CHECK (out[0].class_id == 1 && out[0].x1 == 40 && out[0].y2 == 60
             && out[0].confidence == 0.9f * 0.9f, "hand case: first detection wrong");
      CHECK (out[1].class_id == 0 && out[1].confidence == 0.9f * 0.7f,
             "hand case: second detection wrong");
      CHECK (out[2].class_id == 1 && out[2].x1 == 380 && out[2].y1 == 295
             && out[2].x2 == 420 && out[2].y2 == 305, "hand case: third detection wrong");
    }

  /* Class-agnostic: the class 0 box is the same box as the first one. */
  options.agnostic = TRUE;
  n = ssfpn_nms (&rows[0][0], 4, 2, &options, out, 8);
  CHECK (n == 2 && out[1].x1 == 380, "agnostic hand case: %d detections", n);

  /* Above the boxes' IoU of 0.6 both stay. */
  options.agnostic = FALSE;
  options.iou_threshold = 0.65f;
  n = ssfpn_nms (&rows[0][0], 4, 2, &options, out, 8);
  CHECK (n == 4, "threshold 0.65: %d detections, expected 4", n);

  /* The class filter and max_detections. */
  const int only_zero[] = { 0 };
  ssfpn_nms_options_init (&options);
  options.classes = only_zero;
  options.n_classes = 1;
  n = ssfpn_nms (&rows[0][0], 4, 2, &options, out, 8);
  CHECK (n == 1 && out[0].class_id == 0, "class filter: %d detections", n);
  ssfpn_nms_options_init (&options);
  options.max_detections = 1;
  n = ssfpn_nms (&rows[0][0], 4, 2, &options, out, 8);
  CHECK (n == 1 && out[0].confidence == 0.9f * 0.9f, "max_det 1: %d detections", n);
  CHECK (ssfpn_nms (&rows[0][0], 4, 2, &options, out, 0) == 0,
         "capacity 0 wrote detections");
}

/* val.py's multi-label NMS: a row whose two classes both score above the
 * threshold becomes two detections of the same box, one per class. */
static void
test_multi_label_hand (void)
{
  const float rows[2][7] = {
    { 50, 50, 20, 20, 0.8f, 0.6f, 0.5f },  /* class 0 0.48, class 1 0.40 */
    { 300, 300, 10, 10, 0.5f, 0.9f, 0.4f }, /* class 0 0.45; class 1 0.20 is below */
  };
  SsfpnNmsOptions options;
  SsfpnDetection out[8];

  ssfpn_nms_options_init (&options);
  int n = ssfpn_nms (&rows[0][0], 2, 2, &options, out, 8);
  CHECK (n == 2 && out[0].class_id == 0 && out[1].class_id == 0,
         "single label: %d detections, expected the best class of each row", n);

  options.multi_label = TRUE;
  n = ssfpn_nms (&rows[0][0], 2, 2, &options, out, 8);
  CHECK (n == 3, "multi-label: %d detections, expected 3", n);
  if (n == 3)
    CHECK (out[0].class_id == 0 && out[0].confidence == 0.8f * 0.6f
           && out[1].class_id == 0 && out[1].x1 == 295.0f
           && out[2].class_id == 1 && out[2].x1 == 40.0f
           && out[2].confidence == 0.8f * 0.5f,
           "multi-label: wrong detections or order");

  /* Class-agnostic, the same box's second class is suppressed by its first. */
  options.agnostic = TRUE;
  n = ssfpn_nms (&rows[0][0], 2, 2, &options, out, 8);
  CHECK (n == 2 && out[0].class_id == 0 && out[1].x1 == 295.0f,
         "agnostic multi-label: %d detections, expected 2", n);
}

/* @n_strong copies of one box with distinct scores in [0.5, 0.9), then
 * @n_weak isolated boxes of score 0.3, nc = 1. */
static float *
cap_rows (int n_strong, int n_weak)
{
  float *rows = g_new (float, (gsize) (n_strong + n_weak) * 6);
  for (int r = 0; r < n_strong + n_weak; r++)
    {
      float *row = rows + (gsize) r * 6;
      gboolean weak = r >= n_strong;
      row[0] = weak ? 1000.0f + 50.0f * (r - n_strong) : 100.0f;
      row[1] = 100.0f;
      row[2] = row[3] = 10.0f;
      row[4] = weak ? 0.3f : 0.5f + 0.4f * (float) r / (float) n_strong;
      row[5] = 1.0f;
    }
  return rows;
}

/* YOLOv5 keeps only the 30000 best candidates before NMS: with 30000 strong
 * copies of one box (NMS leaves one), five weaker isolated boxes are cut;
 * with one strong copy fewer they all fit and survive. */
static void
test_candidate_cap (void)
{
  SsfpnNmsOptions options;
  SsfpnDetection out[16];
  ssfpn_nms_options_init (&options);

  float *rows = cap_rows (30000, 5);
  int n = ssfpn_nms (rows, 30005, 1, &options, out, 16);
  CHECK (n == 1, "over the cap: %d detections, expected 1", n);
  CHECK (n >= 1 && out[0].x1 == 95.0f && out[0].confidence > 0.89f,
         "over the cap: wrong box kept");
  g_free (rows);

  rows = cap_rows (29995, 5);
  n = ssfpn_nms (rows, 30000, 1, &options, out, 16);
  CHECK (n == 6, "at the cap: %d detections, expected 6", n);
  CHECK (n == 6 && out[5].x1 == 1195.0f && out[5].confidence == 0.3f,
         "at the cap: wrong order");
  g_free (rows);
}

int
main (void)
{
  static const char *const cases[] = {
    "few_boxes", "single_class", "coco_80", "many_overlapping", "agnostic",
    "class_filter", "max_det_small", "low_conf", "tight_iou", "multi_label",
    "multi_label_filter", "multi_label_max_det",
  };
  int missing = 0;

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    if (!check_fixture (cases[i]))
      missing++;
  CHECK (missing == 0, "%d fixture cases could not be loaded", missing);

  test_no_rows ();
  test_multi_label_hand ();
  test_all_below_conf ();
  test_hand_computed ();
  test_candidate_cap ();

  printf ("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
