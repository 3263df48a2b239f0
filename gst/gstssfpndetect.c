/* GStreamer ssFPN object detector
 *
 * This library is free software; you can redistribute it and/or modify it
 * under the terms of the GNU Lesser General Public License as published by
 * the Free Software Foundation; either version 2.1 of the License, or (at
 * your option) any later version.
 */

/**
 * SECTION:element-ssfpndetect
 * @title: ssfpndetect
 *
 * Runs a YOLOv5-family object detector with the ssFPN neck on video frames
 * and attaches what it finds to each buffer; the pixels pass through
 * untouched. Every detection becomes a #GstVideoRegionOfInterestMeta whose
 * roi_type is the label, in frame pixels, carrying a "detection" structure
 * with label_id, confidence and the corners normalised to the frame
 * (x_min, y_min, x_max, y_max). With post-messages=true the detections are
 * also posted on the bus, one element message per frame.
 *
 * The element reads RGB, BGR, RGBA, BGRA, RGBx, BGRx, NV12 and I420 of any
 * size and stride; no videoconvert is needed in front of it.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m videotestsrc num-buffers=30 ! ssfpndetect model=model.safetensors post-messages=true ! fakesink
 * ]| prints the detections of each frame.
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! ssfpndetect model=model.safetensors batch-size=4 ! videoconvert ! x264enc ! mp4mux ! filesink location=out.mp4
 * ]| detects in batches of four frames and writes the video back out; the
 * metadata travels with the buffers to any element that reads it.
 */

#include "buildconfig.h"

#include "gstssfpndetect.h"
#include "ssfpn-detection-meta.h"
#include "ssfpn-frame-queue.h"
#include "ssfpn-inference.h"
#include "ssfpn-model-cache.h"
#include "ssfpn-settings.h"

#include <gst/video/video.h>
#include <ssfpn/ssfpn-frame.h>

GST_DEBUG_CATEGORY_STATIC (gst_ssfpn_detect_debug);
#define GST_CAT_DEFAULT gst_ssfpn_detect_debug

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_LABELS,
  PROP_DEVICE,
  PROP_PRECISION,
  PROP_AUGMENT,
  PROP_CONF_THRESHOLD,
  PROP_IOU_THRESHOLD,
  PROP_MAX_DETECTIONS,
  PROP_AGNOSTIC_NMS,
  PROP_CLASSES,
  PROP_INPUT_SIZE,
  PROP_INFERENCE_INTERVAL,
  PROP_BATCH_SIZE,
  PROP_MODEL_INSTANCE_ID,
  PROP_POST_MESSAGES,
  PROP_MODEL_INFO,
};

#define DEFAULT_PROP_MODEL NULL
#define DEFAULT_PROP_LABELS NULL
#define DEFAULT_PROP_DEVICE "auto"
#define DEFAULT_PROP_PRECISION GST_SSFPN_PRECISION_AUTO
#define DEFAULT_PROP_AUGMENT GST_SSFPN_AUGMENT_NONE
#define DEFAULT_PROP_CONF_THRESHOLD 0.25
#define DEFAULT_PROP_IOU_THRESHOLD 0.45
#define DEFAULT_PROP_MAX_DETECTIONS 300
#define DEFAULT_PROP_AGNOSTIC_NMS FALSE
#define DEFAULT_PROP_CLASSES NULL
#define DEFAULT_PROP_INPUT_SIZE 0
#define DEFAULT_PROP_INFERENCE_INTERVAL 1
#define DEFAULT_PROP_BATCH_SIZE 1
#define DEFAULT_PROP_MODEL_INSTANCE_ID NULL
#define DEFAULT_PROP_POST_MESSAGES FALSE

#define MAX_INPUT_SIZE 8192
#define MAX_BATCH_SIZE 256
#define MAX_DETECTIONS_LIMIT 30000

#define SSFPN_DETECT_FORMATS "{ RGB, BGR, RGBA, BGRA, RGBx, BGRx, NV12, I420 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (SSFPN_DETECT_FORMATS)));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (SSFPN_DETECT_FORMATS)));

struct _GstSsfpnDetect
{
  GstBaseTransform parent;

  /* Properties, with the object lock. */
  gchar *model_path;
  gchar *labels_path;
  gchar *device;
  GstSsfpnPrecision precision;
  GstSsfpnAugment augment;
  gdouble conf_threshold;
  gdouble iou_threshold;
  gint max_detections;
  gboolean agnostic_nms;
  gchar *classes_text;
  GArray *class_filter;         /* parsed classes_text; NULL = all classes */
  gchar *classes_error;         /* why classes_text is invalid, for start() */
  guint input_size;
  guint inference_interval;
  guint batch_size;
  gchar *model_instance_id;
  gboolean post_messages;

  /* From start() to stop(); written with the object lock, read by the
   * streaming thread without it (only start/stop change them). */
  SsfpnModel *model;
  gchar *active_instance_id;
  SsfpnInference *inference;
  GQuark *labels;
  gint num_classes;
  GstStructure *model_info;     /* object lock */
  GstClockTime processing_latency; /* object lock */
  gboolean starting;            /* object lock: start() is loading, with a
                                 * snapshot of the properties */

  /* Streaming state, in the streaming thread. */
  GstVideoInfo info;
  SsfpnFrame frame_template;    /* format, size, colour of the caps */
  GstVideoFrame *mapped;        /* batch-size slots: the frames waiting in
                                 * the batch, readable until it runs */
  guint n_mapped;
  GstClockTime frame_duration;  /* object lock; NONE when unknown */
  gboolean duration_from_buffers; /* the caps have no frame rate */
  SsfpnFrameQueue *queue;
  guint64 frame_count;          /* since start or the last flush */
};

G_DEFINE_TYPE (GstSsfpnDetect, gst_ssfpn_detect, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (ssfpndetect, "ssfpndetect", GST_RANK_NONE,
    GST_TYPE_SSFPN_DETECT);

static void gst_ssfpn_detect_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_ssfpn_detect_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_ssfpn_detect_finalize (GObject * object);
static gboolean gst_ssfpn_detect_start (GstBaseTransform * trans);
static gboolean gst_ssfpn_detect_stop (GstBaseTransform * trans);
static gboolean gst_ssfpn_detect_set_caps (GstBaseTransform * trans,
    GstCaps * incaps, GstCaps * outcaps);
static gboolean gst_ssfpn_detect_sink_event (GstBaseTransform * trans,
    GstEvent * event);
static gboolean gst_ssfpn_detect_propose_allocation (GstBaseTransform *
    trans, GstQuery * decide_query, GstQuery * query);
static gboolean gst_ssfpn_detect_query (GstBaseTransform * trans,
    GstPadDirection direction, GstQuery * query);
static GstFlowReturn gst_ssfpn_detect_transform_ip (GstBaseTransform * trans,
    GstBuffer * buffer);
static GstFlowReturn gst_ssfpn_detect_generate_output (GstBaseTransform *
    trans, GstBuffer ** outbuf);

GType
gst_ssfpn_augment_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_SSFPN_AUGMENT_NONE, "One pass of the network per frame", "none"},
    {GST_SSFPN_AUGMENT_FLIPS, "The frame and its three mirror images, "
          "outputs averaged (4 passes)", "flips"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType registered = g_enum_register_static ("GstSsfpnAugment", values);
    g_once_init_leave (&type, registered);
  }
  return type;
}

