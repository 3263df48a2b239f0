/* `ssfpn eval MODEL DATASET [--size S] [--conf 0.001] [--iou 0.6]
 * [--max-det 300] [--batch B] [--single-label | --class-agnostic] [--json]
 * [--dump-predictions FILE] [--dump-ground-truth FILE]`: COCO-style
 * evaluation on a YOLO-format dataset (docs/eval.md). Reads DATASET/images/
 * and DATASET/labels/, runs every image through ssfpn_context_detect with
 * YOLOv5 val.py's settings, and hands ground truths and detections to
 * coco_eval.c. The dumps are the same data as COCO JSON, for pycocotools
 * (scripts/check-coco-eval.sh).
 */
#include "cli.h"
#include "coco_eval.h"
#include "image_decode.h"
#include "ssfpn/ssfpn-frame.h"

#include <errno.h>
#include <math.h>
#include <string.h>

typedef struct {
  char *size_text;
  double conf;
  double iou;
  int max_det;
  int batch;
  gboolean single_label;
  gboolean class_agnostic;
  gboolean json;
  char *predictions_path;
  char *ground_truth_path;
} EvalOptions;

/* One image of the dataset: where it is, its size, and what it holds. */
typedef struct {
  char *path;
  char *file_name;
  int width, height;
  GArray *ground_truths; /* CocoGroundTruth */
  GArray *detections;    /* CocoDetection */
} EvalImage;

static void
eval_image_clear (EvalImage *image)
{
  g_free (image->path);
  g_free (image->file_name);
  if (image->ground_truths)
    g_array_free (image->ground_truths, TRUE);
  if (image->detections)
    g_array_free (image->detections, TRUE);
}

static gboolean
is_image_name (const char *name)
{
  g_autofree char *lower = g_ascii_strdown (name, -1);
  return g_str_has_suffix (lower, ".png") || g_str_has_suffix (lower, ".jpg")
         || g_str_has_suffix (lower, ".jpeg");
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The image files of DATASET/images/, sorted by name; other files there
 * are skipped, as YOLOv5 skips them. */
static GPtrArray *
list_images (const char *dataset, GError **error)
{
  g_autofree char *folder = g_build_filename (dataset, "images", NULL);
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) dir = g_dir_open (folder, 0, &local);
  if (dir == NULL)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO,
                   "dataset %s: cannot list its images: %s", dataset,
                   local->message);
      return NULL;
    }
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      /* A folder named like an image is one of the other files. */
      g_autofree char *path = g_build_filename (folder, name, NULL);
      if (is_image_name (name) && !g_file_test (path, G_FILE_TEST_IS_DIR))
        g_ptr_array_add (names, g_strdup (name));
    }
  if (names->len == 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO,
                   "dataset %s: no PNG or JPEG images in %s", dataset, folder);
      g_ptr_array_unref (names);
      return NULL;
    }
  g_ptr_array_sort (names, compare_names);
  return names;
}

static gboolean
parse_number (const char *text, double *value)
{
  char *end;
  errno = 0;
  *value = g_ascii_strtod (text, &end);
  return end != text && *end == '\0' && errno == 0 && isfinite (*value);
}

/* DATASET/labels/STEM.txt: one `class cx cy w h` line per object, sizes
 * normalised to the image. A missing file means an image without objects. */
