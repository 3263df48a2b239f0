/* `ssfpn bench MODEL [--batch 1,8,32] [--size S] [--iterations N]
 * [--warmup N] [--json]`: per batch size, three scopes, each timed on its
 * own and labelled:
 *   A  the network alone;
 *   B  the network plus Detect decode and NMS;
 *   C  1920x1080 NV12 frames in host memory to detections in host memory
 *      (ssfpn_context_detect: letterbox, network, NMS, boxes to frame
 *      pixels);
 *   P  pre-processing alone: the same frames letterboxed into the float
 *      input on the host, as C does on the CPU.
 * A backend that can run on input already on its device (the CUDA backend)
 * is timed that way for A and B, with no host copies; the CPU backend times
 * A as ssfpn_context_run and B as that plus ssfpn_nms per image. NMS alone
 * per image on the host is reported as well. */
#include "cli.h"
#include "augment.h"
#include "context.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_WIDTH 1920
#define FRAME_HEIGHT 1080
#define MAX_DETECTIONS 300
#define MAX_ITERATIONS 1000000

enum { SCOPE_A, SCOPE_B, SCOPE_C, SCOPE_P, N_SCOPES };

static const char *const scope_ids[N_SCOPES] = { "A", "B", "C", "P" };

typedef struct {
  double median_ms, p99_ms, mean_ms, min_ms;
  double images_per_s;            /* batch / median latency */
} Timing;

typedef struct {
  int batch;
  Timing scopes[N_SCOPES];        /* per batch */
  double nms_median_ms, nms_p99_ms; /* host NMS alone, per image */
  double detections_mean;         /* per image, host NMS on the bench input */
  double frame_detections_mean;   /* per frame, scope C */
} BatchResult;

/* What one timed step needs. */
typedef struct {
  SsfpnContext *context;
  gboolean resident;              /* A and B through plan_run_resident */
  int batch, rows, columns, nc;
  float *input, *output;
  SsfpnFrame *frames;             /* (batch), all the same picture */
  SsfpnNmsOptions nms;
  SsfpnDetection *detections;     /* (batch, MAX_DETECTIONS) */
  int *counts;                    /* (batch) */
} BenchState;

typedef gboolean (*BenchStep) (BenchState *state, GError **error);
static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Sorts @values; median, the nearest-rank 99th percentile, mean and min. */
static void
summarise (double *values, int n, double *median, double *p99, double *mean,
           double *min)
{
  qsort (values, n, sizeof *values, compare_doubles);
  *median = n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
  int rank = (int) ceil (0.99 * n);
  *p99 = values[CLAMP (rank, 1, n) - 1];
  double sum = 0;
  for (int i = 0; i < n; i++)
    sum += values[i];
  *mean = sum / n;
  *min = values[0];
}

/* A fixed pseudo-random image batch in [0, 1), the same on every run. */
static void
fill_input (float *input, gsize count)
{
  guint32 state = 2463534242u;
  for (gsize i = 0; i < count; i++)
    {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      input[i] = (float) (state >> 8) / 16777216.0f;
    }
}

/* A synthetic 1080p NV12 picture (limited range BT.709, as cameras send):
 * a gradient with noise, so the letterbox reads varied samples. */
static guint8 *
make_nv12 (SsfpnFrame *frame)
{
  const int chroma_rows = (FRAME_HEIGHT + 1) / 2;
  gsize luma = (gsize) FRAME_WIDTH * FRAME_HEIGHT;
  guint8 *data = g_malloc (luma + (gsize) FRAME_WIDTH * chroma_rows);
  guint32 state = 88172645u;

  for (int y = 0; y < FRAME_HEIGHT + chroma_rows; y++)
    for (int x = 0; x < FRAME_WIDTH; x++)
      {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        data[(gsize) y * FRAME_WIDTH + x]
          = (guint8) (16 + (x + y) % 200 + (state & 15));
      }
  memset (frame, 0, sizeof *frame);
  frame->format = SSFPN_FRAME_NV12;
  frame->width = FRAME_WIDTH;
  frame->height = FRAME_HEIGHT;
  frame->planes[0] = data;
  frame->planes[1] = data + luma;
  frame->strides[0] = frame->strides[1] = FRAME_WIDTH;
  frame->matrix = SSFPN_COLOR_MATRIX_BT709;
  frame->range = SSFPN_COLOR_RANGE_LIMITED;
  return data;
}