GType
gst_ssfpn_precision_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_SSFPN_PRECISION_AUTO, "fp32 on the CPU, fp16 on a GPU", "auto"},
    {GST_SSFPN_PRECISION_FP32, "32-bit floating point", "fp32"},
    {GST_SSFPN_PRECISION_FP16, "16-bit floating point (GPU devices)", "fp16"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType registered = g_enum_register_static ("GstSsfpnPrecision", values);
    g_once_init_leave (&type, registered);
  }
  return type;
}

static void
gst_ssfpn_detect_class_init (GstSsfpnDetectClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  const GParamFlags ready_flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_READY;
  const GParamFlags playing_flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_PLAYING;

  GST_DEBUG_CATEGORY_INIT (gst_ssfpn_detect_debug, "ssfpndetect", 0,
      "ssFPN object detector");

  gobject_class->set_property = gst_ssfpn_detect_set_property;
  gobject_class->get_property = gst_ssfpn_detect_get_property;
  gobject_class->finalize = gst_ssfpn_detect_finalize;

  /**
   * GstSsfpnDetect:model:
   *
   * The model file (.safetensors, see docs/model-format.md). Empty selects
   * the default model built into the engine: yolov5n-ssfpn trained on
   * synthetic shapes (docs/default-model.md).
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Path of the model file (.safetensors); empty means the built-in "
          "default model (six shape classes)", DEFAULT_PROP_MODEL,
          ready_flags));

  /**
   * GstSsfpnDetect:labels:
   *
   * A text file with one class name per line, replacing the names stored
   * in the model; it must name as many classes as the model has.
   */
  g_object_class_install_property (gobject_class, PROP_LABELS,
      g_param_spec_string ("labels", "Labels",
          "Optional file with one class name per line, overriding the "
          "model's names", DEFAULT_PROP_LABELS, ready_flags));

  /**
   * GstSsfpnDetect:device:
   *
   * Where the network runs: "auto" (the first working GPU, else the CPU),
   * "cpu", "cuda" or "cuda:N".
   */
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "Device",
          "Device to run on: auto, cpu, cuda or cuda:N", DEFAULT_PROP_DEVICE,
          ready_flags));

  /**
   * GstSsfpnDetect:precision:
   *
   * Arithmetic precision of the network.
   */
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision",
          "Arithmetic precision of the network", GST_TYPE_SSFPN_PRECISION,
          DEFAULT_PROP_PRECISION, ready_flags));

  /**
   * GstSsfpnDetect:augment:
   *
   * Test-time augmentation: with "flips" the network also runs on the
   * frame's mirror images (left-right, top-bottom, both) and each anchor's
   * four outputs are averaged before NMS. More small objects found and
   * named right, for four times the network's time per frame (see
   * docs/element.md).
   */
  g_object_class_install_property (gobject_class, PROP_AUGMENT,
      g_param_spec_enum ("augment", "Augment",
          "Test-time augmentation: flips runs the frame's three mirror "
          "images too and averages the outputs (4x the network time)",
          GST_TYPE_SSFPN_AUGMENT, DEFAULT_PROP_AUGMENT, ready_flags));

  /**
   * GstSsfpnDetect:conf-threshold:
   *
   * Minimum objectness and score (objectness x class probability) of a
   * detection.
   */
  g_object_class_install_property (gobject_class, PROP_CONF_THRESHOLD,
      g_param_spec_double ("conf-threshold", "Confidence threshold",
          "Minimum confidence of a detection", 0.0, 1.0,
          DEFAULT_PROP_CONF_THRESHOLD, playing_flags));

  /**
   * GstSsfpnDetect:iou-threshold:
   *
   * Non-maximum suppression removes a box overlapping a better one of the
   * same class (any class with agnostic-nms) by more than this IoU.
   */
  g_object_class_install_property (gobject_class, PROP_IOU_THRESHOLD,
      g_param_spec_double ("iou-threshold", "IoU threshold",
          "Intersection over union above which NMS drops the weaker box",
          0.0, 1.0, DEFAULT_PROP_IOU_THRESHOLD, playing_flags));

  /**
   * GstSsfpnDetect:max-detections:
   *
   * At most this many detections per frame, the most confident first.
   */
  g_object_class_install_property (gobject_class, PROP_MAX_DETECTIONS,
      g_param_spec_int ("max-detections", "Maximum detections",
          "Maximum number of detections per frame", 1, MAX_DETECTIONS_LIMIT,
          DEFAULT_PROP_MAX_DETECTIONS, playing_flags));

  /**
   * GstSsfpnDetect:agnostic-nms:
   *
   * Suppress overlapping boxes across classes, not only within one.
   */
  g_object_class_install_property (gobject_class, PROP_AGNOSTIC_NMS,
      g_param_spec_boolean ("agnostic-nms", "Class-agnostic NMS",
          "Suppress overlapping boxes whatever their class",
          DEFAULT_PROP_AGNOSTIC_NMS, playing_flags));

  /**
   * GstSsfpnDetect:classes:
   *
   * Keep only these class indices, comma-separated ("0,2"); empty keeps
   * all. An invalid value fails the start; set in PLAYING it is ignored
   * with a warning.
   */
  g_object_class_install_property (gobject_class, PROP_CLASSES,
      g_param_spec_string ("classes", "Classes",
          "Comma-separated class indices to keep, e.g. \"0,2\"; empty keeps "
          "all", DEFAULT_PROP_CLASSES, playing_flags));

  /**
   * GstSsfpnDetect:input-size:
   *
   * Side of the square network input the frames are letterboxed into;
   * 0 uses the size the model was trained for. Must be a multiple of the
   * model's largest stride (usually 32).
   */
  g_object_class_install_property (gobject_class, PROP_INPUT_SIZE,
      g_param_spec_uint ("input-size", "Input size",
          "Network input size in pixels (multiple of the model's largest "
          "stride); 0 = the model's own", 0, MAX_INPUT_SIZE,
          DEFAULT_PROP_INPUT_SIZE, ready_flags));

  /**
   * GstSsfpnDetect:inference-interval:
   *
   * Run the network on every Nth frame only; the frames in between carry
   * the detections of the last frame it ran on.
   */
  g_object_class_install_property (gobject_class, PROP_INFERENCE_INTERVAL,
      g_param_spec_uint ("inference-interval", "Inference interval",
          "Run on every Nth frame; the others repeat the last result", 1,
          G_MAXINT, DEFAULT_PROP_INFERENCE_INTERVAL, playing_flags));

  /**
   * GstSsfpnDetect:batch-size:
   *
   * Frames gathered into one run of the network. Frames are held until
   * their batch is complete, which the latency query reports; EOS and caps
   * or segment changes run a partial batch.
   */
  g_object_class_install_property (gobject_class, PROP_BATCH_SIZE,
      g_param_spec_uint ("batch-size", "Batch size",
          "Frames per inference run (adds latency)", 1, MAX_BATCH_SIZE,
          DEFAULT_PROP_BATCH_SIZE, ready_flags));

  /**
   * GstSsfpnDetect:model-instance-id:
   *
   * Elements with the same id share one loaded model (its weights are in
   * memory once); they must name the same model file. Those that also have
   * the same device, precision, augment, batch-size and input-size share one
   * inference context (on a GPU: its stream) and take turns running it;
   * the others get their own context on the shared model.
   */
  g_object_class_install_property (gobject_class, PROP_MODEL_INSTANCE_ID,
      g_param_spec_string ("model-instance-id", "Model instance id",
          "Elements with the same id share one loaded model and, with the "
          "same device, precision, augment, batch-size and input-size, one "
          "inference context", DEFAULT_PROP_MODEL_INSTANCE_ID, ready_flags));

  /**
   * GstSsfpnDetect:post-messages:
   *
   * Post an element message named "ssfpndetect" for every frame, with its
   * timestamps and detections (see docs/element.md).
   */
  g_object_class_install_property (gobject_class, PROP_POST_MESSAGES,
      g_param_spec_boolean ("post-messages", "Post messages",
          "Post an element message with the detections of every frame",
          DEFAULT_PROP_POST_MESSAGES, playing_flags));

  /**
   * GstSsfpnDetect:model-info:
   *
   * What the running element uses: model file, classes, input size,
   * device, precision, augment, batch size. NULL until the element has started
   * (READY to PAUSED).
   */
  g_object_class_install_property (gobject_class, PROP_MODEL_INFO,
      g_param_spec_boxed ("model-info", "Model information",
          "Model file, classes, input size, device and precision in use "
          "(after start)", GST_TYPE_STRUCTURE,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class,
      "ssFPN object detector", "Filter/Analyzer/Video",
      "Detects objects with a YOLOv5-family ssFPN model and attaches them "
      "as region-of-interest metadata",
      "ssfpn-gst developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_ssfpn_detect_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_ssfpn_detect_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_ssfpn_detect_set_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_ssfpn_detect_sink_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_ssfpn_detect_query);
  trans_class->propose_allocation =
      GST_DEBUG_FUNCPTR (gst_ssfpn_detect_propose_allocation);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_ssfpn_detect_transform_ip);
  trans_class->generate_output =
      GST_DEBUG_FUNCPTR (gst_ssfpn_detect_generate_output);
  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;

  gst_type_mark_as_plugin_api (GST_TYPE_SSFPN_PRECISION, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_SSFPN_AUGMENT, 0);
}