static gboolean
read_labels (const char *dataset, EvalImage *image, int n_classes,
             GError **error)
{
  g_autofree char *stem = g_strdup (image->file_name);
  char *dot = strrchr (stem, '.');
  if (dot)
    *dot = '\0';
  g_autofree char *label_name = g_strconcat (stem, ".txt", NULL);
  g_autofree char *path = g_build_filename (dataset, "labels", label_name, NULL);
  g_autofree char *text = NULL;
  GError *local = NULL;

  if (!g_file_get_contents (path, &text, NULL, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          g_error_free (local);
          return TRUE;
        }
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "%s", local->message);
      g_error_free (local);
      return FALSE;
    }

  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (int n = 0; lines[n] != NULL; n++)
    {
      g_auto (GStrv) fields = g_strsplit_set (g_strstrip (lines[n]), " \t", -1);
      double v[5];
      int count = 0;
      gboolean ok = TRUE;
      for (int f = 0; fields[f] != NULL; f++)
        {
          if (fields[f][0] == '\0')
            continue;
          if (count == 5 || !parse_number (fields[f], &v[count]))
            ok = FALSE;
          else
            count++;
        }
      if (count == 0 && ok)
        continue; /* blank line */
      if (!ok || count != 5)
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s:%d: expected 'class cx cy w h' (5 numbers), got "
                       "'%s'", path, n + 1, lines[n]);
          return FALSE;
        }
      if (v[0] != floor (v[0]) || v[0] < 0 || v[0] >= n_classes)
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s:%d: class %g is not one of the model's %d classes "
                       "(0..%d)", path, n + 1, v[0], n_classes, n_classes - 1);
          return FALSE;
        }
      /* YOLOv5 refuses such a file too: a box in pixels, not normalised,
       * would otherwise be evaluated as a box far outside the image. */
      static const char *const field_names[5] = { "class", "cx", "cy", "w",
                                                  "h" };
      for (int k = 1; k < 5; k++)
        if (!(v[k] >= 0 && v[k] <= 1))
          {
            g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                         "%s:%d: %s %g is not normalised to [0, 1]", path,
                         n + 1, field_names[k], v[k]);
            return FALSE;
          }
      CocoGroundTruth gt = {
        .x = (v[1] - v[3] / 2) * image->width,
        .y = (v[2] - v[4] / 2) * image->height,
        .width = v[3] * image->width,
        .height = v[4] * image->height,
        .class_id = (int) v[0],
      };
      g_array_append_val (image->ground_truths, gt);
    }
  return TRUE;
}

/* Whether the image can be letterboxed into the network input, so that a
 * batch that cannot names the image at fault. */
static gboolean
image_fits_input (SsfpnContext *context, const EvalImage *image,
                  GError **error)
{
  int height, width;
  ssfpn_context_input_size (context, &height, &width);
  SsfpnLetterbox *letterbox = ssfpn_letterbox_new (image->width,
                                                   image->height, width,
                                                   height, error);
  if (letterbox == NULL)
    {
      g_prefix_error (error, "%s: ", image->path);
      return FALSE;
    }
  ssfpn_letterbox_free (letterbox);
  return TRUE;
}

/* Decodes, labels and detects up to a batch of images at once. */
static gboolean
evaluate_batch (SsfpnContext *context, const SsfpnNmsOptions *nms,
                const char *dataset, int n_classes, EvalImage *images,
                int n_images, SsfpnDetection *results, int capacity,
                int *counts, GError **error)
{
  DecodedImage **decoded = g_new0 (DecodedImage *, n_images);
  SsfpnFrame *frames = g_new0 (SsfpnFrame, n_images);
  gboolean ok = FALSE;
  int n_decoded = 0;

  for (; n_decoded < n_images; n_decoded++)
    {
      EvalImage *image = &images[n_decoded];
      DecodedImage *pixels = image_decode_file (image->path, error);
      if (pixels == NULL)
        goto out;
      decoded[n_decoded] = pixels;
      image->width = pixels->width;
      image->height = pixels->height;
      if (!image_fits_input (context, image, error))
        {
          n_decoded++;
          goto out;
        }
      frames[n_decoded] = (SsfpnFrame) {
        .format = SSFPN_FRAME_RGB,
        .width = pixels->width,
        .height = pixels->height,
        .planes = { pixels->pixels },
        .strides = { pixels->width * 3 },
      };
      if (!read_labels (dataset, image, n_classes, error))
        {
          n_decoded++;
          goto out;
        }
    }

  if (!ssfpn_context_detect (context, frames, n_images, nms, results,
                             capacity, counts, error))
    {
      /* Each image was checked above: what is left concerns the batch. */
      if (n_images == 1)
        g_prefix_error (error, "%s: ", images[0].path);
      else
        g_prefix_error (error, "the batch of %s and %d more: ",
                        images[0].path, n_images - 1);
      goto out;
    }
  for (int i = 0; i < n_images; i++)
    for (int k = 0; k < counts[i]; k++)
      {
        const SsfpnDetection *d = &results[(gsize) i * capacity + k];
        /* A box with NaN or infinite corners (NMS keeps them, as YOLOv5
         * does) overlaps nothing; COCO has no such box, so it is left out
         * rather than failing the run. */
        if (!isfinite (d->x1) || !isfinite (d->y1) || !isfinite (d->x2)
            || !isfinite (d->y2))
          continue;
        /* COCO boxes are corner and size; the size in double, as the
         * dump writes it, so pycocotools sees the same numbers. */
        CocoDetection det = {
          .x = d->x1,
          .y = d->y1,
          .width = MAX (0.0, (double) d->x2 - (double) d->x1),
          .height = MAX (0.0, (double) d->y2 - (double) d->y1),
          .score = d->confidence,
          .class_id = d->class_id,
        };
        g_array_append_val (images[i].detections, det);
      }
  ok = TRUE;

out:
  for (int i = 0; i < n_decoded; i++)
    decoded_image_free (decoded[i]);
  g_free (decoded);
  g_free (frames);
  return ok;
}

