/* ssfpn: an inference engine for YOLOv5-family detectors with the ssFPN neck.
 *
 * Public API. A model is opened from a file (see docs/model-format.md),
 * queried, and run through an inference context created for one device and
 * one batch size. Every call that can fail takes a GError** and sets it with
 * domain SSFPN_ERROR and a message a user can act on.
 *
 * Threads: a model may be shared by any number of contexts and threads; a
 * context is used by one thread at a time (its buffers, scratch space and
 * letterbox tables are its own; callers that share one take a lock around
 * each call, as the GStreamer element does).
 */
#ifndef SSFPN_SSFPN_H
#define SSFPN_SSFPN_H

#include <glib.h>
#include <stddef.h>

G_BEGIN_DECLS

#define SSFPN_API __attribute__ ((visibility ("default")))

#define SSFPN_ERROR (ssfpn_error_quark ())
SSFPN_API GQuark ssfpn_error_quark (void);

typedef enum {
  SSFPN_ERROR_IO,          /* file cannot be opened, read or written */
  SSFPN_ERROR_FORMAT,      /* the container or metadata is malformed */
  SSFPN_ERROR_CONFIG,      /* the configuration cannot be built into a network */
  SSFPN_ERROR_WEIGHTS,     /* a tensor is missing or its shape is wrong */
  SSFPN_ERROR_DEVICE,      /* the requested device is unusable */
  SSFPN_ERROR_ARGUMENT,    /* an argument is out of range or inconsistent */
  SSFPN_ERROR_UNSUPPORTED, /* valid request this build cannot serve */
  SSFPN_ERROR_RUNTIME,     /* a backend failed while running */
} SsfpnErrorCode;

typedef struct _SsfpnModel SsfpnModel;
typedef struct _SsfpnContext SsfpnContext;

/* ---- models ---------------------------------------------------------- */

/* Opens and validates a model file; the whole network is built and checked
 * before this returns, so a model that opens will run. */
SSFPN_API SsfpnModel *ssfpn_model_open (const char *path, GError **error);

/* Same from bytes in memory (a GResource, a fuzzer input). @name is used in
 * error messages in place of a file name. The bytes are referenced. */
SSFPN_API SsfpnModel *ssfpn_model_open_bytes (GBytes *bytes, const char *name,
                                    GError **error);

/* The default model built into the library (docs/default-model.md): six
 * shape classes, 640x640. Its ssfpn_model_path() is SSFPN_DEFAULT_MODEL_NAME. */
#define SSFPN_DEFAULT_MODEL_NAME "default (built-in yolov5n-ssfpn shapes model)"
SSFPN_API SsfpnModel *ssfpn_model_open_default (GError **error);

SSFPN_API SsfpnModel *ssfpn_model_ref (SsfpnModel *model);
SSFPN_API void ssfpn_model_unref (SsfpnModel *model);

SSFPN_API const char *ssfpn_model_path (const SsfpnModel *model);
SSFPN_API int ssfpn_model_num_classes (const SsfpnModel *model);
/* Class name @index, or NULL when out of range. */
SSFPN_API const char *ssfpn_model_class_name (const SsfpnModel *model, int index);
SSFPN_API int ssfpn_model_num_levels (const SsfpnModel *model);
SSFPN_API int ssfpn_model_stride (const SsfpnModel *model, int level);
SSFPN_API int ssfpn_model_max_stride (const SsfpnModel *model);
SSFPN_API int ssfpn_model_anchors_per_level (const SsfpnModel *model);
/* The input size the model was trained for (metadata ssfpn.imgsz). */
SSFPN_API void ssfpn_model_input_size (const SsfpnModel *model, int *height, int *width);
/* Rows A of the raw output for an input of @height x @width; -1 when the
 * size is not a positive multiple of the largest stride or A would not
 * fit an int. */
SSFPN_API int ssfpn_model_output_rows (const SsfpnModel *model, int height, int width);
/* Columns of the raw output: 5 + classes. */
SSFPN_API int ssfpn_model_output_columns (const SsfpnModel *model);
/* Trainable parameters as YOLOv5 counts them (BatchNorm statistics excluded). */
SSFPN_API gint64 ssfpn_model_parameter_count (const SsfpnModel *model);
/* Multiply-adds x 2 / 1e9 for one image of @height x @width. */
SSFPN_API double ssfpn_model_gflops (const SsfpnModel *model, int height, int width);

/* One entry per configuration layer, for `ssfpn info`. */
typedef struct {
  int index;
  char *from;     /* "-1", "[-1, 6]", as in the configuration */
  int repeats;    /* after depth_multiple */
  char *module;   /* "Conv", "C3", ... */
  char *args;     /* resolved arguments as JSON, e.g. "[3, 16, 6, 2, 2]" */
  int channels, height, width; /* output shape at the given input size */
  int depth;      /* 1, or the scale-axis length for Unsqueeze/Concat[2] */
  gint64 parameters;
} SsfpnLayerInfo;

