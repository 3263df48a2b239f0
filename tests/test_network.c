/* Whole networks against the PyTorch golden fixtures (tests/data,
 * tools/make_fixtures.py): raw output within the tolerances the project
 * promises, and YOLOv5 NMS identical to the torchvision-based reference.
 *
 * Tolerances: boxes (columns 0-3) relative error under 1e-4 (relative to
 * max(|expected|, 1 px)); objectness and class probabilities absolute error
 * under 1e-4. */
#include "cpu/cpu_backend.h"
#include "npy.h"
#include "ssfpn/ssfpn-frame.h"
#include "ssfpn/ssfpn.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOX_REL_TOLERANCE 1e-4
#define PROB_ABS_TOLERANCE 1e-4

static int passed, failed;

/* The oversized-context checks expect a failed allocation to come back as
 * NULL, as it does without AddressSanitizer; ASan aborts instead unless
 * told otherwise. */
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "allocator_may_return_null=1";
}

static void
check (gboolean ok, const char *what, const char *name)
{
  if (ok) {
    passed++;
  } else {
    failed++;
    printf ("FAIL %s: %s\n", name, what);
  }
}

static char *
data_path (const char *file)
{
  const char *dir = g_getenv ("SSFPN_TEST_DATA");
  return g_build_filename (dir ? dir : SSFPN_TEST_DATA, file, NULL);
}

/* Worst errors of @got against @want over (rows, cols) per image. */
static void
compare_outputs (const float *got, const float *want, gsize rows, int cols,
                 double *box_rel, double *prob_abs)
{
  *box_rel = 0;
  *prob_abs = 0;
  for (gsize r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++) {
      double g = got[r * cols + c], w = want[r * cols + c];
      double err = fabs (g - w);
      if (isnan (g) || isnan (w))
        err = INFINITY;
      if (c < 4)
        *box_rel = MAX (*box_rel, err / MAX (fabs (w), 1.0));
      else
        *prob_abs = MAX (*prob_abs, err);
    }
  }
}

/* One image's detections from the reference JSON as an array. */
static JsonArray *
reference_detections (JsonObject *nms, int image)
{
  JsonArray *images = json_object_get_array_member (nms, "images");
  JsonObject *item = json_array_get_object_element (images, image);
  return json_object_get_array_member (item, "detections");
}

/* Compares C detections with the reference; @box_tol and @conf_tol are the
 * allowed differences (0 when both sides ran on the same output). */
static gboolean
same_detections (const SsfpnDetection *dets, int n, JsonArray *want,
                 double box_tol, double conf_tol, char **why)
{
  if ((guint) n != json_array_get_length (want)) {
    *why = g_strdup_printf ("%d detections, reference has %u", n,
                            json_array_get_length (want));
    return FALSE;
  }
  for (int i = 0; i < n; i++) {
    JsonObject *d = json_array_get_object_element (want, i);
    JsonArray *box = json_object_get_array_member (d, "box");
    float coords[4] = { dets[i].x1, dets[i].y1, dets[i].x2, dets[i].y2 };
    int class_id = (int) json_object_get_int_member (d, "class_id");
    double conf = json_object_get_double_member (d, "confidence");

    if (dets[i].class_id != class_id) {
      *why = g_strdup_printf ("detection %d: class %d, reference %d", i,
                              dets[i].class_id, class_id);
      return FALSE;
    }
    if (fabs (dets[i].confidence - conf) > conf_tol) {
      *why = g_strdup_printf ("detection %d: confidence %.9g, reference %.9g",
                              i, dets[i].confidence, conf);
      return FALSE;
    }
    for (int k = 0; k < 4; k++) {
      double w = json_array_get_double_element (box, k);
      if (fabs (coords[k] - w) > box_tol) {
        *why = g_strdup_printf ("detection %d: box[%d] %.9g, reference %.9g",
                                i, k, coords[k], w);
        return FALSE;
      }
    }
  }
  return TRUE;
}

/* augment=flips against the reference's flip_tta (tools/ssfpn_ref/augment.py)
 * on the same input, within the case's flips_tolerance: the plain
 * tolerances, or four times PyTorch's own float32 error where a mirrored
 * view rounds worse than the input the fixture was tuned on. */