/* The classes the figures are over: the model's, or one when every class
 * counts as the same. */
static int
eval_num_classes (const SsfpnModel *model, const EvalOptions *opts)
{
  return opts->class_agnostic ? 1 : ssfpn_model_num_classes (model);
}

static const char *
eval_class_name (const SsfpnModel *model, const EvalOptions *opts, int c)
{
  if (opts->class_agnostic)
    return "object";
  const char *name = ssfpn_model_class_name (model, c);
  return name ? name : "";
}

/* --class-agnostic: class 0 for every label and detection. */
static void
forget_classes (EvalImage *image)
{
  for (guint k = 0; k < image->ground_truths->len; k++)
    g_array_index (image->ground_truths, CocoGroundTruth, k).class_id = 0;
  for (guint k = 0; k < image->detections->len; k++)
    g_array_index (image->detections, CocoDetection, k).class_id = 0;
}

static JsonNode *
box_json (double x, double y, double width, double height)
{
  JsonArray *box = json_array_new ();
  json_array_add_double_element (box, x);
  json_array_add_double_element (box, y);
  json_array_add_double_element (box, width);
  json_array_add_double_element (box, height);
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (node, box);
  return node;
}

static gboolean
write_json_file (const char *path, JsonNode *node, GError **error)
{
  FILE *file = fopen (path, "w");
  if (file == NULL)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "cannot write %s: %s",
                   path, g_strerror (errno));
      return FALSE;
    }
  cli_print_json (file, node);
  /* A write that failed before the last one leaves only the error flag. */
  gboolean ok = !ferror (file);
  int saved = errno;
  if (fclose (file) != 0)
    {
      ok = FALSE;
      saved = errno;
    }
  if (!ok)
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO, "cannot write %s: %s",
                 path, g_strerror (saved));
  return ok;
}

/* COCO results: image ids are 1-based positions in name order, category
 * ids the class indices, in the order the evaluation saw them. */
static gboolean
dump_predictions (const char *path, const EvalImage *images, int n_images,
                  GError **error)
{
  JsonArray *list = json_array_new ();
  for (int i = 0; i < n_images; i++)
    for (guint k = 0; k < images[i].detections->len; k++)
      {
        const CocoDetection *d = &g_array_index (images[i].detections,
                                                 CocoDetection, k);
        JsonObject *o = json_object_new ();
        json_object_set_int_member (o, "image_id", i + 1);
        json_object_set_int_member (o, "category_id", d->class_id);
        json_object_set_member (o, "bbox", box_json (d->x, d->y, d->width,
                                                     d->height));
        json_object_set_double_member (o, "score", d->score);
        json_array_add_object_element (list, o);
      }
  JsonNode *root = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (root, list);
  gboolean ok = write_json_file (path, root, error);
  json_node_unref (root);
  return ok;
}