static void
gst_ssfpn_detect_init (GstSsfpnDetect * self)
{
  self->model_path = g_strdup (DEFAULT_PROP_MODEL);
  self->labels_path = g_strdup (DEFAULT_PROP_LABELS);
  self->device = g_strdup (DEFAULT_PROP_DEVICE);
  self->precision = DEFAULT_PROP_PRECISION;
  self->augment = DEFAULT_PROP_AUGMENT;
  self->conf_threshold = DEFAULT_PROP_CONF_THRESHOLD;
  self->iou_threshold = DEFAULT_PROP_IOU_THRESHOLD;
  self->max_detections = DEFAULT_PROP_MAX_DETECTIONS;
  self->agnostic_nms = DEFAULT_PROP_AGNOSTIC_NMS;
  self->classes_text = g_strdup (DEFAULT_PROP_CLASSES);
  self->input_size = DEFAULT_PROP_INPUT_SIZE;
  self->inference_interval = DEFAULT_PROP_INFERENCE_INTERVAL;
  self->batch_size = DEFAULT_PROP_BATCH_SIZE;
  self->model_instance_id = g_strdup (DEFAULT_PROP_MODEL_INSTANCE_ID);
  self->post_messages = DEFAULT_PROP_POST_MESSAGES;
  self->frame_duration = GST_CLOCK_TIME_NONE;
  self->processing_latency = 0;

  /* Inference is expensive: drop frames that are already late. */
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_ssfpn_detect_finalize (GObject * object)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (object);

  g_free (self->model_path);
  g_free (self->labels_path);
  g_free (self->device);
  g_free (self->classes_text);
  g_clear_pointer (&self->class_filter, g_array_unref);
  g_free (self->classes_error);
  g_free (self->model_instance_id);

  G_OBJECT_CLASS (gst_ssfpn_detect_parent_class)->finalize (object);
}

/* ---- properties -------------------------------------------------------- */

/* Properties that shape the loaded model and context apply at the next
 * start; changing them while running would be silently ineffective, so it
 * is refused loudly instead. Called with the object lock. */
static gboolean
refuse_while_running (GstSsfpnDetect * self, GParamSpec * pspec)
{
  if (self->model == NULL && !self->starting)
    return FALSE;
  GST_WARNING_OBJECT (self, "property \"%s\" cannot change while the element "
      "is running (PAUSED or PLAYING); set it in NULL or READY", pspec->name);
  return TRUE;
}

static void
set_string_unless_running (GstSsfpnDetect * self, GParamSpec * pspec,
    gchar ** field, const GValue * value)
{
  GST_OBJECT_LOCK (self);
  if (!refuse_while_running (self, pspec)) {
    g_free (*field);
    *field = g_value_dup_string (value);
  }
  GST_OBJECT_UNLOCK (self);
}

static void
set_classes (GstSsfpnDetect * self, const gchar * text)
{
  GArray *filter = NULL;
  g_autoptr (GError) error = NULL;
  gboolean ok = ssfpn_parse_class_filter (text, &filter, &error);

  GST_OBJECT_LOCK (self);
  gboolean running = self->model != NULL;
  if (ok && running)
    ok = ssfpn_check_class_filter (text, filter, self->num_classes, &error);
  if (ok || !running) {
    g_free (self->classes_text);
    self->classes_text = g_strdup (text);
    if (self->class_filter != NULL)
      g_array_unref (self->class_filter);
    self->class_filter = ok ? filter : NULL;
    g_free (self->classes_error);
    self->classes_error = ok ? NULL : g_strdup (error->message);
    filter = NULL;
  }
  GST_OBJECT_UNLOCK (self);

  if (filter != NULL)
    g_array_unref (filter);
  if (!ok && running)
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("Ignoring the new \"classes\" value: %s", error->message),
        ("the previous class filter stays in use"));
}