static gboolean
step_network (BenchState *s, GError **error)
{
  if (s->resident)
    return s->context->backend->plan_run_resident (s->context->plan, NULL,
                                                   error);
  return ssfpn_context_run (s->context, s->input, s->output, error);
}

static gboolean
step_network_nms (BenchState *s, GError **error)
{
  if (s->resident)
    return s->context->backend->plan_run_resident (s->context->plan, &s->nms,
                                                   error);
  if (!ssfpn_context_run (s->context, s->input, s->output, error))
    return FALSE;
  for (int i = 0; i < s->batch; i++)
    s->counts[i] = ssfpn_nms (s->output + (gsize) i * s->rows * s->columns,
                              s->rows, s->nc, &s->nms,
                              s->detections + (gsize) i * MAX_DETECTIONS,
                              MAX_DETECTIONS);
  return TRUE;
}

static gboolean
step_frames (BenchState *s, GError **error)
{
  return ssfpn_context_detect (s->context, s->frames, s->batch, &s->nms,
                               s->detections, MAX_DETECTIONS, s->counts,
                               error);
}

static gboolean
step_letterbox (BenchState *s, GError **error)
{
  return ssfpn_context_letterbox_on_host (s->context, s->frames, s->batch,
                                          error);
}

static gboolean
time_scope (BenchState *state, BenchStep step, int iterations, int warmup,
            double *times, Timing *timing, GError **error)
{
  for (int i = 0; i < warmup; i++)
    if (!step (state, error))
      return FALSE;
  for (int i = 0; i < iterations; i++)
    {
      double start = cli_now ();
      if (!step (state, error))
        return FALSE;
      times[i] = (cli_now () - start) * 1e3;
    }
  summarise (times, iterations, &timing->median_ms, &timing->p99_ms,
             &timing->mean_ms, &timing->min_ms);
  timing->images_per_s = state->batch / (timing->median_ms * 1e-3);
  return TRUE;
}

static gboolean
bench_batch (const CliCommand *command, SsfpnModel *model, int batch,
             int height, int width, int iterations, int warmup,
             BatchResult *result, char **device, SsfpnPrecision *precision,
             gboolean *resident, GError **error)
{
  SsfpnContextOptions options;
  BenchState s = { 0 };
  static const BenchStep steps[N_SCOPES] = { step_network, step_network_nms,
                                             step_frames, step_letterbox };
  double *times = g_new (double, iterations);
  guint8 *picture = NULL;
  gboolean ok = FALSE;

  cli_context_options (command, &options);
  options.batch = batch;
  options.height = height;
  options.width = width;
  s.context = ssfpn_context_new (model, &options, error);
  if (s.context == NULL)
    goto out;
  g_free (*device);
  *device = g_strdup (ssfpn_context_device (s.context));
  *precision = ssfpn_context_precision (s.context);
  /* The resident path runs one view; augmentation takes the host one. */
  s.resident = s.context->backend->plan_run_resident != NULL
      && ssfpn_context_augment (s.context) == SSFPN_AUGMENT_NONE;
  *resident = s.resident;
  s.batch = batch;
  s.rows = ssfpn_context_output_rows (s.context);
  s.columns = ssfpn_model_output_columns (model);
  s.nc = ssfpn_model_num_classes (model);
  ssfpn_nms_options_init (&s.nms);

  const gsize input_count = (gsize) batch * 3 * height * width;
  const gsize output_count = (gsize) batch * s.rows * s.columns;
  s.input = g_try_new (float, input_count);
  s.output = g_try_new (float, output_count);
  s.detections = g_new (SsfpnDetection, (gsize) batch * MAX_DETECTIONS);
  s.counts = g_new0 (int, batch);
  s.frames = g_new (SsfpnFrame, batch);
  if (s.input == NULL || s.output == NULL)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                   "batch %d at %dx%d: cannot allocate the input and output "
                   "buffers", batch, height, width);
      goto out;
    }
  fill_input (s.input, input_count);
  picture = make_nv12 (&s.frames[0]);
  for (int i = 1; i < batch; i++)
    s.frames[i] = s.frames[0];

  /* Puts the bench input on the device for the resident scopes, and gives
   * the host NMS its output. */
  if (!ssfpn_context_run (s.context, s.input, s.output, error))
    goto out;
  result->batch = batch;
  for (int scope = 0; scope < N_SCOPES; scope++)
    if (!time_scope (&s, steps[scope], iterations, warmup, times,
                     &result->scopes[scope], error))
      {
        g_prefix_error (error, "scope %s: ", scope_ids[scope]);
        goto out;
      }
  double frame_detections = 0;
  for (int i = 0; i < batch; i++)
    frame_detections += s.counts[i];
  result->frame_detections_mean = frame_detections / batch;

  /* Host NMS alone with detect.py's defaults, one image at a time, cycling
   * through the batch's raw output. */
  double detections = 0, unused_mean, unused_min;
  for (int i = 0; i < iterations; i++)
    {
      const float *image = s.output + (gsize) (i % batch) * s.rows * s.columns;
      double start = cli_now ();
      detections += ssfpn_nms (image, s.rows, s.nc, &s.nms, s.detections,
                               MAX_DETECTIONS);
      times[i] = (cli_now () - start) * 1e3;
    }
  summarise (times, iterations, &result->nms_median_ms, &result->nms_p99_ms,
             &unused_mean, &unused_min);
  result->detections_mean = detections / iterations;
  ok = TRUE;