/* COCO annotations, with area = w x h and no crowds. */
static gboolean
dump_ground_truth (const char *path, const SsfpnModel *model,
                   const EvalOptions *opts, const EvalImage *images,
                   int n_images, GError **error)
{
  JsonArray *image_list = json_array_new ();
  JsonArray *annotations = json_array_new ();
  JsonArray *categories = json_array_new ();
  int id = 0;

  for (int i = 0; i < n_images; i++)
    {
      JsonObject *im = json_object_new ();
      json_object_set_int_member (im, "id", i + 1);
      json_object_set_string_member (im, "file_name", images[i].file_name);
      json_object_set_int_member (im, "width", images[i].width);
      json_object_set_int_member (im, "height", images[i].height);
      json_array_add_object_element (image_list, im);
      for (guint k = 0; k < images[i].ground_truths->len; k++)
        {
          const CocoGroundTruth *g = &g_array_index (images[i].ground_truths,
                                                     CocoGroundTruth, k);
          JsonObject *a = json_object_new ();
          json_object_set_int_member (a, "id", ++id);
          json_object_set_int_member (a, "image_id", i + 1);
          json_object_set_int_member (a, "category_id", g->class_id);
          json_object_set_member (a, "bbox", box_json (g->x, g->y, g->width,
                                                       g->height));
          json_object_set_double_member (a, "area", g->width * g->height);
          json_object_set_int_member (a, "iscrowd", 0);
          json_array_add_object_element (annotations, a);
        }
    }
  for (int c = 0; c < eval_num_classes (model, opts); c++)
    {
      JsonObject *cat = json_object_new ();
      json_object_set_int_member (cat, "id", c);
      json_object_set_string_member (cat, "name", eval_class_name (model, opts, c));
      json_array_add_object_element (categories, cat);
    }

  JsonObject *root_object = json_object_new ();
  json_object_set_array_member (root_object, "images", image_list);
  json_object_set_array_member (root_object, "annotations", annotations);
  json_object_set_array_member (root_object, "categories", categories);
  JsonNode *root = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (root, root_object);
  gboolean ok = write_json_file (path, root, error);
  json_node_unref (root);
  return ok;
}

typedef struct {
  const char *model_path;
  const char *dataset;
  const char *device;
  const char *augment;
  int height, width;
  int n_images;
  int n_instances;
  double seconds;
} EvalRun;

static JsonNode *
result_json (const SsfpnModel *model, const EvalRun *run,
             const EvalOptions *opts, const CocoEvalResult *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, run->model_path);
  json_builder_set_member_name (b, "dataset");
  json_builder_add_string_value (b, run->dataset);
  json_builder_set_member_name (b, "device");
  json_builder_add_string_value (b, run->device);
  json_builder_set_member_name (b, "augment");
  json_builder_add_string_value (b, run->augment);
  json_builder_set_member_name (b, "size");
  json_builder_begin_array (b);
  json_builder_add_int_value (b, run->height);
  json_builder_add_int_value (b, run->width);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "conf");
  json_builder_add_double_value (b, opts->conf);
  json_builder_set_member_name (b, "iou");
  json_builder_add_double_value (b, opts->iou);
  json_builder_set_member_name (b, "max_det");
  json_builder_add_int_value (b, opts->max_det);
  json_builder_set_member_name (b, "multi_label");
  json_builder_add_boolean_value (b, !opts->single_label && !opts->class_agnostic);
  json_builder_set_member_name (b, "class_agnostic");
  json_builder_add_boolean_value (b, opts->class_agnostic);
  json_builder_set_member_name (b, "images");
  json_builder_add_int_value (b, run->n_images);
  json_builder_set_member_name (b, "instances");
  json_builder_add_int_value (b, run->n_instances);

  const struct { const char *name; double value; } figures[] = {
    { "ap", r->ap }, { "ap50", r->ap50 }, { "ap75", r->ap75 },
    { "ap_small", r->ap_small }, { "ap_medium", r->ap_medium },
    { "ap_large", r->ap_large },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (figures); i++)
    {
      json_builder_set_member_name (b, figures[i].name);
      json_builder_add_double_value (b, figures[i].value);
    }

  json_builder_set_member_name (b, "classes");
  json_builder_begin_array (b);
  for (int c = 0; c < r->n_classes; c++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "class_id");
      json_builder_add_int_value (b, c);
      json_builder_set_member_name (b, "label");
      json_builder_add_string_value (b, eval_class_name (model, opts, c));
      json_builder_set_member_name (b, "instances");
      json_builder_add_int_value (b, r->class_instances[c]);
      json_builder_set_member_name (b, "detections");
      json_builder_add_int_value (b, r->class_detections[c]);
      json_builder_set_member_name (b, "ap");
      json_builder_add_double_value (b, r->class_ap[c]);
      json_builder_set_member_name (b, "ap50");
      json_builder_add_double_value (b, r->class_ap50[c]);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "seconds");
  json_builder_add_double_value (b, run->seconds);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* pycocotools' summary lines (the AP half), then a table per class. */
