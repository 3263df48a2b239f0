/* Inference contexts: resolve the device, plan the network once for a batch
 * size and input size, run it. */
#include "context.h"

#include "augment.h"

#include <stdlib.h>
#include <string.h>

void
ssfpn_context_options_init (SsfpnContextOptions *options)
{
  memset (options, 0, sizeof *options);
  options->device = "auto";
  options->precision = SSFPN_PRECISION_DEFAULT;
  options->batch = 1;
}

/* Parses "auto", "cpu", "cuda", "cuda:N" into a backend name and ordinal. */
static gboolean
parse_device (const char *device, const char **backend_name, int *index,
              gboolean *is_auto, GError **error)
{
  *index = 0;
  *is_auto = FALSE;
  if (device == NULL || strcmp (device, "auto") == 0) {
    *is_auto = TRUE;
    *backend_name = "cuda";
    return TRUE;
  }
  if (strcmp (device, "cpu") == 0) {
    *backend_name = "cpu";
    return TRUE;
  }
  if (strcmp (device, "cuda") == 0) {
    *backend_name = "cuda";
    return TRUE;
  }
  if (g_str_has_prefix (device, "cuda:")) {
    const char *digits = device + 5;
    char *end = NULL;
    long value = strtol (digits, &end, 10);
    if (*digits != '\0' && *end == '\0' && value >= 0 && value < 1024) {
      *backend_name = "cuda";
      *index = (int) value;
      return TRUE;
    }
  }
  /* A name that is no device is an unusable device, as the element and
   * the command report it. */
  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
               "device \"%s\" is not one of auto, cpu, cuda, cuda:N", device);
  return FALSE;
}

/* The backend for the device; "auto" falls back to the CPU when no GPU
 * backend is built in or none works. */
static const SsfpnBackend *
choose_backend (const char *device, int *index, gboolean *is_auto,
                GError **error)
{
  const char *name;
  const SsfpnBackend *backend;
  GError *reason = NULL;

  if (!parse_device (device, &name, index, is_auto, error))
    return NULL;

  backend = ssfpn_backend_find (name);
  if (backend != NULL && backend->available (*index, &reason))
    return backend;

  if (*is_auto) {
    g_clear_error (&reason);
    *index = 0;
    return ssfpn_backend_find ("cpu");
  }
  if (backend == NULL)
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE,
                 "device %s: this build has no CUDA backend "
                 "(it needs the CUDA toolkit and cuDNN at build time)",
                 device);
  else
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE, "device %s: %s",
                 device, reason->message);
  g_clear_error (&reason);
  return NULL;
}

/* The raw output's row count must fit the int that the API returns it in,
 * and the input and output buffers must have a size in bytes; anything
 * larger is refused here instead of overflowing further down. */
static gboolean
check_buffer_sizes (const SsfpnModel *model, int batch, int height,
                    int width, GError **error)
{
  const SsfpnGraph *graph = model->graph;
  int rows = ssfpn_graph_output_rows (graph, height, width, NULL);
  double input_bytes, output_bytes;

  if (rows < 0) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "batch %d at %dx%d is too large: more than %d output rows "
                 "per image", batch, height, width, G_MAXINT);
    return FALSE;
  }
  input_bytes = (double) batch * 3 * height * width * sizeof (float);
  output_bytes = (double) batch * rows * (graph->nc + 5) * sizeof (float);
  if (input_bytes > (double) G_MAXSSIZE || output_bytes > (double) G_MAXSSIZE) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "batch %d at %dx%d is too large: %d output rows per image, "
                 "%.3g bytes of input and %.3g bytes of output",
                 batch, height, width, rows, input_bytes, output_bytes);
    return FALSE;
  }
  return TRUE;
}