static void
gst_ssfpn_detect_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (object);
  gboolean latency_changed = FALSE;
  gboolean holds_more = FALSE;

  switch (prop_id) {
    case PROP_MODEL:
      set_string_unless_running (self, pspec, &self->model_path, value);
      break;
    case PROP_LABELS:
      set_string_unless_running (self, pspec, &self->labels_path, value);
      break;
    case PROP_DEVICE:
      set_string_unless_running (self, pspec, &self->device, value);
      break;
    case PROP_MODEL_INSTANCE_ID:
      set_string_unless_running (self, pspec, &self->model_instance_id,
          value);
      break;
    case PROP_PRECISION:
      GST_OBJECT_LOCK (self);
      if (!refuse_while_running (self, pspec))
        self->precision = g_value_get_enum (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_AUGMENT:
      GST_OBJECT_LOCK (self);
      if (!refuse_while_running (self, pspec))
        self->augment = g_value_get_enum (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_INPUT_SIZE:
      GST_OBJECT_LOCK (self);
      if (!refuse_while_running (self, pspec))
        self->input_size = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_BATCH_SIZE:
      GST_OBJECT_LOCK (self);
      if (!refuse_while_running (self, pspec))
        self->batch_size = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_CONF_THRESHOLD:
      GST_OBJECT_LOCK (self);
      self->conf_threshold = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_IOU_THRESHOLD:
      GST_OBJECT_LOCK (self);
      self->iou_threshold = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_MAX_DETECTIONS:
      GST_OBJECT_LOCK (self);
      self->max_detections = g_value_get_int (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_AGNOSTIC_NMS:
      GST_OBJECT_LOCK (self);
      self->agnostic_nms = g_value_get_boolean (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_CLASSES:
      set_classes (self, g_value_get_string (value));
      break;
    case PROP_INFERENCE_INTERVAL:
      GST_OBJECT_LOCK (self);
      latency_changed = self->inference_interval != g_value_get_uint (value)
          && self->batch_size > 1;
      holds_more = g_value_get_uint (value) > self->inference_interval
          && self->batch_size > 1;
      self->inference_interval = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_POST_MESSAGES:
      GST_OBJECT_LOCK (self);
      self->post_messages = g_value_get_boolean (value);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }

  /* Frames now wait longer or shorter for their batch. */
  if (latency_changed)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  /* More frames can now be held than upstream pools were sized for: ask
   * upstream to negotiate its allocation again (a no-op when not linked
   * or not streaming). */
  if (holds_more)
    gst_pad_push_event (GST_BASE_TRANSFORM_SINK_PAD (self),
        gst_event_new_reconfigure ());
}

static void
gst_ssfpn_detect_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_LABELS:
      g_value_set_string (value, self->labels_path);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->device);
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, self->precision);
      break;
    case PROP_AUGMENT:
      g_value_set_enum (value, self->augment);
      break;
    case PROP_CONF_THRESHOLD:
      g_value_set_double (value, self->conf_threshold);
      break;
    case PROP_IOU_THRESHOLD:
      g_value_set_double (value, self->iou_threshold);
      break;
    case PROP_MAX_DETECTIONS:
      g_value_set_int (value, self->max_detections);
      break;
    case PROP_AGNOSTIC_NMS:
      g_value_set_boolean (value, self->agnostic_nms);
      break;
    case PROP_CLASSES:
      g_value_set_string (value, self->classes_text);
      break;
    case PROP_INPUT_SIZE:
      g_value_set_uint (value, self->input_size);
      break;
    case PROP_INFERENCE_INTERVAL:
      g_value_set_uint (value, self->inference_interval);
      break;
    case PROP_BATCH_SIZE:
      g_value_set_uint (value, self->batch_size);
      break;
    case PROP_MODEL_INSTANCE_ID:
      g_value_set_string (value, self->model_instance_id);
      break;
    case PROP_POST_MESSAGES:
      g_value_set_boolean (value, self->post_messages);
      break;
    case PROP_MODEL_INFO:
      g_value_set_boxed (value, self->model_info);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- start and stop ---------------------------------------------------- */

static SsfpnPrecision
engine_precision (GstSsfpnPrecision precision)
{
  switch (precision) {
    case GST_SSFPN_PRECISION_FP32:
      return SSFPN_PRECISION_FP32;
    case GST_SSFPN_PRECISION_FP16:
      return SSFPN_PRECISION_FP16;
    case GST_SSFPN_PRECISION_AUTO:
    default:
      return SSFPN_PRECISION_DEFAULT;
  }
}

static const gchar *
precision_name (SsfpnPrecision precision)
{
  return precision == SSFPN_PRECISION_FP16 ? "fp16" : "fp32";
}

static void
post_model_error (GstSsfpnDetect * self, const gchar * path,
    const GError * error)
{
  if (g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT)) {
    /* the model cache: an id shared with another model file */
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", error->message),
        ("model \"%s\"", path ? path : ""));
  } else if (ssfpn_model_path_is_default (path)) {
    /* only a broken build: the default model is compiled in */
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("The built-in default model cannot be used: %s", error->message),
        ("%s", error->message));
  } else if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Model file \"%s\" does not exist.", path), ("%s", error->message));
  } else if (g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_IO)) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Cannot read model file \"%s\": %s", path, error->message),
        ("%s", error->message));
  } else {
    GST_ELEMENT_ERROR (self, STREAM, DECODE,
        ("Model file \"%s\" is not a usable ssFPN model: %s", path,
            error->message), ("%s", error->message));
  }
}

/* Labels from the file when one is set, else the model's class names. */
static GQuark *
load_labels (GstSsfpnDetect * self, const gchar * labels_path,
    SsfpnModel * model, int num_classes)
{
  GQuark *labels = g_new0 (GQuark, MAX (num_classes, 1));

  if (labels_path != NULL && *labels_path != '\0') {
    g_autoptr (GError) error = NULL;
    g_auto (GStrv) names = ssfpn_read_labels_file (labels_path, num_classes,
        &error);
    if (names == NULL) {
      if (g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_IO))
        GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("%s", error->message),
            (NULL));
      else
        GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", error->message),
            (NULL));
      g_free (labels);
      return NULL;
    }
    for (int i = 0; i < num_classes; i++)
      labels[i] = g_quark_from_string (names[i]);
    return labels;
  }

  for (int i = 0; i < num_classes; i++) {
    const char *name = ssfpn_model_class_name (model, i);
    g_autofree gchar *fallback = g_strdup_printf ("class-%d", i);
    labels[i] = g_quark_from_string (name != NULL ? name : fallback);
  }
  return labels;
}