/* Layer table for an input of @height x @width; free with
 * ssfpn_layer_info_free. Returns the count in @n_layers. */
SSFPN_API SsfpnLayerInfo *ssfpn_model_layers (const SsfpnModel *model, int height,
                                    int width, int *n_layers, GError **error);
SSFPN_API void ssfpn_layer_info_free (SsfpnLayerInfo *layers, int n_layers);

/* ---- inference contexts ---------------------------------------------- */

typedef enum {
  SSFPN_PRECISION_DEFAULT = 0, /* fp32 on the CPU, fp16 on a GPU */
  SSFPN_PRECISION_FP32,
  SSFPN_PRECISION_FP16,
} SsfpnPrecision;

/* The largest batch a context takes. */
#define SSFPN_MAX_BATCH 4096
/* The most CPU threads a context takes: beyond what a machine can start,
 * OpenMP ends the process instead of failing. */
#define SSFPN_MAX_THREADS 1024

/* Test-time augmentation (docs/architecture.md): more passes of the
 * network for each image, averaged into one output of the usual shape. */
typedef enum {
  SSFPN_AUGMENT_NONE = 0,
  SSFPN_AUGMENT_FLIPS, /* the image and its mirror images left-right,
                        * top-bottom and both: four passes, each anchor's
                        * outputs averaged over them */
} SsfpnAugment;

typedef struct {
  const char *device;       /* "auto", "cpu", "cuda", "cuda:N"; NULL = auto */
  SsfpnPrecision precision;
  int batch;                /* 1 to SSFPN_MAX_BATCH */
  int height, width;        /* 0 = the model's imgsz; else multiples of the max stride */
  int threads;              /* CPU threads, 0 to SSFPN_MAX_THREADS; 0 = all cores */
  SsfpnAugment augment;     /* SSFPN_AUGMENT_NONE; batch x views images a pass */
} SsfpnContextOptions;

/* Fills @options with defaults: auto device, batch 1, the model's size. */
SSFPN_API void ssfpn_context_options_init (SsfpnContextOptions *options);

SSFPN_API SsfpnContext *ssfpn_context_new (SsfpnModel *model,
                                 const SsfpnContextOptions *options,
                                 GError **error);
SSFPN_API void ssfpn_context_free (SsfpnContext *context);

/* "cpu", "cuda:0", ... as resolved from "auto". */
SSFPN_API const char *ssfpn_context_device (const SsfpnContext *context);
SSFPN_API SsfpnPrecision ssfpn_context_precision (const SsfpnContext *context);
SSFPN_API int ssfpn_context_batch (const SsfpnContext *context);
SSFPN_API void ssfpn_context_input_size (const SsfpnContext *context, int *height,
                               int *width);
SSFPN_API int ssfpn_context_output_rows (const SsfpnContext *context);
SSFPN_API SsfpnAugment ssfpn_context_augment (const SsfpnContext *context);

/* "none", "flips"; NULL for a value that is no SsfpnAugment. */
SSFPN_API const char *ssfpn_augment_name (SsfpnAugment augment);
/* The SsfpnAugment called @name; FALSE when there is none. */
SSFPN_API gboolean ssfpn_augment_from_name (const char *name,
                                            SsfpnAugment *augment);

/* Runs the network. @input: float32 (batch, 3, H, W), RGB in [0, 1], in host
 * memory. @output: float32 (batch, A, 5 + nc) in host memory; with an
 * augment, the views' outputs merged into that shape. */
SSFPN_API gboolean ssfpn_context_run (SsfpnContext *context, const float *input,
                            float *output, GError **error);

/* ---- post-processing ------------------------------------------------- */

typedef struct {
  float x1, y1, x2, y2; /* network input pixels from ssfpn_nms; frame
                         * pixels from ssfpn_context_detect */
  float confidence;     /* objectness x class probability */
  int class_id;
} SsfpnDetection;

typedef struct {
  float conf_threshold;  /* 0.25 */
  float iou_threshold;   /* 0.45 */
  int max_detections;    /* 300 */
  gboolean agnostic;     /* class-agnostic NMS */
  const int *classes;    /* keep only these classes; NULL = all */
  int n_classes;
  gboolean multi_label;  /* a box once for every class scoring above the
                          * threshold, as YOLOv5's val.py; FALSE: its best
                          * class only, as detect.py */
} SsfpnNmsOptions;

SSFPN_API void ssfpn_nms_options_init (SsfpnNmsOptions *options);

/* YOLOv5's non_max_suppression on one image's raw output (@rows x
 * (5 + @nc)). Writes at most options->max_detections results (0 or less:
 * no limit but @capacity), highest confidence first, into @out (capacity
 * @capacity) and returns the count. Allocates its work space per call. */
SSFPN_API int ssfpn_nms (const float *output, int rows, int nc,
               const SsfpnNmsOptions *options, SsfpnDetection *out,
               int capacity);

G_END_DECLS

#endif /* SSFPN_SSFPN_H */
