/* Parses ssfpn.config and resolves it the way YOLOv5 v6.0's parse_model
 * does (shared/spec/model-format.md): string arguments evaluated, repeats
 * scaled by depth_multiple with Python's round(), output channels by
 * width_multiple and make_divisible, `from` made absolute, channel counts
 * propagated. Everything a module cannot take is rejected here, naming the
 * layer, so the graph builder only meets configurations that make sense. */
#include "config.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "json_text.h"
#include "safetensors.h"
#include "ssfpn/ssfpn.h"

/* Larger values cannot be a real network and would overflow sizes later. */
#define MAX_CHANNELS (1 << 20)
#define MAX_REPEATS 1024
/* yolov5x repeats its modules 45 times in all. */
#define MAX_TOTAL_REPEATS 16384
#define MAX_KERNEL 64
#define MAX_FACTOR 64
#define MAX_CONTRACT_GAIN 16

typedef struct {
  const char *source;
  int nc;
  int na;
  int no;            /* Detect output channels: na * (nc + 5) */
  JsonNode *anchors; /* the configuration's top-level anchors */
  double gd, gw;
  int *ch;           /* output channels of the layers so far */
  int *depth;        /* their scale-axis length, 0 for 4-D */
  SsfpnConfig *config;
} Parser;

int
ssfpn_config_make_divisible (double x, int divisor)
{
  return (int) ceil (x / divisor) * divisor;
}

double
ssfpn_config_python_round (double x)
{
  double lower = floor (x);
  double fraction = x - lower; /* exact for doubles */

  if (fraction > 0.5)
    return lower + 1.0;
  if (fraction < 0.5)
    return lower;
  /* Exactly half way: Python rounds to the even neighbour. */
  return fmod (lower, 2.0) == 0.0 ? lower : lower + 1.0;
}

/* ---- errors ------------------------------------------------------------ */

static void G_GNUC_PRINTF (3, 4)
config_error (GError **error, const Parser *p, const char *format, ...)
{
  va_list ap;
  char *what;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG, "%s: ssfpn.config: %s",
               p->source, what);
  g_free (what);
}

static void G_GNUC_PRINTF (4, 5)
layer_error (GError **error, const Parser *p, const SsfpnLayerConfig *layer,
             const char *format, ...)
{
  va_list ap;
  char *what;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG, "%s: layer %d (%s): %s",
               p->source, layer->index,
               layer->module != NULL ? layer->module : "?", what);
  g_free (what);
}

/* ---- JSON values ----------------------------------------------------------- */

static gboolean
node_is_number (JsonNode *node, double *value)
{
  GType type;

  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_VALUE)
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    *value = (double) json_node_get_int (node);
  else if (type == G_TYPE_DOUBLE)
    *value = json_node_get_double (node);
  else
    return FALSE;
  return isfinite (*value);
}

/* An integer, or a float with an integral value (YAML may write 2.0). */
static gboolean
node_is_int (JsonNode *node, gint64 *value)
{
  double d;

  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_VALUE)
    return FALSE;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    {
      *value = json_node_get_int (node);
      return TRUE;
    }
  if (!node_is_number (node, &d) || d != floor (d) || fabs (d) > 1e15)
    return FALSE;
  *value = (gint64) d;
  return TRUE;
}

static gboolean
node_is_bool (JsonNode *node, gboolean *value)
{
  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_VALUE
      || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return FALSE;
  *value = json_node_get_boolean (node);
  return TRUE;
}

static const char *
node_string (JsonNode *node)
{
  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_VALUE
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static void
append_json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (; *s != '\0'; s++)
    {
      unsigned char c = (unsigned char) *s;
      if (c == '"' || c == '\\')
        g_string_append_printf (out, "\\%c", c);
      else if (c < 0x20)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, (char) c);
    }
  g_string_append_c (out, '"');
}

/* JSON written the way Python prints lists, "[3, 16, 6, 2, 2]", so the
 * layer table reads like YOLOv5's. */
static void
append_json (GString *out, JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      break;
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        g_string_append_c (out, '[');
        for (guint i = 0; i < json_array_get_length (array); i++)
          {
            if (i > 0)
              g_string_append (out, ", ");
            append_json (out, json_array_get_element (array, i));
          }
        g_string_append_c (out, ']');
        break;
      }
    case JSON_NODE_OBJECT:
      {
        JsonObject *object = json_node_get_object (node);
        GList *members = json_object_get_members (object);
        g_string_append_c (out, '{');
        for (GList *m = members; m != NULL; m = m->next)
          {
            if (m != members)
              g_string_append (out, ", ");
            append_json_string (out, m->data);
            g_string_append (out, ": ");
            append_json (out, json_object_get_member (object, m->data));
          }
        g_string_append_c (out, '}');
        g_list_free (members);
        break;
      }
    case JSON_NODE_VALUE:
      {
        GType type = json_node_get_value_type (node);
        if (type == G_TYPE_INT64)
          g_string_append_printf (out, "%" G_GINT64_FORMAT,
                                  json_node_get_int (node));
        else if (type == G_TYPE_BOOLEAN)
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
        else if (type == G_TYPE_STRING)
          append_json_string (out, json_node_get_string (node));
        else
          {
            double d = json_node_get_double (node);
            char buffer[G_ASCII_DTOSTR_BUF_SIZE];
            /* Shortest form that reads back the same value. */
            g_ascii_formatd (buffer, sizeof buffer, "%.15g", d);
            if (g_ascii_strtod (buffer, NULL) != d)
              g_ascii_formatd (buffer, sizeof buffer, "%.17g", d);
            g_string_append (out, buffer);
            if (isfinite (d) && strpbrk (buffer, ".eE") == NULL)
              g_string_append (out, ".0");
          }
        break;
      }
    }
}