out:
  g_free (picture);
  g_free (s.frames);
  g_free (s.counts);
  g_free (s.detections);
  g_free (times);
  g_free (s.output);
  g_free (s.input);
  if (s.context != NULL)
    ssfpn_context_free (s.context);
  return ok;
}

/* What each scope timed, for the table and the JSON. */
static const char *
scope_name (int scope, gboolean resident)
{
  switch (scope)
    {
    case SCOPE_A:
      return resident
        ? "network only: input already on the device, CUDA graph replay"
        : "network only: ssfpn_context_run, float32 input and output in host memory";
    case SCOPE_B:
      return resident
        ? "network + Detect decode + NMS on the device, detections to host memory"
        : "network (ssfpn_context_run) + NMS on the host for every image";
    case SCOPE_C:
      return "1920x1080 NV12 frames in host memory to detections in host "
             "memory (ssfpn_context_detect)";
    default:
      return resident
        ? "pre-processing alone: the frames letterboxed into the float input "
          "on the host (C letterboxes on the device instead)"
        : "pre-processing alone: the frames letterboxed into the float input "
          "on the host, as C does";
    }
}

static const char *
precision_name (SsfpnPrecision precision)
{
  return precision == SSFPN_PRECISION_FP16 ? "fp16" : "fp32";
}

static void
add_number (JsonBuilder *b, const char *name, double value)
{
  json_builder_set_member_name (b, name);
  /* Microsecond resolution is plenty and keeps the JSON readable. */
  json_builder_add_double_value (b, round (value * 1e4) / 1e4);
}

static void
add_timing (JsonBuilder *b, const Timing *t)
{
  add_number (b, "median_ms", t->median_ms);
  add_number (b, "p99_ms", t->p99_ms);
  add_number (b, "mean_ms", t->mean_ms);
  add_number (b, "min_ms", t->min_ms);
  add_number (b, "images_per_s", t->images_per_s);
}

