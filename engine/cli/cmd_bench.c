/* `ssfpn bench MODEL [--batch 1,8,32] [--size S] [--iterations N]
 * [--warmup N] [--json]`: network latency per batch size, and NMS time per
 * image measured separately. Pre-processing is not timed: the frame API
 * that does it is not part of this build yet, and it is reported as n/a. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PREPROCESS_NOTE "n/a: the frame pre-processing API is not in this build yet"

typedef struct {
  int batch;
  double median_ms, p99_ms, mean_ms, min_ms;
  double images_per_s;            /* batch / median latency */
  double nms_median_ms, nms_p99_ms; /* per image */
  double detections_mean;         /* per image, on the benchmark input */
} BatchResult;

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

static gboolean
bench_batch (const CliCommand *command, SsfpnModel *model, int batch,
             int height, int width, int iterations, int warmup,
             BatchResult *result, char **device, SsfpnPrecision *precision,
             GError **error)
{
  SsfpnContextOptions options;
  cli_context_options (command, &options);
  options.batch = batch;
  options.height = height;
  options.width = width;
  SsfpnContext *context = ssfpn_context_new (model, &options, error);
  if (context == NULL)
    return FALSE;
  g_free (*device);
  *device = g_strdup (ssfpn_context_device (context));
  *precision = ssfpn_context_precision (context);

  const int rows = ssfpn_context_output_rows (context);
  const int columns = ssfpn_model_output_columns (model);
  const gsize input_count = (gsize) batch * 3 * height * width;
  const gsize output_count = (gsize) batch * rows * columns;
  float *input = g_try_new (float, input_count);
  float *output = g_try_new (float, output_count);
  double *times = g_new (double, iterations);
  SsfpnDetection *dets = g_new (SsfpnDetection, 300);
  gboolean ok = FALSE;

  if (input == NULL || output == NULL)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                   "batch %d at %dx%d: cannot allocate the input and output "
                   "buffers", batch, height, width);
      goto out;
    }
  fill_input (input, input_count);

  for (int i = 0; i < warmup; i++)
    if (!ssfpn_context_run (context, input, output, error))
      goto out;
  for (int i = 0; i < iterations; i++)
    {
      double start = cli_now ();
      if (!ssfpn_context_run (context, input, output, error))
        goto out;
      times[i] = (cli_now () - start) * 1e3;
    }
  result->batch = batch;
  summarise (times, iterations, &result->median_ms, &result->p99_ms,
             &result->mean_ms, &result->min_ms);
  result->images_per_s = batch / (result->median_ms * 1e-3);

  /* NMS with detect.py's defaults on the last output, one image at a
   * time, cycling through the batch. */
  SsfpnNmsOptions nms;
  ssfpn_nms_options_init (&nms);
  const int nc = ssfpn_model_num_classes (model);
  double detections = 0, unused_mean, unused_min;
  for (int i = 0; i < iterations; i++)
    {
      const float *image = output + (gsize) (i % batch) * rows * columns;
      double start = cli_now ();
      detections += ssfpn_nms (image, rows, nc, &nms, dets, 300);
      times[i] = (cli_now () - start) * 1e3;
    }
  summarise (times, iterations, &result->nms_median_ms, &result->nms_p99_ms,
             &unused_mean, &unused_min);
  result->detections_mean = detections / iterations;
  ok = TRUE;

