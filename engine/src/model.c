/* The public model API: opening a file (metadata checked here, the network
 * built by graph_build.c), the queries, the layer table, parameter count
 * and FLOPs. */
#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "json_text.h"
#include "model.h"

/* ---- metadata ------------------------------------------------------------ */

static const char *
require_metadata (const SsfpnSafetensors *st, const char *key, GError **error)
{
  const char *value = ssfpn_safetensors_metadata (st, key);

  if (value == NULL)
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                 "%s: metadata %s is missing", st->source, key);
  return value;
}

/* Parses metadata @key as JSON; returns its root (a copy) or NULL. */
static JsonNode *
parse_metadata_json (const SsfpnSafetensors *st, const char *key,
                     GError **error)
{
  const char *text = require_metadata (st, key, error);

  if (text == NULL)
    return NULL;
  g_autofree char *what = g_strdup_printf ("%s: %s", st->source, key);
  return ssfpn_json_parse (text, strlen (text), what, error);
}

/* A JSON array of @min_length or more positive integers, as ints. */
static int *
parse_int_array (const SsfpnSafetensors *st, const char *key, int min_length,
                 int max_length, const char *usage, int *length,
                 GError **error)
{
  JsonNode *root = parse_metadata_json (st, key, error);
  JsonArray *array;
  int *values = NULL;
  guint n;

  if (root == NULL)
    return NULL;
  if (JSON_NODE_TYPE (root) != JSON_NODE_ARRAY)
    goto bad;
  array = json_node_get_array (root);
  n = json_array_get_length (array);
  if (n < (guint) min_length || n > (guint) max_length)
    goto bad;
  values = g_new (int, n);
  for (guint i = 0; i < n; i++)
    {
      /* 8.0 too: json.dumps of a float tensor's tolist() writes that. */
      JsonNode *element = json_array_get_element (array, i);
      if (JSON_NODE_TYPE (element) != JSON_NODE_VALUE)
        goto bad;
      GType type = json_node_get_value_type (element);
      double value = type == G_TYPE_INT64 ? (double) json_node_get_int (element)
        : type == G_TYPE_DOUBLE ? json_node_get_double (element) : 0.0;
      if (!(value >= 1 && value <= 1 << 16) || value != floor (value))
        goto bad;
      values[i] = (int) value;
    }
  *length = (int) n;
  json_node_unref (root);
  return values;

bad:
  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
               "%s: metadata %s must be %s, not %s", st->source, key, usage,
               ssfpn_safetensors_metadata (st, key));
  g_free (values);
  json_node_unref (root);
  return NULL;
}

static gboolean
read_names (SsfpnModel *model, const SsfpnSafetensors *st, GError **error)
{
  JsonNode *root = parse_metadata_json (st, "ssfpn.names", error);
  JsonArray *array;
  guint n;

  if (root == NULL)
    return FALSE;
  if (JSON_NODE_TYPE (root) != JSON_NODE_ARRAY)
    goto bad;
  array = json_node_get_array (root);
  n = json_array_get_length (array);
  model->names = g_new0 (char *, n + 1);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      if (JSON_NODE_TYPE (element) != JSON_NODE_VALUE
          || json_node_get_value_type (element) != G_TYPE_STRING)
        goto bad;
      model->names[i] = g_strdup (json_node_get_string (element));
    }
  json_node_unref (root);
  return TRUE;

bad:
  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
               "%s: metadata ssfpn.names must be a JSON array of class name "
               "strings", st->source);
  json_node_unref (root);
  return FALSE;
}

static gboolean
check_strides (const SsfpnModel *model, const SsfpnSafetensors *st,
               GError **error)
{
  const SsfpnGraph *graph = model->graph;
  int n = 0;
  int *strides = parse_int_array (st, "ssfpn.stride", 1, 64,
                                  "a JSON array of the Detect levels' strides",
                                  &n, error);
  gboolean same = strides != NULL && n == graph->nl;

  if (strides == NULL)
    return FALSE;
  for (int l = 0; same && l < n; l++)
    same = strides[l] == graph->strides[l];
  if (!same)
    {
      GString *actual = g_string_new ("[");
      for (int l = 0; l < graph->nl; l++)
        g_string_append_printf (actual, "%s%d", l > 0 ? ", " : "",
                                graph->strides[l]);
      g_string_append_c (actual, ']');
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: metadata ssfpn.stride %s disagrees with the strides "
                   "the network produces at Detect, %s", st->source,
                   ssfpn_safetensors_metadata (st, "ssfpn.stride"),
                   actual->str);
      g_string_free (actual, TRUE);
    }
  g_free (strides);
  return same;
}