static void
print_json (const SsfpnModel *model, const char *device, SsfpnPrecision precision,
            SsfpnAugment augment,
            int threads, int height, int width, int iterations, int warmup,
            gboolean resident, const BatchResult *results, int n_results)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, ssfpn_model_path (model));
  json_builder_set_member_name (b, "device");
  json_builder_add_string_value (b, device);
  json_builder_set_member_name (b, "precision");
  json_builder_add_string_value (b, precision_name (precision));
  json_builder_set_member_name (b, "augment");
  json_builder_add_string_value (b, ssfpn_augment_name (augment));
  json_builder_set_member_name (b, "threads");
  json_builder_add_int_value (b, threads);
  json_builder_set_member_name (b, "cores");
  json_builder_add_int_value (b, g_get_num_processors ());
  json_builder_set_member_name (b, "size");
  json_builder_begin_array (b);
  json_builder_add_int_value (b, height);
  json_builder_add_int_value (b, width);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "iterations");
  json_builder_add_int_value (b, iterations);
  json_builder_set_member_name (b, "warmup");
  json_builder_add_int_value (b, warmup);
  json_builder_set_member_name (b, "gflops_per_image");
  json_builder_add_double_value (b, ssfpn_model_gflops (model, height, width));
  json_builder_set_member_name (b, "frame");
  json_builder_add_string_value (b, "NV12 1920x1080");
  /* What each scope times, by id. */
  json_builder_set_member_name (b, "scope_names");
  json_builder_begin_object (b);
  for (int scope = 0; scope < N_SCOPES; scope++)
    {
      json_builder_set_member_name (b, scope_ids[scope]);
      json_builder_add_string_value (b, scope_name (scope, resident));
    }
  json_builder_end_object (b);

  json_builder_set_member_name (b, "results");
  json_builder_begin_array (b);
  for (int i = 0; i < n_results; i++)
    {
      const BatchResult *r = &results[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "batch");
      json_builder_add_int_value (b, r->batch);
      json_builder_set_member_name (b, "scopes");
      json_builder_begin_object (b);
      for (int scope = 0; scope < N_SCOPES; scope++)
        {
          json_builder_set_member_name (b, scope_ids[scope]);
          json_builder_begin_object (b);
          add_timing (b, &r->scopes[scope]);
          json_builder_end_object (b);
        }
      json_builder_end_object (b);
      /* Scope A again under its older name, for existing readers. */
      json_builder_set_member_name (b, "network");
      json_builder_begin_object (b);
      add_timing (b, &r->scopes[SCOPE_A]);
      json_builder_end_object (b);
      json_builder_set_member_name (b, "postprocess_per_image");
      json_builder_begin_object (b);
      add_number (b, "median_ms", r->nms_median_ms);
      add_number (b, "p99_ms", r->nms_p99_ms);
      add_number (b, "detections_mean", r->detections_mean);
      json_builder_end_object (b);
      add_number (b, "frame_detections_mean", r->frame_detections_mean);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  JsonNode *root = json_builder_get_root (b);
  cli_print_json (stdout, root);
  json_node_unref (root);
}

static void
print_table (const SsfpnModel *model, const char *device, SsfpnPrecision precision,
             SsfpnAugment augment,
             int threads, int height, int width, int iterations, int warmup,
             gboolean resident, const BatchResult *results, int n_results)
{
  printf ("model      %s\n", ssfpn_model_path (model));
  printf ("device     %s, %s, threads %d%s\n", device, precision_name (precision),
          threads, threads == 0 ? " (all cores)" : "");
  printf ("input      %dx%d, %.4g GFLOPs per image", height, width,
          ssfpn_model_gflops (model, height, width));
  if (augment != SSFPN_AUGMENT_NONE)
    printf (", augment %s: %d passes per image", ssfpn_augment_name (augment),
            ssfpn_augment_view_count (augment));
  printf ("\n");
  printf ("timing     %d iterations after %d warm-up runs, per scope\n",
          iterations, warmup);
  for (int scope = 0; scope < N_SCOPES; scope++)
    printf ("scope %s    %s\n", scope_ids[scope], scope_name (scope, resident));
  printf ("\n%6s  %5s  %12s  %12s  %10s\n", "batch", "scope", "median ms",
          "p99 ms", "images/s");
  for (int i = 0; i < n_results; i++)
    for (int scope = 0; scope < N_SCOPES; scope++)
      {
        const Timing *t = &results[i].scopes[scope];
        printf ("%6d  %5s  %12.3f  %12.3f  %10.1f\n", results[i].batch,
                scope_ids[scope], t->median_ms, t->p99_ms, t->images_per_s);
      }
  printf ("\nLatency is per batch. NMS alone on the host, per image "
          "(detect.py defaults):\n");
  for (int i = 0; i < n_results; i++)
    printf ("  batch %d: median %.4f ms, p99 %.4f ms, %.1f detections\n",
            results[i].batch, results[i].nms_median_ms, results[i].nms_p99_ms,
            results[i].detections_mean);
}

