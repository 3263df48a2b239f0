/* `ssfpn run MODEL --input IN.npy --output OUT.npy [--detections OUT.json]`:
 * the raw network output for a batch held in a .npy file, and optionally
 * the detections after NMS. */
#include "cli.h"
#include "npy.h"

#include <errno.h>
#include <string.h>

typedef struct {
  char *input;
  char *output;
  char *detections;
  double conf;
  double iou;
  int max_det;
  gboolean agnostic;
  char *classes_text;
  int *classes;
  int n_classes;
} RunOptions;

/* The input must be what the network takes: float32 (N, 3, H, W) with H
 * and W multiples of the largest stride. */
static gboolean
check_input (const NpyArray *input, const char *path, int stride,
             GError **error)
{
  g_autofree char *shape = npy_shape_to_string (input->rank, input->shape);

  if (input->rank != 4)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "%s: shape %s has rank %d; expected (N, 3, H, W)",
                   path, shape, input->rank);
      return FALSE;
    }
  if (input->shape[1] != 3)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "%s: shape %s has %" G_GINT64_FORMAT " channels; expected "
                   "(N, 3, H, W) with 3 RGB channels", path, shape,
                   input->shape[1]);
      return FALSE;
    }
  if (input->shape[0] < 1 || input->shape[2] < 1 || input->shape[3] < 1)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "%s: shape %s is empty", path, shape);
      return FALSE;
    }
  if (input->shape[0] > G_MAXINT || input->shape[2] > G_MAXINT
      || input->shape[3] > G_MAXINT)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "%s: shape %s is too large", path, shape);
      return FALSE;
    }
  if (input->shape[0] > SSFPN_MAX_BATCH)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "%s: shape %s: a batch of %" G_GINT64_FORMAT " is more "
                   "than the engine takes (%d)", path, shape, input->shape[0],
                   SSFPN_MAX_BATCH);
      return FALSE;
    }
  if (input->shape[2] % stride != 0 || input->shape[3] % stride != 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "%s: shape %s: H and W must be multiples of the model's "
                   "largest stride %d", path, shape, stride);
      return FALSE;
    }
  return TRUE;
}

/* One JSON line per batch item, to @path or stdout for "-". */
static gboolean
write_detections (const RunOptions *opts, const SsfpnModel *model,
                  const float *output, int batch, int rows, int height,
                  int width, GError **error)
{
  const int nc = ssfpn_model_num_classes (model);
  const int columns = ssfpn_model_output_columns (model);
  gboolean to_stdout = strcmp (opts->detections, "-") == 0;
  FILE *stream = to_stdout ? stdout : fopen (opts->detections, "w");
  if (stream == NULL)
    {
      int saved = errno;
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "%s: cannot create: %s",
                   opts->detections, g_strerror (saved));
      return FALSE;
    }

  SsfpnNmsOptions nms;
  ssfpn_nms_options_init (&nms);
  nms.conf_threshold = (float) opts->conf;
  nms.iou_threshold = (float) opts->iou;
  nms.max_detections = opts->max_det;
  nms.agnostic = opts->agnostic;
  nms.classes = opts->classes;
  nms.n_classes = opts->n_classes;

  const int capacity = MAX (1, MIN (opts->max_det, rows));
  g_autofree SsfpnDetection *dets = g_new (SsfpnDetection, capacity);
  const char *input_name = strrchr (opts->input, '/');
  input_name = input_name ? input_name + 1 : opts->input;
  for (int b = 0; b < batch; b++)
    {
      int n = ssfpn_nms (output + (gsize) b * rows * columns, rows, nc, &nms,
                         dets, capacity);
      g_autofree char *image = g_strdup_printf ("%s[%d]", input_name, b);
      JsonNode *line = cli_detections_json (model, image, width, height, dets, n);
      cli_print_json (stream, line);
      json_node_unref (line);
    }

  /* errno is kept from the call that failed: a failed fwrite leaves only
   * the error flag, a failed flush or close its own errno. */
  gboolean ok = !ferror (stream);
  int saved = ok ? 0 : errno;
  if ((to_stdout ? fflush (stream) : fclose (stream)) != 0)
    {
      if (ok)
        saved = errno;
      ok = FALSE;
    }
  if (!ok)
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "%s: cannot write: %s",
                 to_stdout ? "stdout" : opts->detections,
                 saved ? g_strerror (saved) : "an earlier write failed");
  return ok;
}