static void
check_flips (JsonObject *fixture, SsfpnModel *model, const NpyArray *input,
             int rows, int cols)
{
  const char *name = json_object_get_string_member (fixture, "name");
  g_autofree char *path = data_path (
      json_object_get_string_member (fixture, "output_flips"));
  g_autofree char *what = g_strdup_printf ("%s flips", name);
  g_autoptr (GError) error = NULL;
  g_autoptr (NpyArray) expected = npy_read (path, &error);
  SsfpnContextOptions options;
  SsfpnContext *context;
  JsonObject *tolerance = json_object_get_object_member (fixture,
                                                        "flips_tolerance");
  double box_tol = json_object_get_double_member (tolerance, "box_rel");
  double prob_tol = json_object_get_double_member (tolerance, "prob_abs");
  int batch = (int) input->shape[0];
  int failed_before = failed;
  float *output = NULL;
  double box_rel, prob_abs;

  check (expected != NULL, error ? error->message : "output-flips", what);
  if (expected == NULL)
    return;
  check (expected->rank == 3 && expected->shape[0] == batch
         && expected->shape[1] == rows && expected->shape[2] == cols,
         "flips output shape differs from the fixture", what);
  ssfpn_context_options_init (&options);
  options.device = "cpu";
  options.batch = batch;
  options.height = (int) input->shape[2];
  options.width = (int) input->shape[3];
  options.augment = SSFPN_AUGMENT_FLIPS;
  context = ssfpn_context_new (model, &options, &error);
  check (context != NULL, error ? error->message : "context", what);
  if (context == NULL || failed > failed_before)
    goto out;
  check (ssfpn_context_augment (context) == SSFPN_AUGMENT_FLIPS
         && ssfpn_context_batch (context) == batch,
         "the context does not report its augment and batch", what);

  output = g_new (float, (gsize) batch * rows * cols);
  check (ssfpn_context_run (context, input->data, output, &error),
         error ? error->message : "run", what);
  if (error == NULL) {
    compare_outputs (output, expected->data, (gsize) batch * rows, cols,
                     &box_rel, &prob_abs);
    printf ("%-18s max box relative error %.2e (tolerance %.2e), max "
            "probability error %.2e (%.2e)\n", what, box_rel, box_tol,
            prob_abs, prob_tol);
    check (box_tol <= 10 * BOX_REL_TOLERANCE
           && prob_tol <= 10 * PROB_ABS_TOLERANCE,
           "the fixture's flips tolerance is loose enough to hide a bug", what);
    check (box_rel < box_tol, "box error over tolerance", what);
    check (prob_abs < prob_tol, "probability error over tolerance", what);
  }
out:
  g_free (output);
  ssfpn_context_free (context);
}