static GstStructure *
model_info_new (const gchar * path, const gchar * instance_id,
    SsfpnModel * model, const GQuark * labels, const SsfpnContext * context)
{
  int height, width;
  ssfpn_context_input_size (context, &height, &width);

  GValue classes = G_VALUE_INIT;
  gst_value_array_init (&classes, ssfpn_model_num_classes (model));
  for (int i = 0; i < ssfpn_model_num_classes (model); i++) {
    GValue name = G_VALUE_INIT;
    g_value_init (&name, G_TYPE_STRING);
    g_value_set_string (&name, g_quark_to_string (labels[i]));
    gst_value_array_append_and_take_value (&classes, &name);
  }

  GstStructure *info = gst_structure_new ("model-info",
      "model", G_TYPE_STRING, path,
      "num-classes", G_TYPE_INT, ssfpn_model_num_classes (model),
      "input-width", G_TYPE_INT, width,
      "input-height", G_TYPE_INT, height,
      "device", G_TYPE_STRING, ssfpn_context_device (context),
      "precision", G_TYPE_STRING,
      precision_name (ssfpn_context_precision (context)),
      "augment", G_TYPE_STRING,
      ssfpn_augment_name (ssfpn_context_augment (context)),
      "batch-size", G_TYPE_INT, ssfpn_context_batch (context),
      "model-instance-id", G_TYPE_STRING, instance_id ? instance_id : "",
      NULL);
  gst_structure_take_value (info, "classes", &classes);
  return info;
}

/* A "classes" value set while start() ran was stored unchecked: keep it
 * if this model has those classes, else go back to the one start checked
 * (@started_text, @started_filter). Object lock held. */
static void
keep_checked_classes (GstSsfpnDetect * self, const gchar * started_text,
    GArray * started_filter, int num_classes)
{
  g_autoptr (GError) error = NULL;
  if (g_strcmp0 (self->classes_text, started_text) == 0)
    return;
  if (self->classes_error == NULL
      && ssfpn_check_class_filter (self->classes_text, self->class_filter,
          num_classes, &error))
    return;
  GST_WARNING_OBJECT (self, "ignoring the \"classes\" value \"%s\" set "
      "while starting: %s", self->classes_text,
      error ? error->message : self->classes_error);
  g_free (self->classes_text);
  self->classes_text = g_strdup (started_text);
  if (self->class_filter != NULL)
    g_array_unref (self->class_filter);
  self->class_filter = started_filter ? g_array_ref (started_filter) : NULL;
  g_clear_pointer (&self->classes_error, g_free);
}

static gboolean
gst_ssfpn_detect_start (GstBaseTransform * trans)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (trans);
  g_autoptr (GError) error = NULL;
  SsfpnModel *model = NULL;
  GQuark *labels = NULL;
  SsfpnInference *inference = NULL;

  GST_OBJECT_LOCK (self);
  g_autofree gchar *model_path = g_strdup (self->model_path);
  g_autofree gchar *labels_path = g_strdup (self->labels_path);
  g_autofree gchar *device = g_strdup (self->device);
  g_autofree gchar *instance_id = g_strdup (self->model_instance_id);
  g_autofree gchar *classes_text = g_strdup (self->classes_text);
  g_autofree gchar *classes_error = g_strdup (self->classes_error);
  GArray *class_filter = self->class_filter
      ? g_array_ref (self->class_filter) : NULL;
  GstSsfpnPrecision precision = self->precision;
  GstSsfpnAugment augment = self->augment;
  guint input_size = self->input_size;
  guint batch_size = self->batch_size;
  /* Loading and warming up can take seconds: the properties it uses are
   * refused until it is done, as they are while running. */
  self->starting = TRUE;
  GST_OBJECT_UNLOCK (self);

  if (classes_error != NULL)
    goto bad_classes_syntax;

  model = ssfpn_model_cache_acquire (instance_id, model_path, &error);
  if (model == NULL)
    goto model_failed;

  int num_classes = ssfpn_model_num_classes (model);
  if (!ssfpn_check_class_filter (classes_text, class_filter, num_classes,
          &error))
    goto bad_classes_range;

  int max_stride = ssfpn_model_max_stride (model);
  if (input_size % max_stride != 0)
    goto bad_input_size;

  labels = load_labels (self, labels_path, model, num_classes);
  if (labels == NULL)
    goto failed;

  SsfpnContextOptions options;
  ssfpn_context_options_init (&options);
  options.device = device;
  options.precision = engine_precision (precision);
  options.augment = augment == GST_SSFPN_AUGMENT_FLIPS
      ? SSFPN_AUGMENT_FLIPS : SSFPN_AUGMENT_NONE;
  options.batch = batch_size;
  options.height = options.width = input_size;
  inference = ssfpn_inference_new (instance_id, model, &options, &error);
  if (inference == NULL)
    goto context_failed;

  const SsfpnContext *context = ssfpn_inference_context (inference);
  if (device == NULL || g_str_equal (device, "auto"))
    GST_INFO_OBJECT (self, "device=auto: running on %s%s",
        ssfpn_context_device (context),
        g_str_equal (ssfpn_context_device (context), "cpu")
        ? " (no usable GPU found)" : "");

  GST_OBJECT_LOCK (self);
  self->starting = FALSE;
  keep_checked_classes (self, classes_text, class_filter, num_classes);
  self->model = model;
  self->active_instance_id = g_steal_pointer (&instance_id);
  self->inference = inference;
  self->labels = labels;
  self->num_classes = num_classes;
  self->model_info = model_info_new (ssfpn_model_path (model),
      self->active_instance_id, model, labels, context);
  self->processing_latency =
      ssfpn_inference_last_run_us (inference) * GST_USECOND;
  /* What the latency query adds for the run itself, for applications and
   * tests that need the batching part alone. */
  gst_structure_set (self->model_info, "processing-latency", G_TYPE_UINT64,
      (guint64) self->processing_latency, NULL);
  GST_OBJECT_UNLOCK (self);

  self->queue = ssfpn_frame_queue_new ();
  self->mapped = g_new0 (GstVideoFrame,
      ssfpn_inference_batch_size (inference));
  self->n_mapped = 0;
  self->frame_count = 0;
  GST_INFO_OBJECT (self, "started: %" GST_PTR_FORMAT, self->model_info);
  g_object_notify (G_OBJECT (self), "model-info");
  if (class_filter != NULL)
    g_array_unref (class_filter);
  return TRUE;

bad_classes_syntax:
  GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
      ("Invalid \"classes\" property: %s", classes_error), (NULL));
  goto failed;
model_failed:
  post_model_error (self, model_path, error);
  goto failed;
bad_classes_range:
  GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
      ("Invalid \"classes\" property: %s", error->message), (NULL));
  goto failed;
bad_input_size:
  {
    /* The multiples around the value; never 0, which means "the model's". */
    guint below = MAX (input_size / max_stride, 1) * max_stride;
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid \"input-size\" property %u: it must be a multiple of the "
            "model's largest stride %d, for example %u or %u.", input_size,
            max_stride, below, below + max_stride), (NULL));
  }
  goto failed;
