/* `ssfpn detect MODEL IMAGE... [--size S] [--conf C] [--iou T] [--max-det K]
 * [--agnostic] [--classes 0,2]`: one JSON line of detections per image, boxes
 * in the image's own pixels. Images go through one at a time on one batch-1
 * context: decode, then ssfpn_context_detect (letterbox, run, NMS, boxes
 * mapped back), on whichever device the context runs. */
#include "cli.h"
#include "image_decode.h"
#include "ssfpn/ssfpn-frame.h"

typedef struct {
  char *size_text;
  double conf;
  double iou;
  int max_det;
  gboolean agnostic;
  char *classes_text;
  int *classes;
  int n_classes;
} DetectOptions;

/* What every image reuses: the context (with its buffers and letterbox
 * tables) and the detection space. */
typedef struct {
  SsfpnModel *model;
  SsfpnContext *context;
  SsfpnDetection *detections;
  int capacity;
  SsfpnNmsOptions nms;
} Detector;

static void
detector_clear (Detector *detector)
{
  ssfpn_context_free (detector->context);
  g_free (detector->detections);
}

static gboolean
detector_init (Detector *detector, const CliCommand *command,
               const DetectOptions *opts, SsfpnModel *model, int height,
               int width, GError **error)
{
  SsfpnContextOptions options;
  cli_context_options (command, &options);
  options.batch = 1;
  options.height = height;
  options.width = width;
  detector->model = model;
  detector->context = ssfpn_context_new (model, &options, error);
  if (detector->context == NULL)
    return FALSE;

  detector->capacity = MAX (1, MIN (opts->max_det,
                                    ssfpn_context_output_rows (detector->context)));
  detector->detections = g_new (SsfpnDetection, detector->capacity);

  ssfpn_nms_options_init (&detector->nms);
  detector->nms.conf_threshold = (float) opts->conf;
  detector->nms.iou_threshold = (float) opts->iou;
  detector->nms.max_detections = opts->max_det;
  detector->nms.agnostic = opts->agnostic;
  detector->nms.classes = opts->classes;
  detector->nms.n_classes = opts->n_classes;
  return TRUE;
}

static gboolean
detect_image (Detector *detector, const char *path, GError **error)
{
  g_autoptr (DecodedImage) image = image_decode_file (path, error);
  if (image == NULL)
    return FALSE;

  const SsfpnFrame frame = {
    .format = SSFPN_FRAME_RGB,
    .width = image->width,
    .height = image->height,
    .planes = { image->pixels },
    .strides = { image->width * 3 },
  };
  int n = 0;
  if (!ssfpn_context_detect (detector->context, &frame, 1, &detector->nms,
                             detector->detections, detector->capacity, &n,
                             error))
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }

  JsonNode *line = cli_detections_json (detector->model, path, image->width,
                                        image->height, detector->detections,
                                        n);
  cli_print_json (stdout, line);
  json_node_unref (line);
  /* Each line as soon as it is known, for whoever reads the pipe. */
  fflush (stdout);
  return TRUE;
}

/* Returns 0, or the exit status of the usage error it printed. */
static int
check_options (const CliCommand *command, DetectOptions *opts, int argc,
               int *height, int *width)
{
  if (argc < 2)
    return cli_usage_error (command, "MODEL is missing");
  if (argc < 3)
    return cli_usage_error (command, "no IMAGE given");
  if (opts->size_text != NULL
      && !cli_parse_size (opts->size_text, height, width))
    return cli_usage_error (command, "--size %s is not S or HxW", opts->size_text);
  return cli_check_nms_options (command, opts->conf, opts->iou, opts->max_det,
                                opts->classes_text, &opts->classes,
                                &opts->n_classes);
}

int
cmd_detect (int argc, char **argv)
{
  DetectOptions opts = {
    .conf = 0.25, .iou = 0.45, .max_det = 300,
  };
  const GOptionEntry entries[] = {
    { "size", 0, 0, G_OPTION_ARG_STRING, &opts.size_text,
      "network input S x S or H x W, multiples of the largest stride "
      "(default: the model's imgsz)", "S|HxW" },
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
  Detector detector = { 0 };
  SsfpnModel *model = NULL;
  GError *error = NULL;
  int height = 0, width = 0;
  int status;

  cli_command_init (&command, "detect", "MODEL IMAGE...",
                    "Detects objects in PNG and JPEG images: letterboxes each "
                    "to the network input and prints one JSON object per "
                    "image and line, boxes in the image's own pixels. A bad "
                    "image is reported and skipped; the exit status is then 1.",
                    entries);
  if (!cli_command_parse (&command, &argc, &argv))
    {
      status = CLI_EXIT_USAGE;
      goto out;
    }
  if ((status = check_options (&command, &opts, argc, &height, &width)) != 0)
    goto out;

  model = cli_open_model (argv[1], &error);
  if (model == NULL)
    {
      status = cli_fail (error);
      goto out;
    }
  if ((status = cli_check_classes (&command, model, opts.classes,
                                   opts.n_classes)) != 0)
    goto out;
  if (opts.size_text == NULL)
    ssfpn_model_input_size (model, &height, &width);
  int stride = ssfpn_model_max_stride (model);
  if (height % stride != 0 || width % stride != 0)
    {
      status = cli_usage_error (&command, "--size %dx%d is not a multiple of the "
                                "model's largest stride %d", height, width, stride);
      goto out;
    }
  if (!detector_init (&detector, &command, &opts, model, height, width, &error))
    {
      status = cli_fail (error);
      goto out;
    }

  for (int i = 2; i < argc; i++)
    if (!detect_image (&detector, argv[i], &error))
      status = cli_fail (g_steal_pointer (&error));

out:
  detector_clear (&detector);
  if (model)
    ssfpn_model_unref (model);
  g_free (opts.size_text);
  g_free (opts.classes_text);
  g_free (opts.classes);
  cli_command_clear (&command);
  return status;
}