static void
run_case (JsonObject *fixture)
{
  const char *name = json_object_get_string_member (fixture, "name");
  g_autofree char *model_path = data_path (
      json_object_get_string_member (fixture, "model"));
  g_autofree char *input_path = data_path (
      json_object_get_string_member (fixture, "input"));
  g_autofree char *output_path = data_path (
      json_object_get_string_member (fixture, "output"));
  g_autofree char *nms_path = data_path (
      json_object_get_string_member (fixture, "nms"));
  g_autoptr (GError) error = NULL;
  g_autoptr (NpyArray) input = NULL;
  g_autoptr (NpyArray) expected = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  SsfpnModel *model = NULL;
  SsfpnContext *context = NULL;
  SsfpnContextOptions options;
  SsfpnNmsOptions nms_options;
  float *output = NULL;
  int batch, rows, cols;
  int failed_before = failed;
  double box_rel, prob_abs;

  model = ssfpn_model_open (model_path, &error);
  check (model != NULL, error ? error->message : "open", name);
  input = npy_read (input_path, &error);
  check (input != NULL, error ? error->message : "input", name);
  expected = npy_read (output_path, &error);
  check (expected != NULL, error ? error->message : "output", name);
  check (json_parser_load_from_file (parser, nms_path, &error),
         error ? error->message : "nms json", name);
  if (model == NULL || input == NULL || expected == NULL || error != NULL)
    goto out;

  check (ssfpn_model_parameter_count (model)
         == json_object_get_int_member (fixture, "parameters"),
         "parameter count differs from PyTorch's", name);

  batch = (int) input->shape[0];
  ssfpn_context_options_init (&options);
  options.device = "cpu";
  options.batch = batch;
  options.height = (int) input->shape[2];
  options.width = (int) input->shape[3];
  context = ssfpn_context_new (model, &options, &error);
  check (context != NULL, error ? error->message : "context", name);
  if (context == NULL)
    goto out;

  rows = ssfpn_context_output_rows (context);
  cols = ssfpn_model_output_columns (model);
  check (expected->rank == 3 && expected->shape[0] == batch
         && expected->shape[1] == rows && expected->shape[2] == cols,
         "output shape differs from the fixture", name);
  if (failed > failed_before)
    goto out;

  output = g_new (float, (gsize) batch * rows * cols);
  check (ssfpn_context_run (context, input->data, output, &error),
         error ? error->message : "run", name);
  if (error)
    goto out;

  compare_outputs (output, expected->data, (gsize) batch * rows, cols,
                   &box_rel, &prob_abs);
  printf ("%-12s max box relative error %.2e, max probability error %.2e\n",
          name, box_rel, prob_abs);
  check (box_rel < BOX_REL_TOLERANCE, "box error over tolerance", name);
  check (prob_abs < PROB_ABS_TOLERANCE, "probability error over tolerance",
         name);

  /* NMS: exact on PyTorch's own output; within tolerance on ours. */
  ssfpn_nms_options_init (&nms_options);
  {
    JsonObject *nms = json_node_get_object (json_parser_get_root (parser));
    nms_options.conf_threshold = json_object_get_double_member (nms, "conf");
    nms_options.iou_threshold = json_object_get_double_member (nms, "iou");
    nms_options.max_detections = json_object_get_int_member (nms, "max_det");
    nms_options.agnostic = json_object_get_boolean_member (nms, "agnostic");

    for (int b = 0; b < batch; b++) {
      SsfpnDetection dets[300];
      char *why = NULL;
      int n;
      gsize offset = (gsize) b * rows * cols;

      n = ssfpn_nms (expected->data + offset, rows, cols - 5, &nms_options,
                     dets, G_N_ELEMENTS (dets));
      if (!same_detections (dets, n, reference_detections (nms, b), 1e-4,
                            1e-6, &why)) {
        check (FALSE, why, name);
        g_free (why);
      } else {
        check (TRUE, "", name);
      }
      check (n > 0, "the fixture has no detections to compare", name);

      n = ssfpn_nms (output + offset, rows, cols - 5, &nms_options, dets,
                     G_N_ELEMENTS (dets));
      if (!same_detections (dets, n, reference_detections (nms, b), 1e-2,
                            PROB_ABS_TOLERANCE, &why)) {
        check (FALSE, why, name);
        g_free (why);
      } else {
        check (TRUE, "", name);
      }
    }
  }

  if (json_object_has_member (fixture, "output_flips"))
    check_flips (fixture, model, input, rows, cols);

out:
  g_free (output);
  ssfpn_context_free (context);
  if (model)
    ssfpn_model_unref (model);
}

/* Sizes whose buffers cannot exist must fail with an error, not abort in
 * an allocator or overflow the output's row count. */
