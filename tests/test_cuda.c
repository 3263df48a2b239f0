/* The CUDA backend against the CPU backend on every golden fixture
 * (tests/data/fixtures.json, tools/make_fixtures.py).
 *
 * Without a working GPU only the failure paths run (a clear device error,
 * "auto" falling back to the CPU) and the test then skips with 77. With
 * one, "auto" on a plan too large for the GPU and the CPU names both
 * reasons, and per fixture case:
 *   fp32: boxes within 1e-3 relative, probabilities within 1e-4, the same
 *         detections after NMS; a doubled batch gives each item the same;
 *         a second run (CUDA graph replay) gives the same again;
 *   fp16: boxes of the candidate rows within 1e-2 relative, and at least
 *         99% of the CPU's detections matched (same class, IoU > 0.9).
 * Then the frame path of ssfpn_context_detect:
 *   the letterbox kernel against ssfpn_letterbox_run, bit for bit, for all
 *   8 formats, both matrices and ranges, odd sizes, padded strides, up- and
 *   downscaling;
 *   GPU NMS against ssfpn_nms, bit for bit, on random raw outputs with many
 *   overlaps (shared- and global-memory sorts, agnostic, class filter,
 *   max_det, fewer frames than the batch, a results area that grows);
 *   ssfpn_context_detect on cuda against cpu for a mixed batch of frames.
 */
#include "buildconfig.h"
#include "backend.h"
#include "npy.h"
#include "ssfpn/ssfpn.h"

#if HAVE_CUDA
#include <cuda_runtime_api.h>
#include "cuda/cuda_detect_io.h"
#endif

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
  } else {
    /* A plan no device can hold: "auto" tries the CPU after the GPU and,
     * when that fails too, says why for both. */
    options.device = "auto";
    options.batch = 256;
    options.height = options.width = 4096;
    context = ssfpn_context_new (model, &options, &error);
    CHECK (context == NULL && error != NULL
           && g_str_has_prefix (error->message, "device auto: cuda:0: ")
           && strstr (error->message, "; and the CPU: ") != NULL
           && strstr (error->message, "GiB of activations") != NULL,
           "auto with a plan too large for the GPU and the CPU: \"%s\"",
           error ? error->message : ssfpn_context_device (context));
    ssfpn_context_free (context);
    g_clear_error (&error);
  }
  ssfpn_model_unref (model);
  return works ? NULL : g_strdup (reason->message);
}

/* ---- with a GPU ---------------------------------------------------------- */