static gboolean
model_load (SsfpnModel *model, const SsfpnSafetensors *st, GError **error)
{
  const char *format = require_metadata (st, "ssfpn.format", error);
  int *imgsz, n = 0;
  int n_names;

  if (format == NULL)
    return FALSE;
  if (strcmp (format, "1") != 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: metadata ssfpn.format is \"%s\"; this engine reads "
                   "format \"1\"", st->source, format);
      return FALSE;
    }
  if (!read_names (model, st, error))
    return FALSE;
  imgsz = parse_int_array (st, "ssfpn.imgsz", 2, 2,
                           "a JSON array [height, width] of positive integers",
                           &n, error);
  if (imgsz == NULL)
    return FALSE;
  model->imgsz[0] = imgsz[0];
  model->imgsz[1] = imgsz[1];
  g_free (imgsz);

  if (!ssfpn_model_build (model, st, error))
    return FALSE;
  n_names = (int) g_strv_length (model->names);
  if (n_names != model->graph->nc)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: metadata ssfpn.names has %d names but the "
                   "configuration has nc %d", st->source, n_names,
                   model->graph->nc);
      return FALSE;
    }
  return check_strides (model, st, error);
}

static void
model_free (SsfpnModel *model)
{
  g_free (model->path);
  ssfpn_graph_free (model->graph);
  if (model->layers != NULL)
    g_array_unref (model->layers);
  g_strfreev (model->names);
  g_free (model);
}

static SsfpnModel *
model_from_container (SsfpnSafetensors *st, const char *path, GError **error)
{
  SsfpnModel *model;

  if (st == NULL)
    return NULL;
  model = g_new0 (SsfpnModel, 1);
  model->ref_count = 1;
  model->path = g_strdup (path);
  if (!model_load (model, st, error))
    g_clear_pointer (&model, model_free);
  /* Weights were copied into the graph: the file is not kept. */
  ssfpn_safetensors_free (st);
  return model;
}

SsfpnModel *
ssfpn_model_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  return model_from_container (ssfpn_safetensors_open (path, error), path,
                               error);
}

SsfpnModel *
ssfpn_model_open_bytes (GBytes *bytes, const char *name, GError **error)
{
  g_return_val_if_fail (bytes != NULL, NULL);
  if (name == NULL)
    name = "(memory)";
  return model_from_container (ssfpn_safetensors_parse (bytes, name, error),
                               name, error);
}

SsfpnModel *
ssfpn_model_ref (SsfpnModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  g_atomic_int_inc (&model->ref_count);
  return model;
}

void
ssfpn_model_unref (SsfpnModel *model)
{
  if (model != NULL && g_atomic_int_dec_and_test (&model->ref_count))
    model_free (model);
}

/* ---- queries -------------------------------------------------------------- */

const char *
ssfpn_model_path (const SsfpnModel *model)
{
  return model->path;
}

int
ssfpn_model_num_classes (const SsfpnModel *model)
{
  return model->graph->nc;
}

const char *
ssfpn_model_class_name (const SsfpnModel *model, int index)
{
  if (index < 0 || index >= model->graph->nc)
    return NULL;
  return model->names[index];
}

int
ssfpn_model_num_levels (const SsfpnModel *model)
{
  return model->graph->nl;
}

int
ssfpn_model_stride (const SsfpnModel *model, int level)
{
  g_return_val_if_fail (level >= 0 && level < model->graph->nl, 0);
  return model->graph->strides[level];
}

int
ssfpn_model_max_stride (const SsfpnModel *model)
{
  return model->graph->max_stride;
}

int
ssfpn_model_anchors_per_level (const SsfpnModel *model)
{
  return model->graph->na;
}

void
ssfpn_model_input_size (const SsfpnModel *model, int *height, int *width)
{
  if (height != NULL)
    *height = model->imgsz[0];
  if (width != NULL)
    *width = model->imgsz[1];
}

int
ssfpn_model_output_rows (const SsfpnModel *model, int height, int width)
{
  const SsfpnGraph *graph = model->graph;

  if (height < 1 || width < 1 || height % graph->max_stride != 0
      || width % graph->max_stride != 0)
    return -1;
  return ssfpn_graph_output_rows (graph, height, width, NULL);
}