static void
check_oversized_contexts (void)
{
  g_autofree char *model_path = data_path ("baseline.safetensors");
  g_autoptr (GError) error = NULL;
  SsfpnModel *model = ssfpn_model_open (model_path, &error);
  SsfpnContextOptions options;
  SsfpnContext *context;

  check (model != NULL, error ? error->message : "open", "oversized");
  if (model == NULL)
    return;

  /* Terabytes of input: more than any allocator hands out. */
  ssfpn_context_options_init (&options);
  options.device = "cpu";
  options.batch = 4096;
  options.height = options.width = 8192;
  context = ssfpn_context_new (model, &options, &error);
  check (context == NULL && error != NULL
         && strstr (error->message, "8192x8192") != NULL,
         "batch 4096 at 8192x8192 is not refused with a message",
         "oversized");
  ssfpn_context_free (context);
  g_clear_error (&error);

  /* A batch that fits alone but not as four views a pass. */
  ssfpn_context_options_init (&options);
  options.device = "cpu";
  options.batch = 2048;
  options.augment = SSFPN_AUGMENT_FLIPS;
  context = ssfpn_context_new (model, &options, &error);
  check (context == NULL
         && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT)
         && strstr (error->message, "augment flips") != NULL,
         "batch 2048 with augment flips is not refused with a message",
         "oversized");
  ssfpn_context_free (context);
  g_clear_error (&error);

  /* An augment that is no SsfpnAugment. */
  ssfpn_context_options_init (&options);
  options.device = "cpu";
  options.augment = (SsfpnAugment) 7;
  context = ssfpn_context_new (model, &options, &error);
  check (context == NULL
         && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT)
         && strstr (error->message, "augment 7") != NULL,
         "augment 7 is not refused with a message", "oversized");
  ssfpn_context_free (context);
  g_clear_error (&error);

  /* A negative size is named as asked, not as the model's it replaces. */
  ssfpn_context_options_init (&options);
  options.device = "cpu";
  options.height = -32;
  context = ssfpn_context_new (model, &options, &error);
  check (context == NULL && error != NULL
         && strstr (error->message, "-32x") != NULL,
         "a negative input size is not named in the error", "oversized");
  ssfpn_context_free (context);
  g_clear_error (&error);

  /* More threads than a machine can start: OpenMP would end the process. */
  ssfpn_context_options_init (&options);
  options.device = "cpu";
  options.threads = 100000;
  context = ssfpn_context_new (model, &options, &error);
  check (context == NULL
         && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT),
         "100000 threads are not refused as an argument error", "oversized");
  ssfpn_context_free (context);
  g_clear_error (&error);
  ssfpn_context_options_init (&options);
  options.device = "cpu";

  /* Buffers that each fit in memory but together do not: Linux hands out
   * every allocation, so only a check of their sum turns this into an
   * error instead of the OOM killer. Half of RAM and swap as input
   * images; the activations are many times that. */
  {
    guint64 memory = ssfpn_cpu_meminfo_bytes ("MemTotal")
                     + ssfpn_cpu_meminfo_bytes ("SwapTotal");

    if (memory == 0)
      memory = (guint64) 64 << 30; /* no /proc/meminfo: a large machine */
    int size = (int) (sqrt ((double) memory / 2 / (4096.0 * 3 * 4)) / 32) * 32;

    options.batch = 4096;
    options.height = options.width = MAX (size, 32);
    context = ssfpn_context_new (model, &options, &error);
    check (context == NULL && error != NULL
           && strstr (error->message, "memory available") != NULL,
           "activations beyond the machine's memory are not refused with a "
           "message", "oversized");
    if (error != NULL)
      printf ("# %s\n", error->message);
    ssfpn_context_free (context);
    g_clear_error (&error);
  }

  /* More output rows than an int holds. */
  options.batch = 1;
  options.height = options.width = 1 << 21;
  context = ssfpn_context_new (model, &options, &error);
  check (context == NULL
         && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT),
         "2097152x2097152 is not refused as an argument error", "oversized");
  ssfpn_context_free (context);
  g_clear_error (&error);
  ssfpn_model_unref (model);
}

/* Threads of this process, or -1 without /proc. */
static int
thread_count (void)
{
  GDir *dir = g_dir_open ("/proc/self/task", 0, NULL);
  int n = 0;

  if (dir == NULL)
    return -1;
  while (g_dir_read_name (dir) != NULL)
    n++;
  g_dir_close (dir);
  return n;
}

/* threads=1 holds for the whole frame path, letterbox included: detecting
 * a frame large enough for the letterbox's parallel loop starts no thread.
 * It must run first: a thread pool an earlier test started would stay. */