static void
print_result (const SsfpnModel *model, const EvalRun *run,
              const EvalOptions *opts, const CocoEvalResult *r)
{
  printf ("%s on %s: %d images, %d instances, %dx%d on %s%s%s, conf %g, "
          "iou %g, max-det %d, %s NMS, %.1f s\n", run->model_path,
          run->dataset, run->n_images, run->n_instances, run->height,
          run->width, run->device,
          strcmp (run->augment, "none") == 0 ? "" : ", augment ",
          strcmp (run->augment, "none") == 0 ? "" : run->augment,
          opts->conf, opts->iou, opts->max_det,
          opts->class_agnostic ? "class-agnostic"
          : opts->single_label ? "single-label" : "multi-label", run->seconds);
  const struct { const char *iou, *area; double value; } lines[] = {
    { "0.50:0.95", "   all", r->ap }, { "0.50     ", "   all", r->ap50 },
    { "0.75     ", "   all", r->ap75 }, { "0.50:0.95", " small", r->ap_small },
    { "0.50:0.95", "medium", r->ap_medium }, { "0.50:0.95", " large", r->ap_large },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (lines); i++)
    printf (" Average Precision  (AP) @[ IoU=%s | area=%s | maxDets=100 ] = "
            "%.3f\n", lines[i].iou, lines[i].area, lines[i].value);
  printf ("\n%-16s %9s %10s %7s %7s\n", "class", "instances", "detections",
          "AP50", "AP");
  for (int c = 0; c < r->n_classes; c++)
    {
      printf ("%-16s %9d %10d %7.3f %7.3f\n", eval_class_name (model, opts, c),
              r->class_instances[c], r->class_detections[c], r->class_ap50[c],
              r->class_ap[c]);
    }
}

/* Returns 0, or the exit status of the usage error it printed. */
static int
check_options (const CliCommand *command, const EvalOptions *opts, int argc,
               char **argv, int *height, int *width)
{
  if (argc < 2)
    return cli_usage_error (command, "MODEL is missing");
  if (argc < 3)
    return cli_usage_error (command, "DATASET is missing");
  if (argc > 3)
    return cli_usage_error (command, "unexpected argument '%s'", argv[3]);
  if (opts->size_text != NULL
      && !cli_parse_size (opts->size_text, height, width))
    return cli_usage_error (command, "--size %s is not S or HxW", opts->size_text);
  int status = cli_check_nms_options (command, opts->conf, opts->iou,
                                      opts->max_det, NULL, NULL, NULL);
  if (status != 0)
    return status;
  if (opts->batch < 1 || opts->batch > SSFPN_MAX_BATCH)
    return cli_usage_error (command, "--batch %d is not between 1 and %d",
                            opts->batch, SSFPN_MAX_BATCH);
  if (opts->single_label && opts->class_agnostic)
    return cli_usage_error (command, "--single-label and --class-agnostic "
                            "exclude each other (--class-agnostic keeps each "
                            "box once already)");
  return 0;
}