int
ssfpn_model_output_columns (const SsfpnModel *model)
{
  return 5 + model->graph->nc;
}

gint64
ssfpn_model_parameter_count (const SsfpnModel *model)
{
  return model->parameters;
}

/* Spatial sizes of every graph tensor for @height x @width. */
static gboolean
infer_sizes (const SsfpnModel *model, int height, int width, int **heights,
             int **widths, GError **error)
{
  const SsfpnGraph *graph = model->graph;
  int n = (int) graph->tensors->len;
  int max_stride = graph->max_stride;

  if (height < 1 || width < 1 || height % max_stride != 0
      || width % max_stride != 0)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "%s: input size %dx%d is not a positive multiple of the "
                   "model's largest stride %d", model->path, height, width,
                   max_stride);
      return FALSE;
    }
  *heights = g_new (int, n);
  *widths = g_new (int, n);
  if (!ssfpn_graph_infer_shapes (graph, height, width, *heights, *widths,
                                 error))
    {
      g_prefix_error (error, "%s: input size %dx%d: ", model->path, height,
                      width);
      g_clear_pointer (heights, g_free);
      g_clear_pointer (widths, g_free);
      return FALSE;
    }
  return TRUE;
}

static double
layer_macs (const SsfpnLayer *layer, const int *heights, const int *widths)
{
  double macs = 0.0;

  for (guint i = 0; i < layer->costs->len; i++)
    {
      const SsfpnLayerCost *cost = &g_array_index (layer->costs,
                                                   SsfpnLayerCost, i);
      macs += cost->macs_per_pixel * heights[cost->tensor]
              * widths[cost->tensor];
    }
  return macs;
}

double
ssfpn_model_gflops (const SsfpnModel *model, int height, int width)
{
  int *heights, *widths;
  double macs = 0.0;

  if (!infer_sizes (model, height, width, &heights, &widths, NULL))
    return -1.0;
  for (guint i = 0; i < model->layers->len; i++)
    macs += layer_macs (&g_array_index (model->layers, SsfpnLayer, i), heights,
                        widths);
  g_free (heights);
  g_free (widths);
  return 2.0 * macs / 1e9;
}

SsfpnLayerInfo *
ssfpn_model_layers (const SsfpnModel *model, int height, int width,
                    int *n_layers, GError **error)
{
  int *heights, *widths;
  int n = (int) model->layers->len;
  SsfpnLayerInfo *infos;

  if (!infer_sizes (model, height, width, &heights, &widths, error))
    return NULL;
  infos = g_new0 (SsfpnLayerInfo, n);
  for (int i = 0; i < n; i++)
    {
      const SsfpnLayer *layer = &g_array_index (model->layers, SsfpnLayer, i);
      SsfpnLayerInfo *info = &infos[i];

      info->index = i;
      info->from = g_strdup (layer->from);
      info->repeats = layer->repeats;
      info->module = g_strdup (layer->module);
      info->args = g_strdup (layer->args);
      info->depth = layer->depth;
      info->parameters = layer->parameters;
      if (layer->output_tensor >= 0)
        {
          int t = layer->output_tensor;
          /* A scale sequence is stored depth-major in one tensor. */
          info->channels = ssfpn_graph_tensor (model->graph, t)->channels
                           / layer->depth;
          info->height = heights[t];
          info->width = widths[t];
        }
      else
        {
          /* Detect: the decoded output, (1, A, 5 + nc) per image. */
          info->channels = 1;
          info->height = ssfpn_model_output_rows (model, height, width);
          info->width = ssfpn_model_output_columns (model);
          if (info->height < 0)
            {
              g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                           "%s: input size %dx%d: the output would have "
                           "more than %d rows", model->path, height, width,
                           G_MAXINT);
              ssfpn_layer_info_free (infos, n);
              g_free (heights);
              g_free (widths);
              return NULL;
            }
        }
    }
  g_free (heights);
  g_free (widths);
  *n_layers = n;
  return infos;
}

void
ssfpn_layer_info_free (SsfpnLayerInfo *layers, int n_layers)
{
  if (layers == NULL)
    return;
  for (int i = 0; i < n_layers; i++)
    {
      g_free (layers[i].from);
      g_free (layers[i].module);
      g_free (layers[i].args);
    }
  g_free (layers);
}