static char *
json_text (JsonNode *node)
{
  GString *out = g_string_new (NULL);
  append_json (out, node);
  return g_string_free (out, FALSE);
}

/* ---- arguments ------------------------------------------------------------ */

/* parse_model evaluates every string argument in its own scope: 'nc' and
 * 'anchors' are its variables, None/True/False Python's constants; any
 * other string (NameError) stays a string, e.g. 'nearest'. */
static JsonArray *
resolve_args (const Parser *p, JsonArray *args)
{
  JsonArray *resolved = json_array_new ();

  for (guint i = 0; i < json_array_get_length (args); i++)
    {
      JsonNode *arg = json_array_get_element (args, i);
      const char *s = node_string (arg);
      JsonNode *value;

      if (s != NULL && strcmp (s, "nc") == 0)
        {
          value = json_node_new (JSON_NODE_VALUE);
          json_node_set_int (value, p->nc);
        }
      else if (s != NULL && strcmp (s, "anchors") == 0)
        value = json_node_copy (p->anchors);
      else if (s != NULL && strcmp (s, "None") == 0)
        value = json_node_new (JSON_NODE_NULL);
      else if (s != NULL && (strcmp (s, "True") == 0 || strcmp (s, "False") == 0))
        {
          value = json_node_new (JSON_NODE_VALUE);
          json_node_set_boolean (value, strcmp (s, "True") == 0);
        }
      else
        value = json_node_copy (arg);
      json_array_add_element (resolved, value);
    }
  return resolved;
}

static JsonNode *
arg_at (JsonArray *args, guint i)
{
  return i < json_array_get_length (args) ? json_array_get_element (args, i)
                                          : NULL;
}

static char *
describe_node (JsonNode *node)
{
  return node != NULL ? json_text (node) : g_strdup ("nothing");
}

/* Argument @i as an integer in [@min, @max]; @fallback when absent. */
static gboolean
arg_int (const Parser *p, const SsfpnLayerConfig *layer, JsonArray *args,
         guint i, const char *what, int fallback, int min, int max, int *out,
         GError **error)
{
  JsonNode *node = arg_at (args, i);
  gint64 v;

  if (node == NULL)
    {
      *out = fallback;
      return TRUE;
    }
  if (!node_is_int (node, &v) || v < min || v > max)
    {
      char *found = describe_node (node);
      layer_error (error, p, layer,
                   "argument %u (%s) must be an integer in [%d, %d], not %s",
                   i, what, min, max, found);
      g_free (found);
      return FALSE;
    }
  *out = (int) v;
  return TRUE;
}