out:
  g_free (dets);
  g_free (times);
  g_free (output);
  g_free (input);
  ssfpn_context_free (context);
  return ok;
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
print_json (const SsfpnModel *model, const char *device, SsfpnPrecision precision,
            int threads, int height, int width, int iterations, int warmup,
            const BatchResult *results, int n_results)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, ssfpn_model_path (model));
  json_builder_set_member_name (b, "device");
  json_builder_add_string_value (b, device);
  json_builder_set_member_name (b, "precision");
  json_builder_add_string_value (b, precision_name (precision));
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
  json_builder_set_member_name (b, "preprocess");
  json_builder_add_string_value (b, PREPROCESS_NOTE);

  json_builder_set_member_name (b, "results");
  json_builder_begin_array (b);
  for (int i = 0; i < n_results; i++)
    {
      const BatchResult *r = &results[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "batch");
      json_builder_add_int_value (b, r->batch);
      json_builder_set_member_name (b, "network");
      json_builder_begin_object (b);
      add_number (b, "median_ms", r->median_ms);
      add_number (b, "p99_ms", r->p99_ms);
      add_number (b, "mean_ms", r->mean_ms);
      add_number (b, "min_ms", r->min_ms);
      add_number (b, "images_per_s", r->images_per_s);
      json_builder_end_object (b);
      json_builder_set_member_name (b, "postprocess_per_image");
      json_builder_begin_object (b);
      add_number (b, "median_ms", r->nms_median_ms);
      add_number (b, "p99_ms", r->nms_p99_ms);
      add_number (b, "detections_mean", r->detections_mean);
      json_builder_end_object (b);
      json_builder_set_member_name (b, "preprocess_per_image");
      json_builder_add_null_value (b);
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
             int threads, int height, int width, int iterations, int warmup,
             const BatchResult *results, int n_results)
{
  printf ("model      %s\n", ssfpn_model_path (model));
  printf ("device     %s, %s, threads %d%s\n", device, precision_name (precision),
          threads, threads == 0 ? " (all cores)" : "");
  printf ("input      %dx%d, %.4g GFLOPs per image\n", height, width,
          ssfpn_model_gflops (model, height, width));
  printf ("timing     %d iterations after %d warm-up runs\n\n", iterations, warmup);
  printf ("%6s  %12s  %12s  %10s  %12s  %12s  %14s\n", "batch", "median ms",
          "p99 ms", "images/s", "NMS med ms", "NMS p99 ms", "pre-processing");
  for (int i = 0; i < n_results; i++)
    {
      const BatchResult *r = &results[i];
      printf ("%6d  %12.3f  %12.3f  %10.1f  %12.4f  %12.4f  %14s\n", r->batch,
              r->median_ms, r->p99_ms, r->images_per_s, r->nms_median_ms,
              r->nms_p99_ms, "n/a");
    }
  printf ("\nNMS times are per image (detect.py defaults, on the output of the "
          "benchmark input).\npre-processing: %s\n", PREPROCESS_NOTE);
}

int
cmd_bench (int argc, char **argv)
{
  gboolean as_json = FALSE;
  char *batch_text = NULL, *size_text = NULL;
  int iterations = 20, warmup = 3;
  const GOptionEntry entries[] = {
    { "batch", 0, 0, G_OPTION_ARG_STRING, &batch_text,
      "batch sizes to time, e.g. 1,8,32 (default 1)", "LIST" },
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
  int status = CLI_EXIT_OK;

  cli_command_init (&command, "bench", "MODEL",
                    "Times the network per batch size (median and p99 latency, "
                    "images/s) and, separately, NMS per image.", entries);
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
  if (!cli_parse_int_list (batch_text ? batch_text : "1", FALSE, &batches,
                           &n_batches))
    {
      status = cli_usage_error (&command, "--batch %s: give positive batch sizes, e.g. 1,8,32",
                                batch_text);
      goto out;
    }
  int height = 0, width = 0;
  if (size_text != NULL && !cli_parse_size (size_text, &height, &width))
    {
      status = cli_usage_error (&command, "--size %s is not S or HxW", size_text);
      goto out;
    }
  if (iterations < 1 || warmup < 0)
    {
      status = cli_usage_error (&command, iterations < 1
                                ? "--iterations must be at least 1"
                                : "--warmup must not be negative");
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
                      warmup, &results[i], &device, &precision, &error))
      {
        g_prefix_error (&error, "batch %d: ", batches[i]);
        goto failed;
      }

  if (as_json)
    print_json (model, device, precision, command.common.threads, height, width,
                iterations, warmup, results, n_batches);
  else
    print_table (model, device, precision, command.common.threads, height, width,
                 iterations, warmup, results, n_batches);
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