context_failed:
  if (g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_DEVICE))
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Device \"%s\" cannot be used: %s", device ? device : "auto",
            error->message), (NULL));
  else
    GST_ELEMENT_ERROR (self, LIBRARY, INIT,
        ("Cannot prepare model \"%s\" on device \"%s\" (precision %s, "
            "batch-size %u, input-size %u): %s", ssfpn_model_path (model),
            device ? device : "auto",
            g_enum_get_value (g_type_class_peek (GST_TYPE_SSFPN_PRECISION),
                precision)->value_nick, batch_size, input_size,
            error->message), (NULL));
  goto failed;
failed:
  GST_OBJECT_LOCK (self);
  self->starting = FALSE;
  GST_OBJECT_UNLOCK (self);
  g_free (labels);
  ssfpn_model_cache_release (instance_id, model);
  if (class_filter != NULL)
    g_array_unref (class_filter);
  return FALSE;
}

/* The frames of the batch that ran or was dropped are no longer read. */
static void
unmap_batch_frames (GstSsfpnDetect * self)
{
  for (guint i = 0; i < self->n_mapped; i++)
    gst_video_frame_unmap (&self->mapped[i]);
  self->n_mapped = 0;
}

static gboolean
gst_ssfpn_detect_stop (GstBaseTransform * trans)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (trans);

  unmap_batch_frames (self);
  g_clear_pointer (&self->mapped, g_free);
  g_clear_pointer (&self->queue, ssfpn_frame_queue_free);

  GST_OBJECT_LOCK (self);
  SsfpnModel *model = g_steal_pointer (&self->model);
  g_autofree gchar *instance_id = g_steal_pointer (&self->active_instance_id);
  SsfpnInference *inference = g_steal_pointer (&self->inference);
  g_clear_pointer (&self->labels, g_free);
  g_clear_pointer (&self->model_info, gst_structure_free);
  self->num_classes = 0;
  self->frame_duration = GST_CLOCK_TIME_NONE;
  self->processing_latency = 0;
  GST_OBJECT_UNLOCK (self);

  ssfpn_inference_free (inference);
  ssfpn_model_cache_release (instance_id, model);
  g_object_notify (G_OBJECT (self), "model-info");
  return TRUE;
}

/* ---- caps -------------------------------------------------------------- */

static gboolean
frame_format_from_video (GstVideoFormat format, SsfpnFrameFormat * out)
{
  switch (format) {
    case GST_VIDEO_FORMAT_RGB:
      *out = SSFPN_FRAME_RGB;
      return TRUE;
    case GST_VIDEO_FORMAT_BGR:
      *out = SSFPN_FRAME_BGR;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBA:
      *out = SSFPN_FRAME_RGBA;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
      *out = SSFPN_FRAME_BGRA;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBx:
      *out = SSFPN_FRAME_RGBX;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRx:
      *out = SSFPN_FRAME_BGRX;
      return TRUE;
    case GST_VIDEO_FORMAT_NV12:
      *out = SSFPN_FRAME_NV12;
      return TRUE;
    case GST_VIDEO_FORMAT_I420:
      *out = SSFPN_FRAME_I420;
      return TRUE;
    default:
      return FALSE;
  }
}

/* The YUV to RGB conversion the caps ask for. The engine knows BT.601 and
 * BT.709; other matrices (BT.2020, SMPTE 240M) are close to BT.709 and
 * use it, with a warning. */
static void
frame_colour_from_video (GstSsfpnDetect * self, const GstVideoInfo * info,
    SsfpnFrame * frame)
{
  const GstVideoColorimetry *colorimetry = &info->colorimetry;

  frame->range = colorimetry->range == GST_VIDEO_COLOR_RANGE_0_255
      ? SSFPN_COLOR_RANGE_FULL : SSFPN_COLOR_RANGE_LIMITED;
  switch (colorimetry->matrix) {
    case GST_VIDEO_COLOR_MATRIX_BT601:
    case GST_VIDEO_COLOR_MATRIX_FCC:
      /* FCC's Kr 0.30, Kb 0.11 are within 0.004 of BT.601's 0.299, 0.114;
       * BT.709's are 0.2126, 0.0722. */
      frame->matrix = SSFPN_COLOR_MATRIX_BT601;
      break;
    case GST_VIDEO_COLOR_MATRIX_BT709:
      frame->matrix = SSFPN_COLOR_MATRIX_BT709;
      break;
    default:
      frame->matrix = SSFPN_COLOR_MATRIX_BT709;
      if (GST_VIDEO_INFO_IS_YUV (info))
        GST_WARNING_OBJECT (self, "colour matrix %d is not supported, "
            "converting with BT.709", colorimetry->matrix);
      break;
  }
}

static gboolean
gst_ssfpn_detect_set_caps (GstBaseTransform * trans, GstCaps * incaps,
    GstCaps * outcaps)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (trans);
  g_autoptr (GError) error = NULL;
  GstVideoInfo info;
  SsfpnFrame frame = { 0 };

  if (!gst_video_info_from_caps (&info, incaps)
      || !frame_format_from_video (GST_VIDEO_INFO_FORMAT (&info),
          &frame.format)) {
    GST_ERROR_OBJECT (self, "unsupported caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  frame.width = GST_VIDEO_INFO_WIDTH (&info);
  frame.height = GST_VIDEO_INFO_HEIGHT (&info);
  frame_colour_from_video (self, &info, &frame);

  /* The engine letterboxes each frame; refuse sizes it cannot here, where
   * the error names the caps, rather than on the first frame. */
  int input_height, input_width;
  SsfpnLetterboxTransform geometry;
  ssfpn_context_input_size (ssfpn_inference_context (self->inference),
      &input_height, &input_width);
  if (!ssfpn_letterbox_transform_init (&geometry, frame.width, frame.height,
          input_width, input_height, &error)) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("Cannot letterbox %dx%d frames into the %dx%d network input: %s",
            frame.width, frame.height, input_width, input_height,
            error->message), (NULL));
    return FALSE;
  }

  self->info = info;
  self->frame_template = frame;
  /* Held frames went out before the caps event; a carried result belongs
   * to the old frames (their size), so the first new frame is inferred. */
  self->frame_count = 0;

  GstClockTime duration = GST_VIDEO_INFO_FPS_N (&info) > 0
      ? gst_util_uint64_scale_int (GST_SECOND, GST_VIDEO_INFO_FPS_D (&info),
      GST_VIDEO_INFO_FPS_N (&info)) : GST_CLOCK_TIME_NONE;
  GST_OBJECT_LOCK (self);
  gboolean latency_changed = duration != self->frame_duration
      && self->batch_size > 1;
  self->frame_duration = duration;
  GST_OBJECT_UNLOCK (self);
  self->duration_from_buffers = !GST_CLOCK_TIME_IS_VALID (duration);
  if (latency_changed)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));

  GST_DEBUG_OBJECT (self, "letterboxing %dx%d %s frames into %dx%d",
      frame.width, frame.height,
      gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (&info)), input_width,
      input_height);
  return TRUE;
}

