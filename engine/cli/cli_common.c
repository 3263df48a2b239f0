/* Shared parts of the `ssfpn` subcommands: option parsing, the common
 * options, error reporting, model opening, small parsers. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

void
cli_command_init (CliCommand *command, const char *name,
                  const char *parameters, const char *summary,
                  const GOptionEntry *entries)
{
  memset (command, 0, sizeof *command);
  command->name = name;
  command->common.precision = SSFPN_PRECISION_DEFAULT;

  const GOptionEntry common_entries[] = {
    { "device", 0, 0, G_OPTION_ARG_STRING, &command->common.device,
      "auto (default: a GPU when one works, else the CPU), cpu, cuda, cuda:N",
      "DEVICE" },
    { "precision", 0, 0, G_OPTION_ARG_STRING, &command->common.precision_name,
      "fp32 or fp16 (default: fp32 on the CPU, fp16 on a GPU)", "P" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &command->common.threads,
      "CPU threads (default 0: all cores)", "T" },
    { "augment", 0, 0, G_OPTION_ARG_STRING, &command->common.augment_name,
      "none (default) or flips: also run the image's three mirror images "
      "and average the four outputs (4x the time)", "A" },
    G_OPTION_ENTRY_NULL
  };

  /* --help shows "ssfpn NAME" as the program. */
  g_autofree char *program = g_strdup_printf ("ssfpn %s", name);
  g_set_prgname (program);
  command->context = g_option_context_new (parameters);
  g_option_context_set_summary (command->context, summary);
  if (entries != NULL)
    g_option_context_add_main_entries (command->context, entries, NULL);
  g_option_context_add_main_entries (command->context, common_entries, NULL);
}

void
cli_command_clear (CliCommand *command)
{
  g_clear_pointer (&command->context, g_option_context_free);
  g_clear_pointer (&command->common.device, g_free);
  g_clear_pointer (&command->common.precision_name, g_free);
  g_clear_pointer (&command->common.augment_name, g_free);
}

int
cli_usage_error (const CliCommand *command, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr, "ssfpn %s: %s (see 'ssfpn %s --help')\n", command->name,
           message, command->name);
  return CLI_EXIT_USAGE;
}

/* auto, cpu, cuda or cuda:N with N a decimal index below 1024, the
 * engine's limit (context.c). */
static gboolean
device_is_valid (const char *device)
{
  if (strcmp (device, "auto") == 0 || strcmp (device, "cpu") == 0
      || strcmp (device, "cuda") == 0)
    return TRUE;
  if (!g_str_has_prefix (device, "cuda:") || device[5] == '\0'
      || strlen (device + 5) > 4)
    return FALSE;
  for (const char *c = device + 5; *c; c++)
    if (!g_ascii_isdigit (*c))
      return FALSE;
  return atoi (device + 5) < 1024;
}

gboolean
cli_command_parse (CliCommand *command, int *argc, char ***argv)
{
  g_autoptr (GError) error = NULL;

  if (!g_option_context_parse (command->context, argc, argv, &error))
    {
      cli_usage_error (command, "%s", error->message);
      return FALSE;
    }
  /* GLib keeps the "--" that ends the options when an argument after it
   * starts with '-' ("info -- -m.safetensors"); it is no argument. */
  for (int i = 1; i < *argc; i++)
    if (strcmp ((*argv)[i], "--") == 0)
      {
        memmove (&(*argv)[i], &(*argv)[i + 1],
                 (gsize) (*argc - i) * sizeof (char *));
        (*argc)--;
        break;
      }

  CliCommonOptions *common = &command->common;
  if (common->device == NULL)
    common->device = g_strdup ("auto");
  if (!device_is_valid (common->device))
    {
      cli_usage_error (command, "--device %s is not one of auto, cpu, cuda, cuda:N (N below 1024)",
                       common->device);
      return FALSE;
    }
  if (common->precision_name == NULL)
    common->precision = SSFPN_PRECISION_DEFAULT;
  else if (strcmp (common->precision_name, "fp32") == 0)
    common->precision = SSFPN_PRECISION_FP32;
  else if (strcmp (common->precision_name, "fp16") == 0)
    common->precision = SSFPN_PRECISION_FP16;
  else
    {
      cli_usage_error (command, "--precision %s is not fp32 or fp16",
                       common->precision_name);
      return FALSE;
    }
  if (common->threads < 0 || common->threads > SSFPN_MAX_THREADS)
    {
      cli_usage_error (command, "--threads %d is not between 0 (all cores) "
                       "and %d", common->threads, SSFPN_MAX_THREADS);
      return FALSE;
    }
  common->augment = SSFPN_AUGMENT_NONE;
  if (common->augment_name != NULL
      && !ssfpn_augment_from_name (common->augment_name, &common->augment))
    {
      cli_usage_error (command, "--augment %s is not none or flips",
                       common->augment_name);
      return FALSE;
    }
  return TRUE;
}