static gboolean
arg_bool (const Parser *p, const SsfpnLayerConfig *layer, JsonArray *args,
          guint i, const char *what, gboolean fallback, gboolean *out,
          GError **error)
{
  JsonNode *node = arg_at (args, i);

  if (node == NULL)
    {
      *out = fallback;
      return TRUE;
    }
  if (!node_is_bool (node, out))
    {
      char *found = describe_node (node);
      layer_error (error, p, layer,
                   "argument %u (%s) must be True or False, not %s", i, what,
                   found);
      g_free (found);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_arg_count (const Parser *p, const SsfpnLayerConfig *layer,
                 JsonArray *args, guint min, guint max, const char *usage,
                 GError **error)
{
  guint n = json_array_get_length (args);

  if (n < min || n > max)
    {
      layer_error (error, p, layer, "takes arguments %s, got %u of them",
                   usage, n);
      return FALSE;
    }
  return TRUE;
}

/* Output channels of a "scaled" module: parse_model's width gain, except
 * for the Detect output count. */
static gboolean
scaled_channels (const Parser *p, const SsfpnLayerConfig *layer,
                 JsonArray *args, int *c2, GError **error)
{
  int raw;

  if (!arg_int (p, layer, args, 0, "output channels", 0, 1, MAX_CHANNELS,
                &raw, error))
    return FALSE;
  if (json_array_get_length (args) == 0)
    {
      layer_error (error, p, layer, "needs its output channels as argument 0");
      return FALSE;
    }
  *c2 = raw == p->no ? raw : ssfpn_config_make_divisible (raw * p->gw, 8);
  if (*c2 < 1 || *c2 > MAX_CHANNELS)
    {
      layer_error (error, p, layer, "%d output channels after width_multiple "
                   "is out of range", *c2);
      return FALSE;
    }
  return TRUE;
}

/* The printed arguments of a scaled module: [c1, c2, *args[1:]], with the
 * repeats inserted at 2 for C3 and BottleneckCSP. */
static char *
scaled_args_text (JsonArray *args, int c1, int c2, int inserted_repeats)
{
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);
  JsonArray *printed = json_array_new ();
  char *text;

  json_array_add_int_element (printed, c1);
  json_array_add_int_element (printed, c2);
  if (inserted_repeats > 0)
    json_array_add_int_element (printed, inserted_repeats);
  for (guint i = 1; i < json_array_get_length (args); i++)
    json_array_add_element (printed,
                            json_node_copy (json_array_get_element (args, i)));
  json_node_take_array (node, printed);
  text = json_text (node);
  json_node_unref (node);
  return text;
}

/* ---- from --------------------------------------------------------------- */

static gboolean
resolve_from_entry (const Parser *p, const SsfpnLayerConfig *layer,
                    JsonNode *node, int *out, GError **error)
{
  gint64 v;

  if (!node_is_int (node, &v))
    {
      char *found = describe_node (node);
      layer_error (error, p, layer, "from entry %s is not a layer index", found);
      g_free (found);
      return FALSE;
    }
  /* As YOLOv5 indexes its list of earlier outputs: negative counts back
   * from this layer; -1 at layer 0 is the network input. */
  if (v == -1 && layer->index == 0)
    {
      *out = SSFPN_FROM_INPUT;
      return TRUE;
    }
  if (v < 0 ? layer->index + v < 0 : v >= layer->index)
    {
      layer_error (error, p, layer, "from %" G_GINT64_FORMAT " does not name an "
                   "earlier layer", v);
      return FALSE;
    }
  *out = (int) (v < 0 ? layer->index + v : v);
  return TRUE;
}

static gboolean
resolve_from (const Parser *p, SsfpnLayerConfig *layer, JsonNode *node,
              gboolean want_list, GError **error)
{
  if (JSON_NODE_TYPE (node) == JSON_NODE_ARRAY)
    {
      JsonArray *array = json_node_get_array (node);
      guint n = json_array_get_length (array);

      if (!want_list)
        {
          layer_error (error, p, layer, "from must be one layer, not a list");
          return FALSE;
        }
      if (n == 0 || n > 64)
        {
          layer_error (error, p, layer, "from must list 1 to 64 layers, not %u", n);
          return FALSE;
        }
      layer->n_from = (int) n;
      layer->from = g_new (int, n);
      for (guint i = 0; i < n; i++)
        if (!resolve_from_entry (p, layer, json_array_get_element (array, i),
                                 &layer->from[i], error))
          return FALSE;
      return TRUE;
    }
  if (want_list)
    {
      layer_error (error, p, layer, "from must be a list of layers");
      return FALSE;
    }
  layer->n_from = 1;
  layer->from = g_new (int, 1);
  return resolve_from_entry (p, layer, node, &layer->from[0], error);
}

static int
from_channels (const Parser *p, int from)
{
  return from == SSFPN_FROM_INPUT ? 3 : p->ch[from];
}

static int
from_depth (const Parser *p, int from)
{
  return from == SSFPN_FROM_INPUT ? 0 : p->depth[from];
}

/* ---- modules -------------------------------------------------------------- */

static const struct {
  const char *name;
  SsfpnModuleKind kind;
} module_names[] = {
  { "Conv", SSFPN_MODULE_CONV },
  { "Focus", SSFPN_MODULE_FOCUS },
  { "Bottleneck", SSFPN_MODULE_BOTTLENECK },
  { "C3", SSFPN_MODULE_C3 },
  { "BottleneckCSP", SSFPN_MODULE_BOTTLENECK_CSP },
  { "SPP", SSFPN_MODULE_SPP },
  { "SPPF", SSFPN_MODULE_SPPF },
  { "nn.Upsample", SSFPN_MODULE_UPSAMPLE },
  { "Concat", SSFPN_MODULE_CONCAT },
  { "space_to_depth", SSFPN_MODULE_SPACE_TO_DEPTH },
  { "Contract", SSFPN_MODULE_CONTRACT },
  { "Detect", SSFPN_MODULE_DETECT },
  { "ssFPN", SSFPN_MODULE_SSFPN },
  { "Unsqueeze", SSFPN_MODULE_UNSQUEEZE },
  { "Conv3D", SSFPN_MODULE_CONV3D },
};

static gboolean
module_takes_list (SsfpnModuleKind kind)
{
  return kind == SSFPN_MODULE_CONCAT || kind == SSFPN_MODULE_DETECT
         || kind == SSFPN_MODULE_SSFPN;
}

/* Modules nn.Sequential can repeat: the output must have the input's
 * channels for the next copy to accept it. */
static gboolean
module_repeatable (SsfpnModuleKind kind)
{
  switch (kind)
    {
    case SSFPN_MODULE_CONV:
    case SSFPN_MODULE_FOCUS:
    case SSFPN_MODULE_BOTTLENECK:
    case SSFPN_MODULE_SPP:
    case SSFPN_MODULE_SPPF:
    case SSFPN_MODULE_UPSAMPLE:
      return TRUE;
    default:
      return FALSE;
    }
}

/* Conv and Focus: [c2, k=1, s=1, p=None, g=1, act=True]. */
static gboolean
resolve_conv (const Parser *p, SsfpnLayerConfig *layer, JsonArray *args,
              GError **error)
{
  JsonNode *pad;
  int conv_in;

  if (!check_arg_count (p, layer, args, 1, 6,
                        "[c2, k=1, s=1, p=None, g=1, act=True]", error)
      || !scaled_channels (p, layer, args, &layer->c2, error)
      || !arg_int (p, layer, args, 1, "kernel", 1, 1, MAX_KERNEL,
                   &layer->kernel, error)
      || !arg_int (p, layer, args, 2, "stride", 1, 1, MAX_KERNEL,
                   &layer->stride, error))
    return FALSE;
  pad = arg_at (args, 3);
  if (pad == NULL || JSON_NODE_TYPE (pad) == JSON_NODE_NULL)
    layer->pad = layer->kernel / 2; /* autopad */
  else if (!arg_int (p, layer, args, 3, "padding", 0, 0, MAX_KERNEL,
                     &layer->pad, error))
    return FALSE;
  if (!arg_int (p, layer, args, 4, "groups", 1, 1, MAX_CHANNELS,
                &layer->groups, error)
      || !arg_bool (p, layer, args, 5, "act", TRUE, &layer->act, error))
    return FALSE;
  conv_in = layer->kind == SSFPN_MODULE_FOCUS ? layer->c1 * 4 : layer->c1;
  if (conv_in % layer->groups != 0 || layer->c2 % layer->groups != 0)
    {
      layer_error (error, p, layer, "groups %d do not divide %d input and %d "
                   "output channels", layer->groups, conv_in, layer->c2);
      return FALSE;
    }
  layer->args_text = scaled_args_text (args, layer->c1, layer->c2, 0);
  return TRUE;
}

/* Bottleneck, C3, BottleneckCSP: [c2, shortcut=True, g=1, e=0.5]. */
static gboolean
resolve_bottleneck (const Parser *p, SsfpnLayerConfig *layer, JsonArray *args,
                    GError **error)
{
  JsonNode *e_node;
  double e = 0.5;
  gboolean csp = layer->kind != SSFPN_MODULE_BOTTLENECK;

  if (!check_arg_count (p, layer, args, 1, 4,
                        "[c2, shortcut=True, g=1, e=0.5]", error)
      || !scaled_channels (p, layer, args, &layer->c2, error)
      || !arg_bool (p, layer, args, 1, "shortcut", TRUE, &layer->shortcut,
                    error)
      || !arg_int (p, layer, args, 2, "groups", 1, 1, MAX_CHANNELS,
                   &layer->groups, error))
    return FALSE;
  e_node = arg_at (args, 3);
  if (e_node != NULL && (!node_is_number (e_node, &e) || e <= 0.0 || e > 64.0))
    {
      char *found = describe_node (e_node);
      layer_error (error, p, layer, "argument 3 (expansion) must be a positive "
                   "number, not %s", found);
      g_free (found);
      return FALSE;
    }
  layer->hidden = (int) (layer->c2 * e); /* Python's int() truncates */
  if (layer->hidden < 1 || layer->hidden > MAX_CHANNELS)
    {
      layer_error (error, p, layer, "expansion %g leaves %d hidden channels",
                   e, layer->hidden);
      return FALSE;
    }
  /* The grouped convolution is the 3x3 of each Bottleneck: c_ -> c2 for a
   * plain Bottleneck, c_ -> c_ inside C3 and BottleneckCSP. */
  if (layer->hidden % layer->groups != 0
      || (!csp && layer->c2 % layer->groups != 0))
    {
      layer_error (error, p, layer, "groups %d do not divide the %d hidden "
                   "channels", layer->groups, layer->hidden);
      return FALSE;
    }
  layer->args_text = scaled_args_text (args, layer->c1, layer->c2,
                                       csp ? layer->repeats : 0);
  return TRUE;
}

static gboolean
check_pool_kernel (const Parser *p, const SsfpnLayerConfig *layer,
                   JsonNode *node, int *kernel, GError **error)
{
  gint64 v;

  /* Stride 1 and padding k // 2 keep the size only for odd kernels. */
  if (!node_is_int (node, &v) || v < 1 || v > MAX_KERNEL || v % 2 == 0)
    {
      char *found = describe_node (node);
      layer_error (error, p, layer, "max-pool kernel must be an odd integer in "
                   "[1, %d], not %s", MAX_KERNEL, found);
      g_free (found);
      return FALSE;
    }
  *kernel = (int) v;
  return TRUE;
}

/* SPP: [c2, k=(5, 9, 13)]; SPPF: [c2, k=5]. */
static gboolean
resolve_spp (const Parser *p, SsfpnLayerConfig *layer, JsonArray *args,
             GError **error)
{
  JsonNode *k = arg_at (args, 1);

  if (!check_arg_count (p, layer, args, 1, 2,
                        layer->kind == SSFPN_MODULE_SPP ? "[c2, k=[5, 9, 13]]"
                                                        : "[c2, k=5]", error)
      || !scaled_channels (p, layer, args, &layer->c2, error))
    return FALSE;
  layer->hidden = layer->c1 / 2;
  if (layer->hidden < 1)
    {
      layer_error (error, p, layer, "needs at least 2 input channels, has %d",
                   layer->c1);
      return FALSE;
    }
  if (layer->kind == SSFPN_MODULE_SPPF)
    {
      layer->n_pools = 1;
      layer->pools = g_new (int, 1);
      layer->pools[0] = 5;
      if (k != NULL && !check_pool_kernel (p, layer, k, &layer->pools[0], error))
        return FALSE;
    }
  else if (k == NULL)
    {
      static const int default_pools[] = { 5, 9, 13 };
      layer->n_pools = 3;
      layer->pools = g_memdup2 (default_pools, sizeof default_pools);
    }
  else
    {
      JsonArray *list;

      if (JSON_NODE_TYPE (k) != JSON_NODE_ARRAY
          || json_array_get_length (json_node_get_array (k)) == 0
          || json_array_get_length (json_node_get_array (k)) > 16)
        {
          layer_error (error, p, layer, "argument 1 (k) must be a list of 1 to "
                       "16 max-pool kernels");
          return FALSE;
        }
      list = json_node_get_array (k);
      layer->n_pools = (int) json_array_get_length (list);
      layer->pools = g_new (int, layer->n_pools);
      for (int i = 0; i < layer->n_pools; i++)
        if (!check_pool_kernel (p, layer, json_array_get_element (list, i),
                                &layer->pools[i], error))
          return FALSE;
    }
  layer->args_text = scaled_args_text (args, layer->c1, layer->c2, 0);
  return TRUE;
}

/* nn.Upsample: [size=None, scale_factor, mode='nearest']. */
static gboolean
resolve_upsample (const Parser *p, SsfpnLayerConfig *layer, JsonArray *args,
                  GError **error)
{
  JsonNode *size = arg_at (args, 0);
  JsonNode *mode = arg_at (args, 2);

  if (!check_arg_count (p, layer, args, 2, 3,
                        "[None, scale_factor, 'nearest']", error))
    return FALSE;
  if (JSON_NODE_TYPE (size) != JSON_NODE_NULL)
    {
      layer_error (error, p, layer, "only scale_factor upsampling is "
                   "supported: argument 0 (size) must be None");
      return FALSE;
    }
  if (!arg_int (p, layer, args, 1, "scale_factor", 2, 1, MAX_FACTOR,
                &layer->factor, error))
    return FALSE;
  if (mode != NULL
      && (node_string (mode) == NULL || strcmp (node_string (mode), "nearest") != 0))
    {
      char *found = describe_node (mode);
      layer_error (error, p, layer, "only mode 'nearest' is supported, not %s",
                   found);
      g_free (found);
      return FALSE;
    }
  layer->c2 = layer->c1;
  return TRUE;
}

static gboolean
resolve_concat (Parser *p, SsfpnLayerConfig *layer, JsonArray *args,
                GError **error)
{
  if (!check_arg_count (p, layer, args, 0, 1, "[dimension=1]", error)
      || !arg_int (p, layer, args, 0, "dimension", 1, G_MININT, G_MAXINT,
                   &layer->dim, error))
    return FALSE;
  if (layer->dim != 1 && layer->dim != 2)
    {
      layer_error (error, p, layer, "can join on dimension 1 (channels) or 2 "
                   "(the scale axis), not %d", layer->dim);
      return FALSE;
    }
  layer->c2 = 0;
  layer->depth = 0;
  for (int i = 0; i < layer->n_from; i++)
    {
      int c = from_channels (p, layer->from[i]);
      int d = from_depth (p, layer->from[i]);

      if (layer->dim == 1)
        {
          if (d > 0)
            {
              layer_error (error, p, layer, "input from layer %d is 5-D (a scale "
                           "sequence); Concat [1] joins 4-D feature maps",
                           layer->from[i]);
              return FALSE;
            }
          layer->c2 += c;
          if (layer->c2 > MAX_CHANNELS)
            {
              layer_error (error, p, layer, "too many channels");
              return FALSE;
            }
          continue;
        }
      if (d == 0)
        {
          if (layer->from[i] == SSFPN_FROM_INPUT)
            layer_error (error, p, layer, "the network input is 4-D; Concat [2] "
                         "stacks the 5-D outputs of Unsqueeze or Concat [2]");
          else
            layer_error (error, p, layer, "input from layer %d is 4-D; Concat "
                         "[2] stacks the 5-D outputs of Unsqueeze or Concat [2]",
                         layer->from[i]);
          return FALSE;
        }
      if (i > 0 && c != layer->c2)
        {
          layer_error (error, p, layer, "Concat [2] needs equal channel counts, "
                       "layer %d has %d and layer %d has %d", layer->from[0],
                       layer->c2, layer->from[i], c);
          return FALSE;
        }
      layer->c2 = c;
      layer->depth += d;
      if ((gint64) layer->depth * c > MAX_CHANNELS)
        {
          layer_error (error, p, layer, "scale sequence too long");
          return FALSE;
        }
    }
  layer->c1 = layer->c2;
  return TRUE;
}

static gboolean
resolve_reorder (const Parser *p, SsfpnLayerConfig *layer, JsonArray *args,
                 GError **error)
{
  int value;

  if (layer->kind == SSFPN_MODULE_SPACE_TO_DEPTH)
    {
      if (!check_arg_count (p, layer, args, 0, 1, "[dimension=1]", error)
          || !arg_int (p, layer, args, 0, "dimension", 1, 1, 1, &value, error))
        return FALSE;
      layer->factor = 2;
    }
  else
    {
      if (!check_arg_count (p, layer, args, 0, 1, "[gain=2]", error)
          || !arg_int (p, layer, args, 0, "gain", 2, 1, MAX_CONTRACT_GAIN,
                       &layer->factor, error))
        return FALSE;
    }
  layer->c2 = layer->c1 * layer->factor * layer->factor;
  if (layer->c2 > MAX_CHANNELS)
    {
      layer_error (error, p, layer, "too many channels");
      return FALSE;
    }
  return TRUE;
}

/* Anchors as the configuration gives them: a list of per-level lists of
 * (w, h) pairs, or a count per level. Returns the anchors per level. */
static int
anchors_per_level (JsonNode *anchors, int *levels)
{
  gint64 count;

  *levels = 0;
  if (node_is_int (anchors, &count))
    return count >= 1 && count <= 64 ? (int) count : -1;
  if (JSON_NODE_TYPE (anchors) != JSON_NODE_ARRAY)
    return -1;

  JsonArray *list = json_node_get_array (anchors);
  guint n = json_array_get_length (list);
  guint pair_values = 0;

  if (n == 0 || n > 64)
    return -1;
  for (guint l = 0; l < n; l++)
    {
      JsonNode *level = json_array_get_element (list, l);
      JsonArray *values;
      double v;

      if (JSON_NODE_TYPE (level) != JSON_NODE_ARRAY)
        return -1;
      values = json_node_get_array (level);
      if (l == 0)
        pair_values = json_array_get_length (values);
      if (json_array_get_length (values) != pair_values || pair_values < 2
          || pair_values % 2 != 0 || pair_values > 128)
        return -1;
      for (guint i = 0; i < pair_values; i++)
        if (!node_is_number (json_array_get_element (values, i), &v))
          return -1;
    }
  *levels = (int) n;
  return (int) pair_values / 2;
}

/* Detect: [nc, anchors]; parse_model appends the input channels. */
static gboolean
resolve_detect (const Parser *p, SsfpnLayerConfig *layer, JsonArray *args,
                GError **error)
{
  JsonNode *anchors;
  JsonNode *printed_node;
  JsonArray *printed;
  JsonArray *channels;
  int nc, na, levels;

  if (!check_arg_count (p, layer, args, 2, 2, "[nc, anchors]", error)
      || !arg_int (p, layer, args, 0, "nc", 0, 1, G_MAXINT, &nc, error))
    return FALSE;
  if (nc != p->nc)
    {
      layer_error (error, p, layer, "has %d classes but the configuration's "
                   "nc is %d", nc, p->nc);
      return FALSE;
    }
  anchors = arg_at (args, 1);
  na = anchors_per_level (anchors, &levels);
  if (na < 0)
    {
      layer_error (error, p, layer, "argument 1 (anchors) must be a list of "
                   "per-level [w, h, ...] lists of equal length, or a count");
      return FALSE;
    }
  if (levels > 0 && levels != layer->n_from)
    {
      layer_error (error, p, layer, "has %d inputs in from but anchors for %d "
                   "levels", layer->n_from, levels);
      return FALSE;
    }
  if (na != p->na)
    {
      layer_error (error, p, layer, "has %d anchors per level but the "
                   "configuration's anchors have %d", na, p->na);
      return FALSE;
    }
  for (int i = 0; i < layer->n_from; i++)
    if (from_depth (p, layer->from[i]) > 0)
      {
        layer_error (error, p, layer, "input from layer %d is 5-D (a scale "
                     "sequence); Detect takes 4-D feature maps", layer->from[i]);
        return FALSE;
      }

  /* Printed as parse_model leaves them: a count becomes range lists. */
  printed = json_array_new ();
  json_array_add_int_element (printed, nc);
  if (levels > 0)
    json_array_add_element (printed, json_node_copy (anchors));
  else
    {
      JsonArray *per_level = json_array_new ();
      for (int l = 0; l < layer->n_from; l++)
        {
          JsonArray *range = json_array_new ();
          for (int v = 0; v < 2 * na; v++)
            json_array_add_int_element (range, v);
          json_array_add_array_element (per_level, range);
        }
      json_array_add_array_element (printed, per_level);
    }
  channels = json_array_new ();
  for (int i = 0; i < layer->n_from; i++)
    json_array_add_int_element (channels, from_channels (p, layer->from[i]));
  json_array_add_array_element (printed, channels);
  printed_node = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (printed_node, printed);
  layer->args_text = json_text (printed_node);
  json_node_unref (printed_node);

  layer->c1 = from_channels (p, layer->from[0]);
  layer->c2 = p->no;
  return TRUE;
}

/* ssFPN (seed form): from [p3, p4, p5], args [c2]. */
static gboolean
resolve_ssfpn (const Parser *p, SsfpnLayerConfig *layer, JsonArray *args,
               GError **error)
{
  if (layer->n_from != 3)
    {
      layer_error (error, p, layer, "from must be the three layers [p3, p4, "
                   "p5], not %d", layer->n_from);
      return FALSE;
    }
  if (!check_arg_count (p, layer, args, 1, 1, "[c2]", error)
      || !scaled_channels (p, layer, args, &layer->c2, error))
    return FALSE;
  layer->c1 = 0;
  for (int i = 0; i < 3; i++)
    {
      if (from_depth (p, layer->from[i]) > 0)
        {
          layer_error (error, p, layer, "input from layer %d is 5-D (a scale "
                       "sequence); ssFPN takes 4-D feature maps", layer->from[i]);
          return FALSE;
        }
      layer->c1 += from_channels (p, layer->from[i]);
    }
  if (layer->c1 > MAX_CHANNELS)
    {
      layer_error (error, p, layer, "too many channels");
      return FALSE;
    }
  layer->args_text = scaled_args_text (args, layer->c1, layer->c2, 0);
  return TRUE;
}

static gboolean
check_input_depth (const Parser *p, const SsfpnLayerConfig *layer,
                   gboolean want_5d, GError **error)
{
  int from = layer->from[0];
  int d = from_depth (p, from);

  if (want_5d && d == 0)
    {
      layer_error (error, p, layer, "needs a 5-D scale sequence (from Unsqueeze "
                   "or Concat [2]) as input, but %s is 4-D",
                   from == SSFPN_FROM_INPUT ? "the network input" : "its input");
      return FALSE;
    }
  if (!want_5d && d > 0)
    {
      layer_error (error, p, layer, "input from layer %d is 5-D (a scale "
                   "sequence); only Concat [2] and Conv3D take it", from);
      return FALSE;
    }
  return TRUE;
}

static gboolean
resolve_module (Parser *p, SsfpnLayerConfig *layer, JsonArray *args,
                GError **error)
{
  gboolean ok;

  if (!module_takes_list (layer->kind))
    {
      layer->c1 = from_channels (p, layer->from[0]);
      if (!check_input_depth (p, layer, layer->kind == SSFPN_MODULE_CONV3D,
                              error))
        return FALSE;
    }

  switch (layer->kind)
    {
    case SSFPN_MODULE_CONV:
    case SSFPN_MODULE_FOCUS:
      ok = resolve_conv (p, layer, args, error);
      break;
    case SSFPN_MODULE_BOTTLENECK:
    case SSFPN_MODULE_C3:
    case SSFPN_MODULE_BOTTLENECK_CSP:
      ok = resolve_bottleneck (p, layer, args, error);
      break;
    case SSFPN_MODULE_SPP:
    case SSFPN_MODULE_SPPF:
      ok = resolve_spp (p, layer, args, error);
      break;
    case SSFPN_MODULE_UPSAMPLE:
      ok = resolve_upsample (p, layer, args, error);
      break;
    case SSFPN_MODULE_CONCAT:
      ok = resolve_concat (p, layer, args, error);
      break;
    case SSFPN_MODULE_SPACE_TO_DEPTH:
    case SSFPN_MODULE_CONTRACT:
      ok = resolve_reorder (p, layer, args, error);
      break;
    case SSFPN_MODULE_DETECT:
      ok = resolve_detect (p, layer, args, error);
      break;
    case SSFPN_MODULE_SSFPN:
      ok = resolve_ssfpn (p, layer, args, error);
      break;
    case SSFPN_MODULE_UNSQUEEZE:
      ok = check_arg_count (p, layer, args, 0, 1, "[dim=2]", error)
           && arg_int (p, layer, args, 0, "dim", 2, 2, 2, &layer->dim, error);
      layer->c2 = layer->c1;
      layer->depth = 1;
      break;
    case SSFPN_MODULE_CONV3D:
      ok = check_arg_count (p, layer, args, 1, 1, "[c2]", error)
           && scaled_channels (p, layer, args, &layer->c2, error);
      if (ok)
        layer->args_text = scaled_args_text (args, layer->c1, layer->c2, 0);
      break;
    default:
      g_assert_not_reached ();
    }
  if (!ok)
    return FALSE;

  if (layer->repeats > 1 && layer->kind != SSFPN_MODULE_C3
      && layer->kind != SSFPN_MODULE_BOTTLENECK_CSP)
    {
      if (!module_repeatable (layer->kind))
        {
          layer_error (error, p, layer, "cannot be repeated (number %d)",
                       layer->repeats);
          return FALSE;
        }
      /* Each copy of the nn.Sequential takes the previous one's output. */
      if (layer->c1 != layer->c2)
        {
          layer_error (error, p, layer, "repeated %d times but maps %d channels "
                       "to %d; copies after the first would not fit",
                       layer->repeats, layer->c1, layer->c2);
          return FALSE;
        }
    }
  if (layer->args_text == NULL)
    {
      JsonNode *node = json_node_new (JSON_NODE_ARRAY);
      json_node_set_array (node, args);
      layer->args_text = json_text (node);
      json_node_unref (node);
    }
  return TRUE;
}

static gboolean
parse_layer (Parser *p, SsfpnLayerConfig *layer, JsonNode *node, GError **error)
{
  JsonArray *entry;
  JsonNode *from, *number, *module, *args_node;
  const char *module_name;
  JsonArray *args;
  gint64 n;
  gboolean ok;

  if (JSON_NODE_TYPE (node) != JSON_NODE_ARRAY
      || json_array_get_length (json_node_get_array (node)) != 4)
    {
      layer_error (error, p, layer, "must be [from, number, module, args]");
      return FALSE;
    }
  entry = json_node_get_array (node);
  from = json_array_get_element (entry, 0);
  number = json_array_get_element (entry, 1);
  module = json_array_get_element (entry, 2);
  args_node = json_array_get_element (entry, 3);

  module_name = node_string (module);
  if (module_name == NULL)
    {
      layer_error (error, p, layer, "module must be a name");
      return FALSE;
    }
  layer->module = g_strdup (module_name);
  layer->kind = (SsfpnModuleKind) -1;
  for (guint i = 0; i < G_N_ELEMENTS (module_names); i++)
    if (strcmp (module_names[i].name, module_name) == 0)
      layer->kind = module_names[i].kind;
  if ((int) layer->kind == -1)
    {
      layer_error (error, p, layer, "unknown module '%s'", module_name);
      return FALSE;
    }

  layer->from_text = json_text (from);
  if (!resolve_from (p, layer, from, module_takes_list (layer->kind), error))
    return FALSE;

  if (!node_is_int (number, &n) || n < 1 || n > MAX_REPEATS)
    {
      char *found = describe_node (number);
      layer_error (error, p, layer, "number must be an integer in [1, %d], not "
                   "%s", MAX_REPEATS, found);
      g_free (found);
      return FALSE;
    }
  /* The count after depth_multiple is what gets built. */
  double scaled = n > 1 ? MAX (ssfpn_config_python_round (n * p->gd), 1) : n;
  if (scaled > MAX_REPEATS)
    {
      layer_error (error, p, layer, "number %d x depth_multiple %g is %.0f "
                   "repeats; at most %d", (int) n, p->gd, scaled, MAX_REPEATS);
      return FALSE;
    }
  layer->repeats = (int) scaled;

  if (JSON_NODE_TYPE (args_node) != JSON_NODE_ARRAY)
    {
      layer_error (error, p, layer, "args must be a list");
      return FALSE;
    }
  args = resolve_args (p, json_node_get_array (args_node));
  ok = resolve_module (p, layer, args, error);
  json_array_unref (args);
  return ok;
}

/* ---- the whole configuration ----------------------------------------------- */

static gboolean
get_positive_number (Parser *p, JsonObject *root, const char *key,
                     double *value, GError **error)
{
  JsonNode *node = json_object_get_member (root, key);

  if (node == NULL)
    {
      config_error (error, p, "'%s' is missing", key);
      return FALSE;
    }
  if (!node_is_number (node, value) || *value <= 0.0 || *value > 1000.0)
    {
      config_error (error, p, "'%s' must be a positive number", key);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_activation (Parser *p, JsonObject *root, GError **error)
{
  static const struct {
    const char *name, *module_form;
    SsfpnActivation act;
    float alpha;
  } activations[] = {
    { "SiLU", "nn.SiLU()", SSFPN_ACT_SILU, 0.0f },
    { "LeakyReLU", "nn.LeakyReLU(0.1)", SSFPN_ACT_LEAKY_RELU, 0.1f },
    { "ReLU", "nn.ReLU()", SSFPN_ACT_RELU, 0.0f },
    { "Hardswish", "nn.Hardswish()", SSFPN_ACT_HARDSWISH, 0.0f },
  };
  JsonNode *node = json_object_get_member (root, "activation");
  const char *name;

  p->config->act = SSFPN_ACT_SILU;
  p->config->act_alpha = 0.0f;
  if (node == NULL)
    return TRUE;
  name = node_string (node);
  /* Later YOLOv5 versions write the module itself, "nn.SiLU()": same meaning. */
  for (guint i = 0; name != NULL && i < G_N_ELEMENTS (activations); i++)
    if (strcmp (name, activations[i].name) == 0
        || strcmp (name, activations[i].module_form) == 0)
      {
        p->config->act = activations[i].act;
        p->config->act_alpha = activations[i].alpha;
        return TRUE;
      }
  {
    char *found = json_text (node);
    config_error (error, p, "'activation' is %s; it must be one of \"SiLU\", "
                  "\"LeakyReLU\", \"ReLU\", \"Hardswish\"", found);
    g_free (found);
  }
  return FALSE;
}

static gboolean
parse_globals (Parser *p, JsonObject *root, GError **error)
{
  JsonNode *node;
  gint64 v;
  int levels;

  node = json_object_get_member (root, "nc");
  if (node == NULL || !node_is_int (node, &v) || v < 1 || v > 100000)
    {
      config_error (error, p, "'nc' must be a class count in [1, 100000]");
      return FALSE;
    }
  p->nc = (int) v;

  node = json_object_get_member (root, "ch");
  if (node != NULL && (!node_is_int (node, &v) || v != 3))
    {
      config_error (error, p, "'ch' must be 3: the engine takes RGB input");
      return FALSE;
    }

  if (!get_positive_number (p, root, "depth_multiple", &p->gd, error)
      || !get_positive_number (p, root, "width_multiple", &p->gw, error))
    return FALSE;

  p->anchors = json_object_get_member (root, "anchors");
  if (p->anchors == NULL)
    {
      config_error (error, p, "'anchors' is missing");
      return FALSE;
    }
  p->na = anchors_per_level (p->anchors, &levels);
  if (p->na < 0)
    {
      config_error (error, p, "'anchors' must be a list of per-level [w, h, "
                    "...] lists of equal length, or a count");
      return FALSE;
    }
  p->no = p->na * (p->nc + 5);

  p->config->nc = p->nc;
  p->config->na = p->na;
  p->config->depth_multiple = p->gd;
  p->config->width_multiple = p->gw;
  return parse_activation (p, root, error);
}

static JsonArray *
get_layer_list (Parser *p, JsonObject *root, const char *key, GError **error)
{
  JsonNode *node = json_object_get_member (root, key);

  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_ARRAY)
    {
      config_error (error, p, "'%s' must be a list of layers", key);
      return NULL;
    }
  return json_node_get_array (node);
}

static gboolean
parse_layers (Parser *p, JsonObject *root, GError **error)
{
  JsonArray *backbone, *head;
  guint n_backbone, n;
  int total_repeats = 0;

  backbone = get_layer_list (p, root, "backbone", error);
  if (backbone == NULL)
    return FALSE;
  head = get_layer_list (p, root, "head", error);
  if (head == NULL)
    return FALSE;
  n_backbone = json_array_get_length (backbone);
  n = n_backbone + json_array_get_length (head);
  if (n == 0 || n > 4096)
    {
      config_error (error, p, "has %u layers; expected 1 to 4096", n);
      return FALSE;
    }

  p->config->layers = g_new0 (SsfpnLayerConfig, n);
  p->config->n_layers = (int) n;
  p->ch = g_new0 (int, n);
  p->depth = g_new0 (int, n);
  for (guint i = 0; i < n; i++)
    {
      SsfpnLayerConfig *layer = &p->config->layers[i];
      JsonNode *node = i < n_backbone
                       ? json_array_get_element (backbone, i)
                       : json_array_get_element (head, i - n_backbone);

      layer->index = (int) i;
      if (!parse_layer (p, layer, node, error))
        return FALSE;
      total_repeats += layer->repeats;
      if (total_repeats > MAX_TOTAL_REPEATS)
        {
          layer_error (error, p, layer, "the layers so far repeat their "
                       "modules %d times in all; at most %d", total_repeats,
                       MAX_TOTAL_REPEATS);
          return FALSE;
        }
      if (layer->kind == SSFPN_MODULE_DETECT && i != n - 1)
        {
          layer_error (error, p, layer, "Detect must be the last layer (it is "
                       "%u of %u)", i, n);
          return FALSE;
        }
      p->ch[i] = layer->c2;
      p->depth[i] = layer->depth;
    }
  if (p->config->layers[n - 1].kind != SSFPN_MODULE_DETECT)
    {
      layer_error (error, p, &p->config->layers[n - 1],
                   "the last layer must be Detect");
      return FALSE;
    }
  p->config->nl = p->config->layers[n - 1].n_from;
  return TRUE;
}

SsfpnConfig *
ssfpn_config_parse (const char *json, const char *source, GError **error)
{
  Parser p = { .source = source };
  JsonNode *root = NULL;
  char *what;
  gboolean ok = FALSE;

  p.config = g_new0 (SsfpnConfig, 1);
  /* Text that is not a JSON object is a malformed file (FORMAT); an object
   * that cannot be built into a network is a configuration error. */
  what = g_strdup_printf ("%s: ssfpn.config", source);
  root = ssfpn_json_parse (json, strlen (json), what, error);
  if (root == NULL)
    goto out;
  if (JSON_NODE_TYPE (root) != JSON_NODE_OBJECT)
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: not a JSON object", what);
      goto out;
    }
  ok = parse_globals (&p, json_node_get_object (root), error)
       && parse_layers (&p, json_node_get_object (root), error);

out:
  g_free (what);
  g_free (p.ch);
  g_free (p.depth);
  if (root != NULL)
    json_node_unref (root);
  if (!ok)
    {
      ssfpn_config_free (p.config);
      return NULL;
    }
  return p.config;
}

void
ssfpn_config_free (SsfpnConfig *config)
{
  if (config == NULL)
    return;
  for (int i = 0; i < config->n_layers; i++)
    {
      SsfpnLayerConfig *layer = &config->layers[i];
      g_free (layer->module);
      g_free (layer->from_text);
      g_free (layer->args_text);
      g_free (layer->from);
      g_free (layer->pools);
    }
  g_free (config->layers);
  g_free (config);
}