/* ---- streaming --------------------------------------------------------- */

static GstFlowReturn
run_batch (GstSsfpnDetect * self)
{
  g_autoptr (GError) error = NULL;
  SsfpnNmsOptions nms;

  ssfpn_nms_options_init (&nms);
  GST_OBJECT_LOCK (self);
  nms.conf_threshold = self->conf_threshold;
  nms.iou_threshold = self->iou_threshold;
  nms.max_detections = self->max_detections;
  nms.agnostic = self->agnostic_nms;
  GArray *filter = self->class_filter ? g_array_ref (self->class_filter)
      : NULL;
  GST_OBJECT_UNLOCK (self);
  if (filter != NULL) {
    nms.classes = (const int *) filter->data;
    nms.n_classes = filter->len;
  }

  GPtrArray *results = ssfpn_inference_run (self->inference, &nms, &error);
  unmap_batch_frames (self);
  if (filter != NULL)
    g_array_unref (filter);
  if (results == NULL) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
        ("Inference failed on device %s: %s",
            ssfpn_context_device (ssfpn_inference_context (self->inference)),
            error->message), (NULL));
    ssfpn_frame_queue_clear (self->queue);
    return GST_FLOW_ERROR;
  }

  GST_LOG_OBJECT (self, "ran a batch of %u frames in %" G_GINT64_FORMAT " us",
      results->len, ssfpn_inference_last_run_us (self->inference));
  ssfpn_frame_queue_set_results (self->queue, results);
  g_ptr_array_unref (results);
  return GST_FLOW_OK;
}

static void
post_detections_message (GstSsfpnDetect * self, const SsfpnReadyFrame * frame)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  GstClockTime timestamp = GST_BUFFER_PTS (frame->buffer);
  GstStructure *s = ssfpn_detection_message_structure (frame->detections,
      frame->frame_width, frame->frame_height, self->labels,
      self->num_classes);

  /* Only a time segment gives the frame a stream and running time (appsrc,
   * for one, defaults to bytes). */
  GstClockTime stream_time = GST_CLOCK_TIME_NONE;
  GstClockTime running_time = GST_CLOCK_TIME_NONE;
  if (trans->segment.format == GST_FORMAT_TIME) {
    stream_time = gst_segment_to_stream_time (&trans->segment,
        GST_FORMAT_TIME, timestamp);
    running_time = gst_segment_to_running_time (&trans->segment,
        GST_FORMAT_TIME, timestamp);
  }

  gst_structure_set (s,
      "timestamp", G_TYPE_UINT64, timestamp,
      "stream-time", G_TYPE_UINT64, stream_time,
      "running-time", G_TYPE_UINT64, running_time,
      "duration", G_TYPE_UINT64, GST_BUFFER_DURATION (frame->buffer),
      "inferred", G_TYPE_BOOLEAN, frame->inferred, NULL);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

/* The next held frame whose result is known, with its metadata attached. */
static GstBuffer *
pop_ready_frame (GstSsfpnDetect * self)
{
  SsfpnReadyFrame frame;

  if (self->queue == NULL || !ssfpn_frame_queue_pop_ready (self->queue,
          &frame))
    return NULL;

  ssfpn_detection_meta_attach (frame.buffer, frame.frame_width,
      frame.frame_height, frame.detections, self->labels, self->num_classes);

  GST_OBJECT_LOCK (self);
  gboolean post = self->post_messages;
  GST_OBJECT_UNLOCK (self);
  if (post)
    post_detections_message (self, &frame);

  g_array_unref (frame.detections);
  return frame.buffer;
}

/* Runs the partial batch and pushes every held frame downstream, so that
 * they leave before the event that made us drain (EOS, new caps, a new
 * segment). */
static GstFlowReturn
drain (GstSsfpnDetect * self)
{
  GstFlowReturn ret = GST_FLOW_OK;
  GstBuffer *buffer;

  if (self->inference == NULL || self->queue == NULL)
    return GST_FLOW_OK;
  if (ssfpn_inference_pending (self->inference) > 0)
    ret = run_batch (self);

  GST_DEBUG_OBJECT (self, "draining %u frames",
      ssfpn_frame_queue_length (self->queue));
  while ((buffer = pop_ready_frame (self)) != NULL) {
    if (ret == GST_FLOW_OK)
      ret = gst_pad_push (GST_BASE_TRANSFORM_SRC_PAD (self), buffer);
    else
      gst_buffer_unref (buffer);
  }
  return ret;
}

static void
discard_held_frames (GstSsfpnDetect * self)
{
  if (self->inference != NULL)
    ssfpn_inference_discard (self->inference);
  unmap_batch_frames (self);
  if (self->queue != NULL)
    ssfpn_frame_queue_clear (self->queue);
  self->frame_count = 0;
}

static gboolean
gst_ssfpn_detect_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (trans);

  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP) {
    discard_held_frames (self);
  } else if (GST_EVENT_IS_SERIALIZED (event)) {
    /* Held frames belong before this event in the stream. */
    GstFlowReturn ret = drain (self);
    if (ret != GST_FLOW_OK)
      GST_DEBUG_OBJECT (self, "draining before %s: %s",
          GST_EVENT_TYPE_NAME (event), gst_flow_get_name (ret));
    /* A new stream (concat, a playlist) or segment (a seek) may show
     * other pictures with the same caps: no result carries across. */
    if (GST_EVENT_TYPE (event) == GST_EVENT_STREAM_START
        || GST_EVENT_TYPE (event) == GST_EVENT_SEGMENT)
      self->frame_count = 0;
  }

  return GST_BASE_TRANSFORM_CLASS (gst_ssfpn_detect_parent_class)->sink_event
      (trans, event);
}

/* Frames waiting for their batch stay with us: the first inferred frame of
 * a batch waits for the last, (batch-size - 1) x inference-interval frames
 * later, with every frame in between. Ask upstream pools for that many
 * buffers more, or a source with a small fixed pool would stall waiting
 * for its own buffers to come back. */