int
cli_fail (GError *error)
{
  /* One line, whatever the message holds. */
  g_autofree char *message = g_strdup (error ? error->message : "unknown error");
  g_strdelimit (message, "\r\n", ' ');
  fprintf (stderr, "ssfpn: %s\n", message);
  g_clear_error (&error);
  return CLI_EXIT_FAILURE;
}

SsfpnModel *
cli_open_model (const char *argument, GError **error)
{
  if (strcmp (argument, "default") == 0)
    return ssfpn_model_open_default (error);

  GError *local = NULL;
  SsfpnModel *model = ssfpn_model_open (argument, &local);
  if (model == NULL)
    {
      if (strstr (local->message, argument) == NULL)
        g_prefix_error (&local, "%s: ", argument);
      g_propagate_error (error, local);
    }
  return model;
}

void
cli_context_options (const CliCommand *command, SsfpnContextOptions *options)
{
  ssfpn_context_options_init (options);
  options->device = command->common.device;
  options->precision = command->common.precision;
  options->threads = command->common.threads;
  options->augment = command->common.augment;
}

/* A positive decimal integer that fits an int, the whole of @text. */
static gboolean
parse_positive (const char *text, gboolean allow_zero, int *value)
{
  guint64 number;
  if (text == NULL || !g_ascii_isdigit (*text)
      || !g_ascii_string_to_unsigned (text, 10, allow_zero ? 0 : 1, G_MAXINT,
                                      &number, NULL))
    return FALSE;
  *value = (int) number;
  return TRUE;
}

gboolean
cli_parse_size (const char *text, int *height, int *width)
{
  g_auto (GStrv) parts = g_strsplit (text, "x", 3);
  guint n = g_strv_length (parts);
  if (n == 1)
    {
      if (!parse_positive (parts[0], FALSE, height))
        return FALSE;
      *width = *height;
      return TRUE;
    }
  return n == 2 && parse_positive (parts[0], FALSE, height)
         && parse_positive (parts[1], FALSE, width);
}

gboolean
cli_parse_int_list (const char *text, gboolean allow_zero, int **values,
                    int *count)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  guint n = g_strv_length (parts);
  if (n == 0)
    return FALSE;
  int *list = g_new (int, n);
  for (guint i = 0; i < n; i++)
    {
      g_strstrip (parts[i]);
      if (!parse_positive (parts[i], allow_zero, &list[i]))
        {
          g_free (list);
          return FALSE;
        }
    }
  *values = list;
  *count = (int) n;
  return TRUE;
}

static void
append_json_string (GString *out, const char *raw)
{
  /* JSON is UTF-8: a file name that is not gets U+FFFD for each bad byte. */
  g_autofree char *valid = g_utf8_validate (raw, -1, NULL) ? NULL
    : g_utf8_make_valid (raw, -1);
  const char *text = valid ? valid : raw;
  g_string_append_c (out, '"');
  for (const char *c = text; *c; c++)
    {
      if (*c == '"' || *c == '\\')
        g_string_append_printf (out, "\\%c", *c);
      else if ((guchar) *c < 0x20)
        g_string_append_printf (out, "\\u%04x", (guchar) *c);
      else
        g_string_append_c (out, *c);
    }
  g_string_append_c (out, '"');
}

/* The shortest of %.15g, %.16g, %.17g that reads back as @value; JSON has
 * no NaN or infinity, so those become null. */
static void
append_json_double (GString *out, double value)
{
  char format[8], text[G_ASCII_DTOSTR_BUF_SIZE];
  if (!isfinite (value))
    {
      g_string_append (out, "null");
      return;
    }
  for (int digits = 15; digits <= 17; digits++)
    {
      g_snprintf (format, sizeof format, "%%.%dg", digits);
      g_ascii_formatd (text, sizeof text, format, value);
      if (g_ascii_strtod (text, NULL) == value)
        break;
    }
  g_string_append (out, text);
}