SsfpnContext *
ssfpn_context_new (SsfpnModel *model, const SsfpnContextOptions *options,
                   GError **error)
{
  SsfpnContextOptions defaults;
  SsfpnPlanOptions plan_options = { 0 };
  SsfpnContext *context;
  const SsfpnBackend *backend;
  int index, height, width, max_stride, views;
  gboolean is_auto;
  GError *plan_error = NULL;

  g_return_val_if_fail (model != NULL, NULL);
  if (options == NULL) {
    ssfpn_context_options_init (&defaults);
    options = &defaults;
  }

  if (options->batch < 1 || options->batch > SSFPN_MAX_BATCH) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "batch size %d is out of range (1 to %d)", options->batch,
                 SSFPN_MAX_BATCH);
    return NULL;
  }
  height = options->height > 0 ? options->height : model->imgsz[0];
  width = options->width > 0 ? options->width : model->imgsz[1];
  max_stride = model->graph->max_stride;
  if (options->height < 0 || options->width < 0 || height % max_stride != 0
      || width % max_stride != 0) {
    /* The size asked for, not the model's that 0 stands for. */
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "input size %dx%d is not a positive multiple of the "
                 "model's largest stride %d",
                 options->height < 0 ? options->height : height,
                 options->width < 0 ? options->width : width, max_stride);
    return NULL;
  }
  views = ssfpn_augment_view_count (options->augment);
  if (views == 0) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "augment %d is not one of none, flips", options->augment);
    return NULL;
  }
  if (options->batch > SSFPN_MAX_BATCH / views) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "batch size %d with augment %s is %d images a pass, more "
                 "than %d", options->batch,
                 ssfpn_augment_name (options->augment),
                 options->batch * views, SSFPN_MAX_BATCH);
    return NULL;
  }
  if (!check_buffer_sizes (model, options->batch * views, height, width,
                           error))
    return NULL;
  if (options->threads < 0 || options->threads > SSFPN_MAX_THREADS) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "thread count %d is not between 0 (all cores) and %d",
                 options->threads, SSFPN_MAX_THREADS);
    return NULL;
  }

  backend = choose_backend (options->device, &index, &is_auto, error);
  if (backend == NULL)
    return NULL;

  plan_options.batch = options->batch * views;
  plan_options.height = height;
  plan_options.width = width;
  plan_options.precision = options->precision == SSFPN_PRECISION_DEFAULT
      ? backend->default_precision : options->precision;
  plan_options.device_index = index;
  plan_options.threads = options->threads;

  context = g_new0 (SsfpnContext, 1);
  context->plan = backend->plan_new (model->graph, &plan_options, &plan_error);
  if (context->plan == NULL && is_auto && strcmp (backend->name, "cpu") != 0) {
    /* "auto" promises a device that works: a GPU that cannot take this
     * plan (no engine for a layer, too little memory) leaves the CPU. */
    const SsfpnBackend *cpu = ssfpn_backend_find ("cpu");
    GError *cpu_error = NULL;
    SsfpnPlanOptions cpu_options = plan_options;

    cpu_options.device_index = 0;
    cpu_options.precision = options->precision == SSFPN_PRECISION_DEFAULT
        ? cpu->default_precision : options->precision;
    context->plan = cpu->plan_new (model->graph, &cpu_options, &cpu_error);
    if (context->plan != NULL) {
      g_message ("device auto: %s:%d cannot run this model (%s); running on "
                 "the CPU", backend->name, index, plan_error->message);
      g_clear_error (&plan_error);
      backend = cpu;
      plan_options = cpu_options;
    } else {
      g_set_error (error, plan_error->domain, plan_error->code,
                   "device auto: %s:%d: %s; and the CPU: %s", backend->name,
                   index, plan_error->message, cpu_error->message);
      g_clear_error (&plan_error);
      g_clear_error (&cpu_error);
      g_free (context);
      return NULL;
    }
  }
  if (context->plan == NULL) {
    g_propagate_error (error, plan_error);
    g_free (context);
    return NULL;
  }
  context->model = ssfpn_model_ref (model);
  context->backend = backend;
  context->device = strcmp (backend->name, "cpu") == 0 ? g_strdup ("cpu")
      : g_strdup_printf ("%s:%d", backend->name, index);
  context->precision = plan_options.precision;
  context->batch = options->batch;
  context->threads = options->threads;
  context->height = height;
  context->width = width;
  context->rows = ssfpn_graph_output_rows (model->graph, height, width, NULL);
  context->augment = options->augment;
  context->views = views;
  if (views > 1) {
    gsize image = (gsize) 3 * height * width;
    gsize output = (gsize) context->rows * (model->graph->nc + 5);

    context->view_input = g_try_new (float, image * options->batch * views);
    context->view_output = g_try_new (float, output * options->batch * views);
    if (context->view_input == NULL || context->view_output == NULL) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                   "batch %d at %dx%d with augment %s: cannot allocate the "
                   "host buffers of its %d views", options->batch, height,
                   width, ssfpn_augment_name (options->augment),
                   options->batch * views);
      ssfpn_context_free (context);
      return NULL;
    }
  }
  return context;
}

void
ssfpn_context_free (SsfpnContext *context)
{
  if (context == NULL)
    return;
  ssfpn_detect_state_free (context->detect);
  g_free (context->view_input);
  g_free (context->view_output);
  context->backend->plan_free (context->plan);
  ssfpn_model_unref (context->model);
  g_free (context->device);
  g_free (context);
}

const char *
ssfpn_context_device (const SsfpnContext *context)
{
  return context->device;
}

SsfpnPrecision
ssfpn_context_precision (const SsfpnContext *context)
{
  return context->precision;
}

int
ssfpn_context_batch (const SsfpnContext *context)
{
  return context->batch;
}

void
ssfpn_context_input_size (const SsfpnContext *context, int *height,
                          int *width)
{
  if (height)
    *height = context->height;
  if (width)
    *width = context->width;
}

int
ssfpn_context_output_rows (const SsfpnContext *context)
{
  return context->rows;
}

SsfpnAugment
ssfpn_context_augment (const SsfpnContext *context)
{
  return context->augment;
}

gboolean
ssfpn_context_run (SsfpnContext *context, const float *input, float *output,
                   GError **error)
{
  g_return_val_if_fail (context != NULL, FALSE);
  if (input == NULL || output == NULL) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "ssfpn_context_run needs input and output buffers");
    return FALSE;
  }
  if (context->views == 1)
    return context->backend->plan_run (context->plan, input, output, error);
  ssfpn_augment_expand (context->augment, input, context->batch,
                        context->height, context->width, context->view_input);
  if (!context->backend->plan_run (context->plan, context->view_input,
                                   context->view_output, error))
    return FALSE;
  ssfpn_augment_merge (context->augment, context->model,
                       context->view_output, context->batch, context->height,
                       context->width, output);
  return TRUE;
}
