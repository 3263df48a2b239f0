/* The CUDA backend against the CPU backend on every golden fixture
 * (tests/data/fixtures.json, tools/make_fixtures.py).
 *
 * Without a working GPU only the failure paths run (a clear device error,
 * "auto" falling back to the CPU) and the test then skips with 77. With
 * one, per fixture case:
 *   fp32: boxes within 1e-3 relative, probabilities within 1e-4, the same
 *         detections after NMS; a doubled batch gives each item the same;
 *         a second run (CUDA graph replay) gives the same again;
 *   fp16: boxes of the candidate rows within 1e-2 relative, and at least
 *         99% of the CPU's detections matched (same class, IoU > 0.9).
 */
#include "buildconfig.h"
#include "backend.h"
#include "npy.h"
#include "ssfpn/ssfpn.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define SKIP 77
#define MAX_DETECTIONS 300

static int passed, failed;

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    if (cond)                                                                \
      passed++;                                                              \
    else {                                                                   \
      failed++;                                                              \
      fprintf (stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                  \
      fprintf (stderr, __VA_ARGS__);                                         \
      fputc ('\n', stderr);                                                  \
    }                                                                        \
  } while (0)

static char *
data_path (const char *file)
{
  const char *dir = g_getenv ("SSFPN_TEST_DATA");

  return g_build_filename (dir ? dir : SSFPN_TEST_DATA, file, NULL);
}

static int
finish (int code)
{
  printf ("%d passed, %d failed\n", passed, failed);
  return failed > 0 ? 1 : code;
}

/* ---- without a GPU -------------------------------------------------------- */

/* A model to open: the smallest fixture, else the element's test model. */
static SsfpnModel *
any_model (JsonArray *cases)
{
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  SsfpnModel *model;

  if (cases != NULL && json_array_get_length (cases) > 0) {
    JsonObject *c = json_array_get_object_element (cases, 0);
    path = data_path (json_object_get_string_member (c, "model"));
  } else {
    path = data_path ("element/element.safetensors");
  }
  model = ssfpn_model_open (path, &error);
  CHECK (model != NULL, "%s: %s", path, error ? error->message : "");
  return model;
}

/* The error paths that must hold on any machine; returns the reason no GPU
 * works, or NULL when one does. */
static char *
check_device_errors (const SsfpnBackend *cuda, JsonArray *cases)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) reason = NULL;
  SsfpnModel *model;
  SsfpnContextOptions options;
  SsfpnContext *context;
  gboolean works = cuda->available (0, &reason);

  CHECK (!cuda->available (-1, &error) && error != NULL
         && error->domain == SSFPN_ERROR
         && error->code == SSFPN_ERROR_DEVICE && error->message[0] != '\0',
         "available(-1) must fail with a device error");
  g_clear_error (&error);
  CHECK (!cuda->available (1000, &error) && error != NULL
         && error->code == SSFPN_ERROR_DEVICE,
         "available(1000) must fail with a device error");
  if (error != NULL && works)
    CHECK (strstr (error->message, "out of range") != NULL,
           "index 1000: \"%s\" does not say out of range", error->message);
  g_clear_error (&error);
  if (!works)
    CHECK (reason != NULL && reason->code == SSFPN_ERROR_DEVICE
           && (strstr (reason->message, "no CUDA device") != NULL
               || strstr (reason->message, "driver") != NULL
               || strstr (reason->message, "device") != NULL),
           "unavailable CUDA without a device error naming the cause: %s",
           reason ? reason->message : "(none)");

  model = any_model (cases);
  if (model == NULL)
    return works ? NULL : g_strdup (reason->message);

  ssfpn_context_options_init (&options);
  options.device = "cuda:1000";
  context = ssfpn_context_new (model, &options, &error);
  CHECK (context == NULL && error != NULL
         && error->code == SSFPN_ERROR_DEVICE,
         "device cuda:1000 must fail with a device error");
  ssfpn_context_free (context);
  g_clear_error (&error);

  if (!works) {
    options.device = "cuda";
    context = ssfpn_context_new (model, &options, &error);
    CHECK (context == NULL && error != NULL
           && error->code == SSFPN_ERROR_DEVICE
           && strstr (error->message, reason->message) != NULL,
           "device cuda without a GPU: \"%s\" should carry \"%s\"",
           error ? error->message : "(no error)", reason->message);
    ssfpn_context_free (context);
    g_clear_error (&error);

    options.device = "auto";
    context = ssfpn_context_new (model, &options, &error);
    CHECK (context != NULL
           && strcmp (ssfpn_context_device (context), "cpu") == 0,
           "auto without a GPU must fall back to the CPU: %s",
           error ? error->message : ssfpn_context_device (context));
    ssfpn_context_free (context);
    g_clear_error (&error);
  }
  ssfpn_model_unref (model);
  return works ? NULL : g_strdup (reason->message);
}