/* A compact serialiser: json-glib writes every double with 17 digits,
 * which turns a confidence of 0.81 into 0.81000000000000005. */
static void
append_json (GString *out, JsonNode *node)
{
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        gboolean first = TRUE;
        g_string_append_c (out, '{');
        json_object_iter_init_ordered (&iter, json_node_get_object (node));
        while (json_object_iter_next_ordered (&iter, &name, &member))
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            append_json_string (out, name);
            g_string_append_c (out, ':');
            append_json (out, member);
          }
        g_string_append_c (out, '}');
        break;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        g_string_append_c (out, '[');
        for (guint i = 0; i < json_array_get_length (array); i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            append_json (out, json_array_get_element (array, i));
          }
        g_string_append_c (out, ']');
        break;
      }
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
          break;
        case G_TYPE_DOUBLE:
          append_json_double (out, json_node_get_double (node));
          break;
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          break;
        default:
          append_json_string (out, json_node_get_string (node));
          break;
        }
      break;
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      break;
    }
}

void
cli_print_json (FILE *stream, JsonNode *node)
{
  GString *text = g_string_new (NULL);
  append_json (text, node);
  g_string_append_c (text, '\n');
  fwrite (text->str, 1, text->len, stream);
  g_string_free (text, TRUE);
}

JsonNode *
cli_json_from_text (const char *text)
{
  JsonNode *node = text ? json_from_string (text, NULL) : NULL;
  if (node == NULL)
    {
      node = json_node_new (JSON_NODE_VALUE);
      json_node_set_string (node, text ? text : "");
    }
  return node;
}

double
cli_float_for_json (float value)
{
  if (!isfinite (value))
    return value;
  char format[8], text[32];
  for (int digits = 6; digits <= 9; digits++)
    {
      g_snprintf (format, sizeof format, "%%.%dg", digits);
      g_ascii_formatd (text, sizeof text, format, value);
      double back = g_ascii_strtod (text, NULL);
      if ((float) back == value)
        return back;
    }
  return value;
}

double
cli_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* The object `detect` prints per image and `run --detections` per batch
 * item (cli.md): image, width, height and the detections. */
JsonNode *
cli_detections_json (const SsfpnModel *model, const char *image, int width,
                     int height, const SsfpnDetection *dets, int n)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "image");
  json_builder_add_string_value (b, image);
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, height);
  json_builder_set_member_name (b, "detections");
  json_builder_begin_array (b);
  for (int i = 0; i < n; i++)
    {
      const char *label = ssfpn_model_class_name (model, dets[i].class_id);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "class_id");
      json_builder_add_int_value (b, dets[i].class_id);
      json_builder_set_member_name (b, "label");
      json_builder_add_string_value (b, label ? label : "");
      json_builder_set_member_name (b, "confidence");
      json_builder_add_double_value (b, cli_float_for_json (dets[i].confidence));
      json_builder_set_member_name (b, "box");
      json_builder_begin_array (b);
      json_builder_add_double_value (b, cli_float_for_json (dets[i].x1));
      json_builder_add_double_value (b, cli_float_for_json (dets[i].y1));
      json_builder_add_double_value (b, cli_float_for_json (dets[i].x2));
      json_builder_add_double_value (b, cli_float_for_json (dets[i].y2));
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

int
cli_check_nms_options (const CliCommand *command, double conf, double iou,
                       int max_det, const char *classes_text, int **classes,
                       int *n_classes)
{
  if (!(conf >= 0.0 && conf <= 1.0))
    return cli_usage_error (command, "--conf %g is not in [0, 1]", conf);
  if (!(iou >= 0.0 && iou <= 1.0))
    return cli_usage_error (command, "--iou %g is not in [0, 1]", iou);
  if (max_det < 1)
    return cli_usage_error (command, "--max-det %d is not positive", max_det);
  if (classes_text != NULL
      && !cli_parse_int_list (classes_text, TRUE, classes, n_classes))
    return cli_usage_error (command, "--classes %s is not a list such as 0,2",
                            classes_text);
  return 0;
}

int
cli_check_classes (const CliCommand *command, const SsfpnModel *model,
                   const int *classes, int n_classes)
{
  const int nc = ssfpn_model_num_classes (model);
  for (int i = 0; i < n_classes; i++)
    if (classes[i] >= nc)
      return cli_usage_error (command, "--classes: %d is not a class of this "
                              "model (ids 0 to %d)", classes[i], nc - 1);
  return 0;
}