/* Checks the input against the model, runs and writes. */
static gboolean
run_batch (const CliCommand *command, const RunOptions *opts,
           SsfpnModel *model, const NpyArray *input, GError **error)
{
  if (!check_input (input, opts->input, ssfpn_model_max_stride (model), error))
    return FALSE;

  const int batch = (int) input->shape[0];
  const int height = (int) input->shape[2], width = (int) input->shape[3];
  SsfpnContextOptions options;
  cli_context_options (command, &options);
  options.batch = batch;
  options.height = height;
  options.width = width;
  SsfpnContext *context = ssfpn_context_new (model, &options, error);
  if (context == NULL)
    return FALSE;

  const int rows = ssfpn_context_output_rows (context);
  const int columns = ssfpn_model_output_columns (model);
  gsize count = (gsize) batch * rows * columns;
  g_autofree float *output = g_try_new (float, count);
  gboolean ok = FALSE;
  if (output == NULL)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                   "cannot allocate the output: %d x %d x %d floats", batch,
                   rows, columns);
      goto out;
    }
  if (!ssfpn_context_run (context, input->data, output, error))
    goto out;

  const gint64 shape[3] = { batch, rows, columns };
  if (!npy_write (opts->output, 3, shape, output, error))
    goto out;
  ok = opts->detections == NULL
       || write_detections (opts, model, output, batch, rows, height, width,
                            error);
out:
  ssfpn_context_free (context);
  return ok;
}

/* Returns 0, or the exit status of the usage error it printed. */
static int
check_options (const CliCommand *command, RunOptions *opts, int argc)
{
  if (argc < 2)
    return cli_usage_error (command, "MODEL is missing");
  if (argc > 2)
    return cli_usage_error (command, "one MODEL only, got %d arguments", argc - 1);
  if (opts->input == NULL)
    return cli_usage_error (command, "--input IN.npy is required");
  if (opts->output == NULL)
    return cli_usage_error (command, "--output OUT.npy is required");
  return cli_check_nms_options (command, opts->conf, opts->iou, opts->max_det,
                                opts->classes_text, &opts->classes,
                                &opts->n_classes);
}

int
cmd_run (int argc, char **argv)
{
  RunOptions opts = {
    .conf = 0.25, .iou = 0.45, .max_det = 300,
  };
  const GOptionEntry entries[] = {
    { "input", 0, 0, G_OPTION_ARG_FILENAME, &opts.input,
      "float32 (N, 3, H, W), RGB in [0, 1]; H, W multiples of the largest stride",
      "IN.npy" },
    { "output", 0, 0, G_OPTION_ARG_FILENAME, &opts.output,
      "the raw output, float32 (N, A, 5 + nc)", "OUT.npy" },
    { "detections", 0, 0, G_OPTION_ARG_FILENAME, &opts.detections,
      "NMS results, one JSON object per batch item and line ('-': stdout)",
      "OUT.json" },
    { "conf", 0, 0, G_OPTION_ARG_DOUBLE, &opts.conf,
      "confidence threshold (default 0.25)", "C" },
    { "iou", 0, 0, G_OPTION_ARG_DOUBLE, &opts.iou,
      "NMS IoU threshold (default 0.45)", "T" },
    { "max-det", 0, 0, G_OPTION_ARG_INT, &opts.max_det,
      "at most K detections per image (default 300)", "K" },
    { "agnostic", 0, 0, G_OPTION_ARG_NONE, &opts.agnostic,
      "class-agnostic NMS", NULL },
    { "classes", 0, 0, G_OPTION_ARG_STRING, &opts.classes_text,
      "keep only these classes, e.g. 0,2", "LIST" },
    G_OPTION_ENTRY_NULL
  };
  CliCommand command;
  SsfpnModel *model = NULL;
  NpyArray *input = NULL;
  GError *error = NULL;
  int status;

  cli_command_init (&command, "run", "MODEL",
                    "Runs the network on a batch in a .npy file and writes the "
                    "raw output (model-format.md) as .npy; with --detections, "
                    "also the detections after NMS, in input pixels.",
                    entries);
  if (!cli_command_parse (&command, &argc, &argv))
    {
      status = CLI_EXIT_USAGE;
      goto out;
    }
  if ((status = check_options (&command, &opts, argc)) != 0)
    goto out;

  /* The input first: reading it is cheap, opening the model is not. */
  input = npy_read (opts.input, &error);
  if (input == NULL)
    {
      status = cli_fail (error);
      goto out;
    }
  model = cli_open_model (argv[1], &error);
  if (model == NULL)
    status = cli_fail (error);
  else if ((status = cli_check_classes (&command, model, opts.classes,
                                        opts.n_classes)) == 0
           && !run_batch (&command, &opts, model, input, &error))
    status = cli_fail (error);

out:
  npy_array_free (input);
  if (model)
    ssfpn_model_unref (model);
  g_free (opts.input);
  g_free (opts.output);
  g_free (opts.detections);
  g_free (opts.classes_text);
  g_free (opts.classes);
  cli_command_clear (&command);
  return status;
}