static gboolean
gst_ssfpn_detect_propose_allocation (GstBaseTransform * trans,
    GstQuery * decide_query, GstQuery * query)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (trans);

  /* An in-place element forwards the query downstream; sinks such as
   * fakesink and appsink do not answer it, which must not stop us from
   * asking for the frames we hold. */
  gboolean answered =
      GST_BASE_TRANSFORM_CLASS (gst_ssfpn_detect_parent_class)->
      propose_allocation (trans, decide_query, query);

  GST_OBJECT_LOCK (self);
  guint held = ssfpn_frames_held (self->batch_size, self->inference_interval);
  GST_OBJECT_UNLOCK (self);
  if (held == 0)
    return answered;

  guint n_pools = gst_query_get_n_allocation_pools (query);
  for (guint i = 0; i < n_pools; i++) {
    GstBufferPool *pool = NULL;
    guint size, min, max;
    gst_query_parse_nth_allocation_pool (query, i, &pool, &size, &min, &max);
    min = held > G_MAXUINT - min ? G_MAXUINT : min + held;
    if (max != 0 && max < min)
      max = min;
    gst_query_set_nth_allocation_pool (query, i, pool, size, min, max);
    if (pool)
      gst_object_unref (pool);
  }
  if (n_pools == 0) {
    GstCaps *caps = NULL;
    GstVideoInfo info;
    gst_query_parse_allocation (query, &caps, NULL);
    if (caps == NULL || !gst_video_info_from_caps (&info, caps))
      return answered;
    gst_query_add_allocation_pool (query, NULL, (guint) info.size, held, 0);
  }
  return TRUE;
}

static gboolean
gst_ssfpn_detect_query (GstBaseTransform * trans, GstPadDirection direction,
    GstQuery * query)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (trans);

  /* Upstream asks for its buffers back (before reusing its pool, say):
   * serialized, so it comes from the streaming thread, like EOS. */
  if (direction == GST_PAD_SINK && GST_QUERY_TYPE (query) == GST_QUERY_DRAIN) {
    GstFlowReturn ret = drain (self);
    if (ret != GST_FLOW_OK)
      GST_DEBUG_OBJECT (self, "draining for a drain query: %s",
          gst_flow_get_name (ret));
  }

  if (direction != GST_PAD_SRC || GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return GST_BASE_TRANSFORM_CLASS (gst_ssfpn_detect_parent_class)->query
        (trans, direction, query);

  if (!GST_BASE_TRANSFORM_CLASS (gst_ssfpn_detect_parent_class)->query
      (trans, direction, query))
    return FALSE;

  gboolean live;
  GstClockTime min, max;
  gst_query_parse_latency (query, &live, &min, &max);

  /* The first frame of a batch waits for the other batch-size - 1 inferred
   * frames, inference-interval frames apart; then the run itself. */
  GST_OBJECT_LOCK (self);
  GstClockTime own = self->processing_latency;
  if (self->batch_size > 1 && GST_CLOCK_TIME_IS_VALID (self->frame_duration))
    own += self->frame_duration * (self->batch_size - 1)
        * self->inference_interval;
  GST_OBJECT_UNLOCK (self);

  GST_DEBUG_OBJECT (self, "adding %" GST_TIME_FORMAT " of latency",
      GST_TIME_ARGS (own));
  min += own;
  if (GST_CLOCK_TIME_IS_VALID (max))
    max += own;
  gst_query_set_latency (query, live, min, max);
  return TRUE;
}

/* Maps @buffer and adds it to the batch; it stays mapped until the batch
 * runs, so that the engine reads the pixels where they are (on a GPU
 * device: straight to the GPU, letterboxed there). */
static GstFlowReturn
stage_for_inference (GstSsfpnDetect * self, GstBuffer * buffer, int *slot)
{
  g_autoptr (GError) error = NULL;
  GstVideoFrame *video_frame = &self->mapped[self->n_mapped];

  if (!gst_video_frame_map (video_frame, &self->info, buffer, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED,
        ("Cannot read a %dx%d %s frame: the buffer does not match the caps.",
            GST_VIDEO_INFO_WIDTH (&self->info),
            GST_VIDEO_INFO_HEIGHT (&self->info),
            gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (&self->info))),
        ("buffer %" GST_PTR_FORMAT, buffer));
    return GST_FLOW_ERROR;
  }

  SsfpnFrame frame = self->frame_template;
  for (guint i = 0; i < GST_VIDEO_FRAME_N_PLANES (video_frame) && i < 3; i++) {
    frame.planes[i] = GST_VIDEO_FRAME_PLANE_DATA (video_frame, i);
    frame.strides[i] = GST_VIDEO_FRAME_PLANE_STRIDE (video_frame, i);
  }
  *slot = ssfpn_inference_add_frame (self->inference, &frame, &error);
  if (*slot < 0) {
    gst_video_frame_unmap (video_frame);
    GST_ELEMENT_ERROR (self, STREAM, FAILED,
        ("Cannot prepare a frame for the network: %s", error->message),
        (NULL));
    return GST_FLOW_ERROR;
  }
  self->n_mapped++;
  return GST_FLOW_OK;
}

/* Called by the parent's generate_output with a writable buffer: stage it
 * (add it to the batch when the network runs on it) and hold it until its
 * result is known. The queue takes its own reference; generate_output drops
 * the parent's and the mapping's goes when the batch has run, so the held
 * buffer is writable again for the metadata. */
static GstFlowReturn
gst_ssfpn_detect_transform_ip (GstBaseTransform * trans, GstBuffer * buffer)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (trans);
  GstFlowReturn ret = GST_FLOW_OK;
  int slot = -1;

  GST_OBJECT_LOCK (self);
  guint interval = self->inference_interval;
  /* A variable frame rate (0/1 in the caps): the first buffer with a
   * duration tells how long a batch waits, for the latency query. */
  gboolean latency_known = FALSE;
  if (self->duration_from_buffers && GST_BUFFER_DURATION_IS_VALID (buffer)) {
    self->frame_duration = GST_BUFFER_DURATION (buffer);
    self->duration_from_buffers = FALSE;
    latency_known = self->batch_size > 1;
  }
  GST_OBJECT_UNLOCK (self);
  if (latency_known)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));

  if (self->frame_count++ % interval == 0) {
    ret = stage_for_inference (self, buffer, &slot);
    if (ret != GST_FLOW_OK)
      return ret;
  }
  ssfpn_frame_queue_push (self->queue, gst_buffer_ref (buffer),
      GST_VIDEO_INFO_WIDTH (&self->info), GST_VIDEO_INFO_HEIGHT (&self->info),
      slot);

  if (ssfpn_inference_pending (self->inference)
      == ssfpn_inference_batch_size (self->inference))
    ret = run_batch (self);
  return ret;
}

static GstFlowReturn
gst_ssfpn_detect_generate_output (GstBaseTransform * trans,
    GstBuffer ** outbuf)
{
  GstSsfpnDetect *self = GST_SSFPN_DETECT (trans);
  GstBuffer *staged = NULL;

  /* The parent takes the queued input (if any), makes it writable and
   * passes it through transform_ip, which holds it. */
  GstFlowReturn ret =
      GST_BASE_TRANSFORM_CLASS (gst_ssfpn_detect_parent_class)->generate_output
      (trans, &staged);
  if (staged != NULL)
    gst_buffer_unref (staged);
  if (ret != GST_FLOW_OK) {
    *outbuf = NULL;
    return ret;
  }

  /* One frame per call: the base class calls again until we return none. */
  *outbuf = pop_ready_frame (self);
  return GST_FLOW_OK;
}