int
cmd_eval (int argc, char **argv)
{
  EvalOptions opts = {
    .conf = 0.001, .iou = 0.6, .max_det = 300, .batch = 1,
  };
  const GOptionEntry entries[] = {
    { "size", 0, 0, G_OPTION_ARG_STRING, &opts.size_text,
      "network input S x S or H x W, multiples of the largest stride "
      "(default: the model's imgsz)", "S|HxW" },
    { "conf", 0, 0, G_OPTION_ARG_DOUBLE, &opts.conf,
      "confidence threshold (default 0.001, as YOLOv5's val.py)", "C" },
    { "iou", 0, 0, G_OPTION_ARG_DOUBLE, &opts.iou,
      "NMS IoU threshold (default 0.6, as val.py)", "T" },
    { "max-det", 0, 0, G_OPTION_ARG_INT, &opts.max_det,
      "at most K detections per image (default 300)", "K" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &opts.batch,
      "images per network run (default 1)", "B" },
    { "single-label", 0, 0, G_OPTION_ARG_NONE, &opts.single_label,
      "NMS keeps each box with its best class only, as detect.py and "
      "ssfpndetect do (default: once per class above --conf, as val.py)",
      NULL },
    { "class-agnostic", 0, 0, G_OPTION_ARG_NONE, &opts.class_agnostic,
      "every object and detection counts as one class, after NMS across "
      "classes: how well objects are found and placed, whatever their class",
      NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &opts.json,
      "print one JSON object instead of the tables", NULL },
    { "dump-predictions", 0, 0, G_OPTION_ARG_FILENAME, &opts.predictions_path,
      "also write the detections evaluated as COCO results JSON", "FILE" },
    { "dump-ground-truth", 0, 0, G_OPTION_ARG_FILENAME, &opts.ground_truth_path,
      "also write the labels as COCO annotations JSON", "FILE" },
    G_OPTION_ENTRY_NULL
  };
  CliCommand command;
  SsfpnModel *model = NULL;
  SsfpnContext *context = NULL;
  GPtrArray *names = NULL;
  EvalImage *images = NULL;
  CocoImage *coco_images = NULL;
  SsfpnDetection *results = NULL;
  int *counts = NULL;
  CocoEvalResult result = { 0 };
  GError *error = NULL;
  int height = 0, width = 0, n_images = 0;
  int status;

  cli_command_init (&command, "eval", "MODEL DATASET",
                    "COCO-style evaluation (AP@[.5:.95], AP50, AP75, AP "
                    "small/medium/large, AP per class) on a YOLO-format "
                    "dataset: DATASET/images/*.png|jpg and "
                    "DATASET/labels/<stem>.txt with 'class cx cy w h' lines, "
                    "normalised. Definition: docs/eval.md.", entries);
  if (!cli_command_parse (&command, &argc, &argv))
    {
      status = CLI_EXIT_USAGE;
      goto out;
    }
  if ((status = check_options (&command, &opts, argc, argv, &height,
                                 &width)) != 0)
    goto out;
  const char *dataset = argv[2];

  model = cli_open_model (argv[1], &error);
  if (model == NULL)
    {
      status = cli_fail (error);
      goto out;
    }
  if (opts.size_text == NULL)
    ssfpn_model_input_size (model, &height, &width);
  int stride = ssfpn_model_max_stride (model);
  if (height % stride != 0 || width % stride != 0)
    {
      status = cli_usage_error (&command, "--size %dx%d is not a multiple of the "
                                "model's largest stride %d", height, width, stride);
      goto out;
    }

  names = list_images (dataset, &error);
  if (names == NULL)
    {
      status = cli_fail (error);
      goto out;
    }
  n_images = (int) names->len;
  images = g_new0 (EvalImage, n_images);
  for (int i = 0; i < n_images; i++)
    {
      images[i].file_name = g_strdup (g_ptr_array_index (names, i));
      images[i].path = g_build_filename (dataset, "images",
                                         images[i].file_name, NULL);
      images[i].ground_truths = g_array_new (FALSE, FALSE, sizeof (CocoGroundTruth));
      images[i].detections = g_array_new (FALSE, FALSE, sizeof (CocoDetection));
    }

  SsfpnContextOptions context_options;
  cli_context_options (&command, &context_options);
  context_options.batch = MIN (opts.batch, n_images);
  context_options.height = height;
  context_options.width = width;
  context = ssfpn_context_new (model, &context_options, &error);
  if (context == NULL)
    {
      status = cli_fail (error);
      goto out;
    }

  /* val.py's settings, multi-label NMS included. */
  SsfpnNmsOptions nms;
  ssfpn_nms_options_init (&nms);
  nms.conf_threshold = (float) opts.conf;
  nms.iou_threshold = (float) opts.iou;
  nms.max_detections = opts.max_det;
  nms.multi_label = !opts.single_label && !opts.class_agnostic;
  nms.agnostic = opts.class_agnostic;
  const int batch = context_options.batch;
  const int n_classes = ssfpn_model_num_classes (model);
  /* NMS keeps no more than the output's rows, once per class when
   * multi-label: a larger --max-det needs no more room. */
  const gint64 most_kept = (gint64) ssfpn_context_output_rows (context)
    * (nms.multi_label ? n_classes : 1);
  const int capacity = (int) MAX (1, MIN (opts.max_det, most_kept));
  results = g_try_new (SsfpnDetection, (gsize) batch * capacity);
  if (results == NULL)
    {
      status = cli_fail (g_error_new (SSFPN_ERROR, SSFPN_ERROR_RUNTIME,
                                      "cannot allocate room for %d detections "
                                      "of %d images", capacity, batch));
      goto out;
    }
  counts = g_new0 (int, batch);

  double start = cli_now ();
  for (int i = 0; i < n_images; i += batch)
    if (!evaluate_batch (context, &nms, dataset, n_classes, images + i,
                         MIN (batch, n_images - i), results, capacity,
                         counts, &error))
      {
        status = cli_fail (error);
        goto out;
      }

  coco_images = g_new (CocoImage, n_images);
  int n_instances = 0;
  for (int i = 0; i < n_images; i++)
    {
      if (opts.class_agnostic)
        forget_classes (&images[i]);
      coco_images[i] = (CocoImage) {
        .ground_truths = (const CocoGroundTruth *) images[i].ground_truths->data,
        .n_ground_truths = (int) images[i].ground_truths->len,
        .detections = (const CocoDetection *) images[i].detections->data,
        .n_detections = (int) images[i].detections->len,
      };
      n_instances += (int) images[i].ground_truths->len;
    }
  if (!coco_evaluate (coco_images, n_images, eval_num_classes (model, &opts),
                      &result, &error))
    {
      status = cli_fail (error);
      goto out;
    }

  if ((opts.predictions_path != NULL
       && !dump_predictions (opts.predictions_path, images, n_images, &error))
      || (opts.ground_truth_path != NULL
          && !dump_ground_truth (opts.ground_truth_path, model, &opts,
                                 images, n_images, &error)))
    {
      status = cli_fail (error);
      goto out;
    }

  const EvalRun run = {
    .model_path = argv[1],
    .dataset = dataset,
    .device = ssfpn_context_device (context),
    .augment = ssfpn_augment_name (ssfpn_context_augment (context)),
    .height = height,
    .width = width,
    .n_images = n_images,
    .n_instances = n_instances,
    .seconds = cli_now () - start,
  };
  if (opts.json)
    {
      JsonNode *node = result_json (model, &run, &opts, &result);
      cli_print_json (stdout, node);
      json_node_unref (node);
    }
  else
    print_result (model, &run, &opts, &result);

out:
  coco_eval_result_clear (&result);
  for (int i = 0; images != NULL && i < n_images; i++)
    eval_image_clear (&images[i]);
  g_free (images);
  g_free (coco_images);
  g_free (results);
  g_free (counts);
  if (names)
    g_ptr_array_unref (names);
  ssfpn_context_free (context);
  if (model)
    ssfpn_model_unref (model);
  g_free (opts.size_text);
  g_free (opts.predictions_path);
  g_free (opts.ground_truth_path);
  cli_command_clear (&command);
  return status;
}