int
cmd_bench (int argc, char **argv)
{
  gboolean as_json = FALSE;
  char *batch_text = NULL, *size_text = NULL;
  int iterations = 20, warmup = 3;
  const GOptionEntry entries[] = {
    { "batch", 0, 0, G_OPTION_ARG_STRING, &batch_text,
      "batch sizes to time (default 1,8,32)", "LIST" },
    { "size", 0, 0, G_OPTION_ARG_STRING, &size_text,
      "input S x S or HxW (default: the model's imgsz)", "S" },
    { "iterations", 0, 0, G_OPTION_ARG_INT, &iterations,
      "timed runs per batch size (default 20)", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup,
      "untimed runs first (default 3)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &as_json, "one JSON object", NULL },
    G_OPTION_ENTRY_NULL
  };
  CliCommand command;
  SsfpnModel *model = NULL;
  GError *error = NULL;
  int *batches = NULL, n_batches = 0;
  BatchResult *results = NULL;
  char *device = NULL;
  SsfpnPrecision precision = SSFPN_PRECISION_FP32;
  gboolean resident = FALSE;
  int status = CLI_EXIT_OK;

  cli_command_init (&command, "bench", "MODEL",
                    "Times four scopes per batch size (median and p99 latency, "
                    "images/s): A the network, B network and NMS, C 1080p "
                    "NV12 frames in host memory to detections, P their "
                    "letterbox alone.", entries);
  if (!cli_command_parse (&command, &argc, &argv))
    {
      status = CLI_EXIT_USAGE;
      goto out;
    }
  if (argc != 2)
    {
      status = argc < 2 ? cli_usage_error (&command, "MODEL is missing")
        : cli_usage_error (&command, "one MODEL only, got %d arguments", argc - 1);
      goto out;
    }
  if (!cli_parse_int_list (batch_text ? batch_text : "1,8,32", FALSE, &batches,
                           &n_batches))
    {
      status = cli_usage_error (&command, "--batch %s: give positive batch sizes, e.g. 1,8,32",
                                batch_text);
      goto out;
    }
  for (int i = 0; i < n_batches; i++)
    if (batches[i] > SSFPN_MAX_BATCH)
      {
        status = cli_usage_error (&command, "--batch %d is more than the "
                                  "engine takes (%d)", batches[i],
                                  SSFPN_MAX_BATCH);
        goto out;
      }
  int height = 0, width = 0;
  if (size_text != NULL && !cli_parse_size (size_text, &height, &width))
    {
      status = cli_usage_error (&command, "--size %s is not S or HxW", size_text);
      goto out;
    }
  /* A million timed runs is days of the smallest network: more is a typo,
   * and each run's time is kept. */
  if (iterations < 1 || iterations > MAX_ITERATIONS || warmup < 0
      || warmup > MAX_ITERATIONS)
    {
      status = cli_usage_error (&command, iterations < 1
                                ? "--iterations must be at least 1"
                                : warmup < 0 ? "--warmup must not be negative"
                                : "--iterations and --warmup take at most "
                                G_STRINGIFY (MAX_ITERATIONS));
      goto out;
    }

  model = cli_open_model (argv[1], &error);
  if (model == NULL)
    goto failed;
  if (size_text == NULL)
    ssfpn_model_input_size (model, &height, &width);
  int stride = ssfpn_model_max_stride (model);
  if (height % stride != 0 || width % stride != 0)
    {
      status = cli_usage_error (&command, "--size %dx%d is not a multiple of the "
                                "model's largest stride %d", height, width, stride);
      goto out;
    }

  results = g_new0 (BatchResult, n_batches);
  for (int i = 0; i < n_batches; i++)
    if (!bench_batch (&command, model, batches[i], height, width, iterations,
                      warmup, &results[i], &device, &precision, &resident,
                      &error))
      {
        /* The engine's plan errors name the batch already. */
        if (!g_str_has_prefix (error->message, "batch "))
          g_prefix_error (&error, "batch %d: ", batches[i]);
        goto failed;
      }

  if (as_json)
    print_json (model, device, precision, command.common.augment,
                command.common.threads, height, width,
                iterations, warmup, resident, results, n_batches);
  else
    print_table (model, device, precision, command.common.augment,
                 command.common.threads, height, width,
                 iterations, warmup, resident, results, n_batches);
  goto out;

failed:
  status = cli_fail (error);
out:
  if (model)
    ssfpn_model_unref (model);
  g_free (device);
  g_free (results);
  g_free (batches);
  g_free (batch_text);
  g_free (size_text);
  cli_command_clear (&command);
  return status;
}