/* ---- with a GPU ---------------------------------------------------------- */

static float *
run_device (SsfpnModel *model, const char *device, SsfpnPrecision precision,
            int batch, int height, int width, const float *input,
            const char *name)
{
  g_autoptr (GError) error = NULL;
  SsfpnContextOptions options;
  SsfpnContext *context;
  float *output;
  gsize count;

  ssfpn_context_options_init (&options);
  options.device = device;
  options.precision = precision;
  options.batch = batch;
  options.height = height;
  options.width = width;
  context = ssfpn_context_new (model, &options, &error);
  CHECK (context != NULL, "%s: %s context: %s", name, device,
         error ? error->message : "");
  if (context == NULL)
    return NULL;
  count = (gsize) batch * ssfpn_context_output_rows (context)
          * ssfpn_model_output_columns (model);
  output = g_new0 (float, count);
  CHECK (ssfpn_context_run (context, input, output, &error), "%s: %s run: %s",
         name, device, error ? error->message : "");
  ssfpn_context_free (context);
  return output;
}

/* Largest box error relative to max(|cpu|, 1 px) and largest probability
 * error, over the rows whose CPU objectness exceeds @min_objectness. */
static void
compare_outputs (const float *gpu, const float *cpu, gsize rows, int columns,
                 float min_objectness, double *box_rel, double *prob_abs)
{
  *box_rel = *prob_abs = 0.0;
  for (gsize r = 0; r < rows; r++) {
    const float *g = gpu + r * columns, *c = cpu + r * columns;

    if (c[4] <= min_objectness)
      continue;
    for (int k = 0; k < columns; k++) {
      double d = fabs ((double) g[k] - c[k]);

      if (!isfinite (g[k]))
        d = INFINITY;
      if (k < 4)
        *box_rel = MAX (*box_rel, d / MAX (fabs (c[k]), 1.0));
      else
        *prob_abs = MAX (*prob_abs, d);
    }
  }
}

static double
iou (const SsfpnDetection *a, const SsfpnDetection *b)
{
  double w = MIN (a->x2, b->x2) - MAX (a->x1, b->x1);
  double h = MIN (a->y2, b->y2) - MAX (a->y1, b->y1);
  double inter = MAX (w, 0.0) * MAX (h, 0.0);
  double area_a = (a->x2 - a->x1) * (a->y2 - a->y1);
  double area_b = (b->x2 - b->x1) * (b->y2 - b->y1);

  return inter > 0.0 ? inter / (area_a + area_b - inter) : 0.0;
}

/* Detections of each image of both outputs; counts the CPU's detections
 * and those the GPU matches (same class, IoU > 0.9), and whether the two
 * lists are the same (count, order, classes). */