static void
check_one_thread_frame_path (void)
{
  g_autofree char *model_path = data_path ("baseline.safetensors");
  g_autoptr (GError) error = NULL;
  SsfpnModel *model = ssfpn_model_open (model_path, &error);
  SsfpnContextOptions options;
  SsfpnNmsOptions nms;

  check (model != NULL, error ? error->message : "open", "threads=1");
  if (model == NULL)
    return;
  ssfpn_context_options_init (&options);
  options.device = "cpu";
  options.threads = 1;
  options.height = options.width = 256;
  SsfpnContext *context = ssfpn_context_new (model, &options, &error);
  check (context != NULL, error ? error->message : "context", "threads=1");
  if (context != NULL) {
    int before = thread_count ();
    g_autofree guint8 *pixels = g_malloc0 ((gsize) 3 * 400 * 300);
    SsfpnFrame frame = { .format = SSFPN_FRAME_RGB, .width = 400,
                         .height = 300, .planes = { pixels },
                         .strides = { 3 * 400 } };
    SsfpnDetection results[300];
    int count = 0;
    ssfpn_nms_options_init (&nms);
    check (ssfpn_context_detect (context, &frame, 1, &nms, results, 300,
                                 &count, &error),
           error ? error->message : "detect", "threads=1");
    int after = thread_count ();
    if (before < 0)
      printf ("# threads=1: no /proc/self/task, thread count not checked\n");
    else
      check (after == before, "the frame path started threads", "threads=1");
    ssfpn_context_free (context);
  }
  ssfpn_model_unref (model);
}

static void
write_text (const char *folder, const char *file, const char *text)
{
  g_autofree char *path = g_build_filename (folder, file, NULL);
  g_mkdir_with_parents (folder, 0700);
  g_file_set_contents (path, text, -1, NULL);
}

/* In a container /proc/meminfo shows the host: the memory check also takes
 * the cgroup's limit, the least room over the cgroup and its ancestors,
 * for cgroup v2 and v1 alike. A fake /sys/fs/cgroup tree stands in. */
static void
check_cgroup_room (void)
{
  g_autofree char *root = g_dir_make_tmp ("ssfpn-cgroup-XXXXXX", NULL);
  g_autofree char *v2_parent = g_build_filename (root, "box", NULL);
  g_autofree char *v2_leaf = g_build_filename (root, "box", "job", NULL);
  g_autofree char *v1_leaf = g_build_filename (root, "memory", "job", NULL);

  write_text (v2_parent, "memory.max", "3000000\n");
  write_text (v2_parent, "memory.current", "1000000\n");
  write_text (v2_leaf, "memory.max", "max\n");
  write_text (v2_leaf, "memory.current", "900000\n");
  check (ssfpn_cpu_cgroup_room_bytes ("0::/box/job\n", root) == 2000000,
         "cgroup v2: the parent's limit is not the room", "cgroup");
  check (ssfpn_cpu_cgroup_room_bytes ("0::/elsewhere\n", root)
         == G_MAXUINT64, "cgroup v2 without limit files: limited", "cgroup");

  write_text (v1_leaf, "memory.limit_in_bytes", "500000\n");
  write_text (v1_leaf, "memory.usage_in_bytes", "600000\n");
  check (ssfpn_cpu_cgroup_room_bytes ("4:memory:/job\n0::/\n", root) == 0,
         "cgroup v1: usage over the limit is not 0 room", "cgroup");
  check (ssfpn_cpu_cgroup_room_bytes ("4:cpu,cpuacct:/job\n", root)
         == G_MAXUINT64, "cgroup v1: another controller's path read",
         "cgroup");

  g_autofree char *command = g_strdup_printf ("rm -rf '%s'", root);
  check (system (command) == 0, "cannot remove the fake cgroup tree",
         "cgroup");
}

int
main (void)
{
  g_autofree char *index_path = data_path ("fixtures.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonArray *cases;

  check_one_thread_frame_path ();
  check_cgroup_room ();
  if (!json_parser_load_from_file (parser, index_path, &error)) {
    printf ("FAIL cannot read %s: %s\n", index_path, error->message);
    return 1;
  }
  cases = json_object_get_array_member (
      json_node_get_object (json_parser_get_root (parser)), "cases");
  for (guint i = 0; i < json_array_get_length (cases); i++)
    run_case (json_array_get_object_element (cases, i));
  check_oversized_contexts ();

  check (json_array_get_length (cases) >= 9, "fewer fixture cases than the "
         "suite covers (baseline, ssfpn, ssfpn-seed, spd, csp, leaky, "
         "nonsquare, batch2, f16)", "index");
  printf ("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