static float *
run_augmented (SsfpnModel *model, const char *device, SsfpnPrecision precision,
               SsfpnAugment augment, int batch, int height, int width,
               const float *input, const char *name)
{
  g_autoptr (GError) error = NULL;
  SsfpnContextOptions options;
  SsfpnContext *context;
  float *output;
  gsize count;

  ssfpn_context_options_init (&options);
  options.device = device;
  options.precision = precision;
  options.augment = augment;
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

static float *
run_device (SsfpnModel *model, const char *device, SsfpnPrecision precision,
            int batch, int height, int width, const float *input,
            const char *name)
{
  return run_augmented (model, device, precision, SSFPN_AUGMENT_NONE, batch,
                        height, width, input, name);
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
    /* Every fixture has detections at its threshold (4 to 35 on the CPU):
     * none would make the comparison vacuous. */
    CHECK (total > 0, "%s: the CPU found no detections to compare", name);
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

  /* augment=flips: four views a pass through the device plan, merged on
   * the host; the CPU's flips are checked against PyTorch in
   * test_network.c. */
  if (gpu32 != NULL) {
    float *cpu_flips = run_augmented (model, "cpu", SSFPN_PRECISION_FP32,
                                      SSFPN_AUGMENT_FLIPS, batch, height,
                                      width, input->data, name);
    float *gpu_flips = run_augmented (model, "cuda", SSFPN_PRECISION_FP32,
                                      SSFPN_AUGMENT_FLIPS, batch, height,
                                      width, input->data, name);
    if (cpu_flips != NULL && gpu_flips != NULL) {
      compare_outputs (gpu_flips, cpu_flips, batch * (gsize) rows, columns,
                       -INFINITY, &box_rel, &prob_abs);
      CHECK (box_rel < 1e-3 && prob_abs < 1e-4,
             "%s fp32 flips: box error %.3g relative (limit 1e-3), "
             "probability error %.3g (limit 1e-4)", name, box_rel, prob_abs);
    }
    g_free (cpu_flips);
    g_free (gpu_flips);
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
      /* Zeros between the fixture runs: a replay that skipped the upload,
       * or read the output before the stream was done, would return the
       * previous run's result. */
      float *zeros = g_new0 (float, batch * item_in);
      again = g_new0 (float, batch * item_out);
      for (int r = 0; r < 4; r++) {
        CHECK (ssfpn_context_run (context, r % 2 ? input->data : zeros, again,
                                  &error),
               "%s: run %d: %s", name, r, error ? error->message : "");
        if (r % 2 == 0)
          continue;
        compare_outputs (again, cpu, batch * (gsize) rows, columns, -INFINITY,
                         &box_rel, &prob_abs);
        CHECK (box_rel < 1e-3 && prob_abs < 1e-4,
               "%s fp32, run %d after a run on zeros: box error %.3g, "
               "probability error %.3g", name, r, box_rel, prob_abs);
      }
      g_free (zeros);
      ssfpn_context_free (context);
    }
    g_clear_error (&error);
  }

  if (gpu16 != NULL) {
    /* Probabilities on every row, not only the candidates: broken
     * objectness or class channels elsewhere would make false detections.
     * The limit is generous for fp16 through a whole network. */
    compare_outputs (gpu16, cpu, batch * (gsize) rows, columns, -INFINITY,
                     &box_rel, &prob_abs);
    CHECK (prob_abs < 5e-2, "%s fp16: probability error %.3g on some row "
           "(limit 5e-2)", name, prob_abs);
    compare_outputs (gpu16, cpu, batch * (gsize) rows, columns,
                     nms.conf_threshold, &box_rel, &prob_abs);
    CHECK (box_rel < 1e-2, "%s fp16: box error %.3g relative on the "
           "candidate rows (limit 1e-2)", name, box_rel);
    match_detections (gpu16, cpu, batch, rows, nc, &nms, &total, &matched,
                      &same);
    CHECK (total > 0 && matched >= 0.99 * total, "%s fp16: %d of %d "
           "detections matched (IoU > 0.9, same class); 99%% needed", name,
           matched, total);
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

/* ---- frames and NMS on the GPU -------------------------------------------- */

static guint32
next_random (guint32 *state)
{
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return *state;
}

/* A frame of @format with random samples and rows @pad bytes longer than
 * needed; its bytes are returned for g_free. */
static guint8 *
make_frame (SsfpnFrame *frame, SsfpnFrameFormat format, int width, int height,
            int pad, SsfpnColorMatrix matrix, SsfpnColorRange range,
            guint32 seed)
{
  int chroma_w = (width + 1) / 2, chroma_h = (height + 1) / 2;
  int row_bytes[3] = { 0 }, rows[3] = { height, chroma_h, chroma_h };
  gsize offsets[3] = { 0 }, total = 0;
  int n = ssfpn_frame_format_n_planes (format);
  guint8 *data;

  switch (format) {
    case SSFPN_FRAME_NV12:
      row_bytes[0] = width;
      row_bytes[1] = 2 * chroma_w;
      break;
    case SSFPN_FRAME_I420:
      row_bytes[0] = width;
      row_bytes[1] = row_bytes[2] = chroma_w;
      break;
    case SSFPN_FRAME_RGB:
    case SSFPN_FRAME_BGR:
      row_bytes[0] = 3 * width;
      break;
    default:
      row_bytes[0] = 4 * width;
      break;
  }
  memset (frame, 0, sizeof *frame);
  for (int p = 0; p < n; p++) {
    offsets[p] = total;
    frame->strides[p] = row_bytes[p] + pad;
    total += (gsize) frame->strides[p] * rows[p];
  }
  data = g_malloc (total);
  /* Smooth ramps plus noise: blends of neighbours differ. */
  for (gsize i = 0; i < total; i++)
    data[i] = (guint8) ((i * 7 / 5) + (next_random (&seed) & 63));
  for (int p = 0; p < n; p++)
    frame->planes[p] = data + offsets[p];
  frame->format = format;
  frame->width = width;
  frame->height = height;
  frame->matrix = matrix;
  frame->range = range;
  return data;
}

#if HAVE_CUDA

/* The letterbox kernel's float32 output as (3, H, W), or FALSE. */
static gboolean
gpu_letterbox (const SsfpnFrame *frame, int height, int width, float *out)
{
  g_autoptr (GError) error = NULL;
  CudaDetectIo *io = cuda_detect_io_new (1, 1, 1, NULL, &error);
  gsize pixels = (gsize) height * width;
  float *device = NULL, *nhwc = g_new (float, 3 * pixels);
  cudaStream_t stream = NULL;
  gboolean ok = FALSE;
  CudaView view = { 0 };

  if (io == NULL || cudaStreamCreate (&stream) != cudaSuccess
      || cudaMalloc ((void **) &device, 3 * pixels * sizeof (float))
         != cudaSuccess)
    goto out;
  view.data = device;
  view.dtype = CUDA_DTYPE_F32;
  view.batch = 1;
  view.channels = 3;
  view.height = height;
  view.width = width;
  view.item_stride = 3 * (int64_t) pixels;
  view.pixel_stride = 3;
  if (!cuda_detect_io_upload_frame (io, 0, frame, &view, stream, &error)
      || cudaStreamSynchronize (stream) != cudaSuccess
      || cudaMemcpy (nhwc, device, 3 * pixels * sizeof (float),
                     cudaMemcpyDeviceToHost) != cudaSuccess)
    goto out;
  for (gsize i = 0; i < pixels; i++)
    for (int c = 0; c < 3; c++)
      out[c * pixels + i] = nhwc[3 * i + c];
  ok = TRUE;

out:
  CHECK (ok, "GPU letterbox: %s", error ? error->message
         : cudaGetErrorString (cudaGetLastError ()));
  cudaFree (device);
  if (stream != NULL)
    cudaStreamDestroy (stream);
  cuda_detect_io_free (io);
  g_free (nhwc);
  return ok;
}

static void
check_letterbox_exact (void)
{
  static const int sizes[][2] = { { 37, 23 }, { 301, 157 }, { 128, 96 },
                                  { 1, 5 } };
  const int height = 96, width = 128;
  gsize count = (gsize) 3 * height * width;
  float *cpu = g_new (float, count), *gpu = g_new (float, count);
  int cases = 0, exact = 0;

  for (int format = SSFPN_FRAME_RGB; format <= SSFPN_FRAME_I420; format++) {
    gboolean yuv = format == SSFPN_FRAME_NV12 || format == SSFPN_FRAME_I420;

    for (int variant = 0; variant < (yuv ? 4 : 1); variant++)
      for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
        g_autoptr (GError) error = NULL;
        SsfpnFrame frame;
        guint8 *bytes = make_frame (&frame, format, sizes[s][0], sizes[s][1],
                                    (int) s * 3, variant & 1
                                    ? SSFPN_COLOR_MATRIX_BT709
                                    : SSFPN_COLOR_MATRIX_BT601, variant & 2
                                    ? SSFPN_COLOR_RANGE_FULL
                                    : SSFPN_COLOR_RANGE_LIMITED,
                                    1234u + (guint32) s * 77u + format);
        SsfpnLetterbox *lb = ssfpn_letterbox_new (frame.width, frame.height,
                                                  width, height, &error);
        gsize mismatches = 0;
        double worst = 0.0;

        cases++;
        if (lb == NULL || !ssfpn_letterbox_run (lb, &frame, cpu, &error)
            || !gpu_letterbox (&frame, height, width, gpu)) {
          CHECK (FALSE, "letterbox format %d %dx%d: %s", format, frame.width,
                 frame.height, error ? error->message : "GPU run failed");
        } else {
          for (gsize i = 0; i < count; i++)
            if (cpu[i] != gpu[i]) {
              mismatches++;
              worst = MAX (worst, fabs ((double) cpu[i] - gpu[i]));
            }
          CHECK (mismatches == 0, "letterbox format %d variant %d %dx%d: %"
                 G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " values differ from "
                 "the CPU's (largest %.3g)", format, variant, frame.width,
                 frame.height, mismatches, count, worst);
          exact += mismatches == 0;
        }
        ssfpn_letterbox_free (lb);
        g_free (bytes);
      }
  }
  printf ("letterbox: %d of %d frame cases bit-exact against the CPU\n",
          exact, cases);
  g_free (cpu);
  g_free (gpu);
}

/* Random raw output rows (cx, cy, w, h, obj, classes) crowded into a small
 * area so that boxes overlap a lot, with some exact score ties. */
static void
fill_raw_output (float *output, int rows, int nc, guint32 seed)
{
  int columns = nc + 5;

  for (int r = 0; r < rows; r++) {
    float *row = output + (gsize) r * columns;

    if (r > 0 && next_random (&seed) % 16 == 0) {
      /* A tie: the same scores as the previous row, another box. */
      memcpy (row + 4, row + 4 - columns, (nc + 1) * sizeof (float));
    } else {
      for (int k = 4; k < columns; k++)
        row[k] = (float) (next_random (&seed) % 10000) / 10000.0f;
    }
    row[0] = (float) (next_random (&seed) % 20000) / 100.0f;
    row[1] = (float) (next_random (&seed) % 20000) / 100.0f;
    row[2] = 5.0f + (float) (next_random (&seed) % 5500) / 100.0f;
    row[3] = 5.0f + (float) (next_random (&seed) % 5500) / 100.0f;
  }
}

static void
check_nms_exact (void)
{
  const int batch = 3, nc = 4, columns = nc + 5;
  /* 40000: at conf 0.001 more candidates than YOLOv5's 30000 cut. */
  const int rows_options[] = { 700, 6000, 40000 };
  const int wanted_classes[] = { 1, 3 };

  for (guint ri = 0; ri < G_N_ELEMENTS (rows_options); ri++) {
    const int rows = rows_options[ri];
    gsize count = (gsize) batch * rows * columns;
    float *output = g_new (float, count), *device = NULL;
    g_autoptr (GError) error = NULL;
    CudaDetectIo *io = NULL;
    cudaStream_t stream = NULL;

    /* Every frame its own rows: per-frame offsets are what batching tests. */
    for (int f = 0; f < batch; f++)
      fill_raw_output (output + (gsize) f * rows * columns, rows, nc,
                       99u + rows + 1000u * f);
    if (cudaStreamCreate (&stream) != cudaSuccess
        || cudaMalloc ((void **) &device, count * sizeof (float)) != cudaSuccess
        || cudaMemcpy (device, output, count * sizeof (float),
                       cudaMemcpyHostToDevice) != cudaSuccess
        || (io = cuda_detect_io_new (batch, rows, nc, device, &error)) == NULL) {
      CHECK (FALSE, "NMS setup: %s", error ? error->message
             : cudaGetErrorString (cudaGetLastError ()));
      goto next;
    }
    for (int variant = 0; variant < 7; variant++) {
      SsfpnNmsOptions nms;
      int n_frames = batch, capacity = MAX_DETECTIONS;
      gboolean grown;
      SsfpnDetection *gpu, cpu[1000];
      int counts[3];
      const char *what[] = { "defaults", "conf 0.001", "agnostic",
                             "classes 1,3", "max_det 7", "2 of 3 frames",
                             "max_det 0, room 1000" };

      ssfpn_nms_options_init (&nms);
      switch (variant) {
        case 1: nms.conf_threshold = 0.001f; break;
        case 2: nms.agnostic = TRUE; break;
        case 3: nms.classes = wanted_classes; nms.n_classes = 2; break;
        case 4: nms.max_detections = 7; break;
        case 5: n_frames = 2; nms.iou_threshold = 0.7f; break;
        case 6: nms.max_detections = 0; nms.conf_threshold = 0.01f;
                capacity = 1000; break;
        default: break;
      }
      gpu = g_new0 (SsfpnDetection, (gsize) batch * capacity);
      if (!cuda_detect_io_set_nms (io, &nms, n_frames, capacity, &grown,
                                   &error)
          || !cuda_detect_io_enqueue (io, stream, &error)
          || cudaStreamSynchronize (stream) != cudaSuccess) {
        CHECK (FALSE, "NMS %s: %s", what[variant], error ? error->message
               : cudaGetErrorString (cudaGetLastError ()));
        g_free (gpu);
        continue;
      }
      CHECK (grown == (variant == 6), "NMS %s: results area grown %d",
             what[variant], grown);
      cuda_detect_io_results (io, n_frames, gpu, capacity, counts);
      for (int f = 0; f < n_frames; f++) {
        int n = ssfpn_nms (output + (gsize) f * rows * columns, rows, nc,
                           &nms, cpu, capacity);
        int differ = n != counts[f];

        for (int k = 0; !differ && k < n; k++) {
          const SsfpnDetection *a = &cpu[k], *b = &gpu[(gsize) f * capacity + k];
          differ = a->x1 != b->x1 || a->y1 != b->y1 || a->x2 != b->x2
                   || a->y2 != b->y2 || a->confidence != b->confidence
                   || a->class_id != b->class_id;
        }
        CHECK (!differ, "NMS %s, %d rows, frame %d: GPU kept %d, CPU %d, "
               "or they differ", what[variant], rows, f, counts[f], n);
        if (f == 0)
          printf ("NMS %-22s %5d rows: %3d detections, %s\n", what[variant],
                  rows, n, differ ? "DIFFERENT" : "identical");
      }
      g_free (gpu);
    }

  next:
    cuda_detect_io_free (io);
    cudaFree (device);
    if (stream != NULL)
      cudaStreamDestroy (stream);
    g_free (output);
  }
}

#endif /* HAVE_CUDA */

/* ssfpn_context_detect on cuda against cpu: a batch of differently sized
 * frames of different formats, called twice (staging reused, graph
 * replayed), then with a larger frame (staging grown). */
static void
check_context_detect (JsonArray *cases, SsfpnPrecision gpu_precision)
{
  const gboolean fp16 = gpu_precision == SSFPN_PRECISION_FP16;
  int matched_total = 0, gpu_total = 0;
  g_autoptr (GError) error = NULL;
  SsfpnModel *model = any_model (cases);
  SsfpnNmsOptions nms;
  SsfpnFrame nv12, bgrx, i420;
  guint8 *bytes[3];
  const char *devices[2] = { "cpu", "cuda" };
  SsfpnDetection *found[2][3];
  int counts[2][3][2];

  if (model == NULL)
    return;
  ssfpn_nms_options_init (&nms);
  nms.conf_threshold = 0.05f;
  bytes[0] = make_frame (&nv12, SSFPN_FRAME_NV12, 641, 359, 64,
                         SSFPN_COLOR_MATRIX_BT709, SSFPN_COLOR_RANGE_LIMITED,
                         7u);
  bytes[1] = make_frame (&bgrx, SSFPN_FRAME_BGRX, 301, 157, 0,
                         SSFPN_COLOR_MATRIX_BT601, SSFPN_COLOR_RANGE_FULL, 8u);
  bytes[2] = make_frame (&i420, SSFPN_FRAME_I420, 1281, 721, 3,
                         SSFPN_COLOR_MATRIX_BT601, SSFPN_COLOR_RANGE_LIMITED,
                         9u);
  memset (found, 0, sizeof found);
  memset (counts, 0, sizeof counts);
  for (int d = 0; d < 2; d++) {
    SsfpnContextOptions options;
    SsfpnContext *context;

    ssfpn_context_options_init (&options);
    options.device = devices[d];
    /* The CPU in fp32 is the reference for both GPU precisions. */
    options.precision = d == 0 ? SSFPN_PRECISION_FP32 : gpu_precision;
    options.batch = 2;
    options.height = 128;
    options.width = 160;
    context = ssfpn_context_new (model, &options, &error);
    CHECK (context != NULL, "detect on %s: %s", devices[d],
           error ? error->message : "");
    g_clear_error (&error);
    if (context == NULL)
      continue;
    /* Calls 0 and 1 reuse the staging and replay; call 2's second frame
     * is larger than any that slot has seen, so its staging grows. */
    for (int call = 0; call < 3; call++) {
      SsfpnFrame frames[2] = { nv12, call < 2 ? bgrx : i420 };

      found[d][call] = g_new0 (SsfpnDetection, 2 * MAX_DETECTIONS);
      CHECK (ssfpn_context_detect (context, frames, 2, &nms, found[d][call],
                                   MAX_DETECTIONS, counts[d][call], &error),
             "detect on %s, call %d: %s", devices[d], call,
             error ? error->message : "");
      g_clear_error (&error);
    }
    ssfpn_context_free (context);
  }

  int cpu_total = 0;
  for (int call = 0; call < 3 && found[1][call] != NULL; call++)
    for (int f = 0; f < 2; f++) {
      int n_cpu = counts[0][call][f], n_gpu = counts[1][call][f];
      double worst = 0.0, worst_conf = 0.0;
      gboolean same = n_cpu == n_gpu;

      cpu_total += n_cpu;
      gpu_total += n_gpu;
      if (fp16) {
        /* fp16 moves boxes and confidences a little and can reorder or
         * swap detections near the threshold: matched, not compared. */
        for (int k = 0; k < n_cpu; k++) {
          const SsfpnDetection *a = &found[0][call][f * MAX_DETECTIONS + k];
          for (int j = 0; j < n_gpu; j++) {
            const SsfpnDetection *b = &found[1][call][f * MAX_DETECTIONS + j];
            if (a->class_id == b->class_id && iou (a, b) > 0.9) {
              matched_total++;
              break;
            }
          }
        }
        printf ("detect fp16 call %d frame %d: cpu %d, cuda %d detections\n",
                call, f, n_cpu, n_gpu);
        continue;
      }

      for (int k = 0; same && k < n_cpu; k++) {
        const SsfpnDetection *a = &found[0][call][f * MAX_DETECTIONS + k];
        const SsfpnDetection *b = &found[1][call][f * MAX_DETECTIONS + k];
        float av[4] = { a->x1, a->y1, a->x2, a->y2 };
        float bv[4] = { b->x1, b->y1, b->x2, b->y2 };

        same &= a->class_id == b->class_id;
        worst_conf = MAX (worst_conf, fabs ((double) a->confidence
                                            - b->confidence));
        for (int i = 0; i < 4; i++)
          worst = MAX (worst, fabs ((double) av[i] - bv[i])
                              / MAX (fabs ((double) av[i]), 1.0));
      }
      CHECK (same && worst < 1e-3 && worst_conf < 1e-4,
             "context detect call %d frame %d: cpu %d detections, cuda %d, "
             "box error %.3g, confidence error %.3g", call, f, n_cpu, n_gpu,
             worst, worst_conf);
      printf ("detect call %d frame %d: %d detections, box error %.2e\n",
              call, f, n_cpu, worst);
    }
  /* Agreement on no detections at all would prove nothing. */
  CHECK (found[1][0] == NULL || cpu_total > 0, "context detect: the CPU "
         "found no detection in any frame, so nothing was compared (lower "
         "the threshold or use another model)");
  if (fp16 && found[1][0] != NULL)
    CHECK (matched_total >= 0.99 * cpu_total
           && abs (gpu_total - cpu_total) <= cpu_total / 100 + 1,
           "context detect fp16: %d of the CPU's %d detections matched (IoU "
           "> 0.9, same class; 99%% needed), cuda found %d", matched_total,
           cpu_total, gpu_total);
  for (int d = 0; d < 2; d++)
    for (int call = 0; call < 3; call++)
      g_free (found[d][call]);
  for (int i = 0; i < 3; i++)
    g_free (bytes[i]);
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
  /* A failed graph capture would otherwise fall back to eager runs, and
   * every replay check here would pass without a graph. SSFPN_CUDA_GRAPH=0
   * (eager, for compute-sanitizer) is kept when set. */
  g_setenv ("SSFPN_CUDA_GRAPH", "require", FALSE);
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
#if HAVE_CUDA
  check_letterbox_exact ();
  check_nms_exact ();
#endif
  check_context_detect (cases, SSFPN_PRECISION_FP32);
  /* fp16 is the CUDA default: the path ssfpndetect takes. */
  check_context_detect (cases, SSFPN_PRECISION_FP16);
  return finish (0);
}