static void
match_detections (const float *gpu, const float *cpu, int batch, int rows,
                  int nc, const SsfpnNmsOptions *options, int *total,
                  int *matched, gboolean *same)
{
  SsfpnDetection g[MAX_DETECTIONS], c[MAX_DETECTIONS];

  *total = *matched = 0;
  *same = TRUE;
  for (int b = 0; b < batch; b++) {
    gsize offset = (gsize) b * rows * (nc + 5);
    int ng = ssfpn_nms (gpu + offset, rows, nc, options, g, MAX_DETECTIONS);
    int ncpu = ssfpn_nms (cpu + offset, rows, nc, options, c, MAX_DETECTIONS);

    *same &= ng == ncpu;
    for (int i = 0; i < ncpu; i++) {
      gboolean found = FALSE;

      if (i < ng)
        *same &= g[i].class_id == c[i].class_id;
      for (int j = 0; j < ng && !found; j++)
        found = g[j].class_id == c[i].class_id && iou (&g[j], &c[i]) > 0.9;
      *matched += found;
    }
    *total += ncpu;
  }
}

static void
check_case (JsonObject *c)
{
  const char *name = json_object_get_string_member (c, "name");
  g_autofree char *model_path = data_path (json_object_get_string_member (c, "model"));
  g_autofree char *input_path = data_path (json_object_get_string_member (c, "input"));
  g_autoptr (GError) error = NULL;
  g_autoptr (NpyArray) input = NULL;
  SsfpnModel *model;
  SsfpnNmsOptions nms;
  float *cpu = NULL, *gpu32 = NULL, *again = NULL, *gpu16 = NULL;
  float *doubled_input = NULL, *doubled = NULL;
  int batch, height, width, rows, columns, nc;
  gsize item_in, item_out;
  double box_rel, prob_abs;
  int total, matched;
  gboolean same;

  model = ssfpn_model_open (model_path, &error);
  CHECK (model != NULL, "%s: %s", name, error ? error->message : "");
  input = npy_read (input_path, &error);
  CHECK (input != NULL && input->rank == 4 && input->shape[1] == 3,
         "%s: input: %s", name, error ? error->message : "not (N, 3, H, W)");
  if (model == NULL || input == NULL || input->rank != 4) {
    if (model != NULL)
      ssfpn_model_unref (model);
    return;
  }
  batch = (int) input->shape[0];
  height = (int) input->shape[2];
  width = (int) input->shape[3];
  nc = ssfpn_model_num_classes (model);
  columns = nc + 5;
  rows = ssfpn_model_output_rows (model, height, width);
  item_in = (gsize) 3 * height * width;
  item_out = (gsize) rows * columns;

  ssfpn_nms_options_init (&nms);
  nms.conf_threshold = json_object_get_double_member (c, "conf");
  nms.iou_threshold = json_object_get_double_member (c, "iou");

  cpu = run_device (model, "cpu", SSFPN_PRECISION_FP32, batch, height, width,
                    input->data, name);
  gpu32 = run_device (model, "cuda", SSFPN_PRECISION_FP32, batch, height,
                      width, input->data, name);
  gpu16 = run_device (model, "cuda", SSFPN_PRECISION_FP16, batch, height,
                      width, input->data, name);
  if (cpu == NULL)
    goto out;

  if (gpu32 != NULL) {
    compare_outputs (gpu32, cpu, batch * (gsize) rows, columns, -INFINITY,
                     &box_rel, &prob_abs);
    CHECK (box_rel < 1e-3 && prob_abs < 1e-4,
           "%s fp32: box error %.3g relative (limit 1e-3), probability "
           "error %.3g (limit 1e-4)", name, box_rel, prob_abs);
    match_detections (gpu32, cpu, batch, rows, nc, &nms, &total, &matched,
                      &same);
    CHECK (same && matched == total, "%s fp32: detections differ from the "
           "CPU's (%d of %d matched)", name, matched, total);
    printf ("%-11s fp32: box %.2e rel, prob %.2e, %d/%d detections\n", name,
            box_rel, prob_abs, matched, total);

    /* Twice the batch, each image twice: batch indexing of every kernel. */
    doubled_input = g_new (float, 2 * batch * item_in);
    memcpy (doubled_input, input->data, batch * item_in * sizeof (float));
    memcpy (doubled_input + batch * item_in, input->data,
            batch * item_in * sizeof (float));
    doubled = run_device (model, "cuda", SSFPN_PRECISION_FP32, 2 * batch,
                          height, width, doubled_input, name);
    for (int half = 0; doubled != NULL && half < 2; half++) {
      compare_outputs (doubled + half * batch * item_out, cpu,
                       batch * (gsize) rows, columns, -INFINITY, &box_rel,
                       &prob_abs);
      CHECK (box_rel < 1e-3 && prob_abs < 1e-4,
             "%s fp32 batch %d, copy %d: box error %.3g, probability error "
             "%.3g", name, 2 * batch, half, box_rel, prob_abs);
    }
  }

  /* A second context run replays the captured graph. */
  {
    SsfpnContextOptions options;
    SsfpnContext *context;

    ssfpn_context_options_init (&options);
    options.device = "cuda";
    options.precision = SSFPN_PRECISION_FP32;
    options.batch = batch;
    options.height = height;
    options.width = width;
    context = ssfpn_context_new (model, &options, &error);
    if (context != NULL) {
      again = g_new0 (float, batch * item_out);
      for (int r = 0; r < 3; r++)
        CHECK (ssfpn_context_run (context, input->data, again, &error),
               "%s: run %d: %s", name, r, error ? error->message : "");
      compare_outputs (again, cpu, batch * (gsize) rows, columns, -INFINITY,
                       &box_rel, &prob_abs);
      CHECK (box_rel < 1e-3 && prob_abs < 1e-4,
             "%s fp32, third run: box error %.3g, probability error %.3g",
             name, box_rel, prob_abs);
      ssfpn_context_free (context);
    }
    g_clear_error (&error);
  }

  if (gpu16 != NULL) {
    compare_outputs (gpu16, cpu, batch * (gsize) rows, columns,
                     nms.conf_threshold, &box_rel, &prob_abs);
    CHECK (box_rel < 1e-2, "%s fp16: box error %.3g relative on the "
           "candidate rows (limit 1e-2)", name, box_rel);
    match_detections (gpu16, cpu, batch, rows, nc, &nms, &total, &matched,
                      &same);
    CHECK (matched >= 0.99 * total, "%s fp16: %d of %d detections matched "
           "(IoU > 0.9, same class); 99%% needed", name, matched, total);
    printf ("%-11s fp16: box %.2e rel, prob %.2e, %d/%d detections\n", name,
            box_rel, prob_abs, matched, total);
  }

out:
  g_free (cpu);
  g_free (gpu32);
  g_free (gpu16);
  g_free (again);
  g_free (doubled_input);
  g_free (doubled);
  ssfpn_model_unref (model);
}

int
main (void)
{
  const SsfpnBackend *cuda = ssfpn_backend_find ("cuda");
  g_autofree char *index_path = data_path ("fixtures.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonArray *cases = NULL;
  char *no_gpu;

  if (!HAVE_CUDA || cuda == NULL) {
    printf ("SKIP: this build has no CUDA backend\n");
    return finish (SKIP);
  }
  if (json_parser_load_from_file (parser, index_path, &error))
    cases = json_object_get_array_member (
        json_node_get_object (json_parser_get_root (parser)), "cases");

  no_gpu = check_device_errors (cuda, cases);
  if (no_gpu != NULL) {
    printf ("SKIP: no working GPU: %s\n", no_gpu);
    g_free (no_gpu);
    return finish (SKIP);
  }
  if (cases == NULL) {
    printf ("SKIP: %s: %s; run tools/make_fixtures.py\n", index_path,
            error ? error->message : "no cases");
    return finish (SKIP);
  }
  for (guint i = 0; i < json_array_get_length (cases); i++)
    check_case (json_array_get_object_element (cases, i));
  return finish (0);
}
