/* `ssfpn info MODEL [--json]`: what is in a model file. */
#include "cli.h"

#include <string.h>

typedef struct {
  SsfpnModel *model;
  int height, width;
  SsfpnLayerInfo *layers;
  int n_layers;
} ModelSummary;

static char *
shape_text (const SsfpnLayerInfo *layer)
{
  if (layer->depth > 1)
    return g_strdup_printf ("%dx%dx%dx%d", layer->channels, layer->depth,
                            layer->height, layer->width);
  return g_strdup_printf ("%dx%dx%d", layer->channels, layer->height,
                          layer->width);
}

static void
print_table (const ModelSummary *s)
{
  const SsfpnModel *model = s->model;
  int nc = ssfpn_model_num_classes (model);
  int imgsz_h, imgsz_w;
  ssfpn_model_input_size (model, &imgsz_h, &imgsz_w);

  printf ("model       %s\n", ssfpn_model_path (model));
  printf ("imgsz       %dx%d (height x width)\n", imgsz_h, imgsz_w);
  printf ("strides     ");
  for (int l = 0; l < ssfpn_model_num_levels (model); l++)
    printf (l ? ", %d" : "%d", ssfpn_model_stride (model, l));
  printf (" (%d anchors per level)\n", ssfpn_model_anchors_per_level (model));
  printf ("output      (%d, %d) per image at %dx%d\n",
          ssfpn_model_output_rows (model, s->height, s->width),
          ssfpn_model_output_columns (model), s->height, s->width);
  printf ("parameters  %" G_GINT64_FORMAT "\n", ssfpn_model_parameter_count (model));
  printf ("GFLOPs      %.4g at %dx%d\n",
          ssfpn_model_gflops (model, s->height, s->width), s->height, s->width);
  printf ("classes     %d:", nc);
  for (int c = 0; c < nc; c++)
    printf (c ? ", %s" : " %s", ssfpn_model_class_name (model, c));
  printf ("\n\n");

  /* Column widths from the content, as YOLOv5's model summary. */
  int w_from = 4, w_module = 6, w_args = 9, w_params = 6, w_shape = 6;
  g_autofree char **shapes = g_new0 (char *, s->n_layers + 1);
  for (int i = 0; i < s->n_layers; i++)
    {
      const SsfpnLayerInfo *layer = &s->layers[i];
      shapes[i] = shape_text (layer);
      g_autofree char *params = g_strdup_printf ("%" G_GINT64_FORMAT, layer->parameters);
      w_from = MAX (w_from, (int) strlen (layer->from));
      w_module = MAX (w_module, (int) strlen (layer->module));
      w_args = MAX (w_args, (int) strlen (layer->args));
      w_params = MAX (w_params, (int) strlen (params));
      w_shape = MAX (w_shape, (int) strlen (shapes[i]));
    }

  printf ("%3s  %-*s  %3s  %*s  %-*s  %-*s  %s\n", "", w_from, "from", "n",
          w_params, "params", w_module, "module", w_args, "arguments", "output");
  for (int i = 0; i < s->n_layers; i++)
    {
      const SsfpnLayerInfo *layer = &s->layers[i];
      printf ("%3d  %-*s  %3d  %*" G_GINT64_FORMAT "  %-*s  %-*s  %s\n",
              layer->index, w_from, layer->from, layer->repeats, w_params,
              layer->parameters, w_module, layer->module, w_args, layer->args,
              shapes[i]);
      g_free (shapes[i]);
    }
}

static JsonNode *
summary_json (const ModelSummary *s)
{
  const SsfpnModel *model = s->model;
  int imgsz_h, imgsz_w;
  ssfpn_model_input_size (model, &imgsz_h, &imgsz_w);
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, ssfpn_model_path (model));
  json_builder_set_member_name (b, "imgsz");
  json_builder_begin_array (b);
  json_builder_add_int_value (b, imgsz_h);
  json_builder_add_int_value (b, imgsz_w);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "size");
  json_builder_begin_array (b);
  json_builder_add_int_value (b, s->height);
  json_builder_add_int_value (b, s->width);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "parameters");
  json_builder_add_int_value (b, ssfpn_model_parameter_count (model));
  json_builder_set_member_name (b, "gflops");
  json_builder_add_double_value (b, ssfpn_model_gflops (model, s->height, s->width));
  json_builder_set_member_name (b, "strides");
  json_builder_begin_array (b);
  for (int l = 0; l < ssfpn_model_num_levels (model); l++)
    json_builder_add_int_value (b, ssfpn_model_stride (model, l));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "anchors_per_level");
  json_builder_add_int_value (b, ssfpn_model_anchors_per_level (model));
  json_builder_set_member_name (b, "nc");
  json_builder_add_int_value (b, ssfpn_model_num_classes (model));
  json_builder_set_member_name (b, "names");
  json_builder_begin_array (b);
  for (int c = 0; c < ssfpn_model_num_classes (model); c++)
    json_builder_add_string_value (b, ssfpn_model_class_name (model, c));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "output_shape");
  json_builder_begin_array (b);
  json_builder_add_int_value (b, ssfpn_model_output_rows (model, s->height, s->width));
  json_builder_add_int_value (b, ssfpn_model_output_columns (model));
  json_builder_end_array (b);

  json_builder_set_member_name (b, "layers");
  json_builder_begin_array (b);
  for (int i = 0; i < s->n_layers; i++)
    {
      const SsfpnLayerInfo *layer = &s->layers[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "index");
      json_builder_add_int_value (b, layer->index);
      json_builder_set_member_name (b, "from");
      json_builder_add_value (b, cli_json_from_text (layer->from));
      json_builder_set_member_name (b, "repeats");
      json_builder_add_int_value (b, layer->repeats);
      json_builder_set_member_name (b, "module");
      json_builder_add_string_value (b, layer->module);
      json_builder_set_member_name (b, "args");
      json_builder_add_value (b, cli_json_from_text (layer->args));
      json_builder_set_member_name (b, "parameters");
      json_builder_add_int_value (b, layer->parameters);
      /* (C, H, W), or (C, D, H, W) on the scale axis of the 3-D neck */
      json_builder_set_member_name (b, "output");
      json_builder_begin_array (b);
      json_builder_add_int_value (b, layer->channels);
      if (layer->depth > 1)
        json_builder_add_int_value (b, layer->depth);
      json_builder_add_int_value (b, layer->height);
      json_builder_add_int_value (b, layer->width);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

int
cmd_info (int argc, char **argv)
{
  gboolean as_json = FALSE;
  char *size_text = NULL;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &as_json, "one JSON object", NULL },
    { "size", 0, 0, G_OPTION_ARG_STRING, &size_text,
      "shapes and GFLOPs at S or HxW (default: the model's imgsz)", "S" },
    G_OPTION_ENTRY_NULL
  };
  CliCommand command;
  ModelSummary summary = { 0 };
  GError *error = NULL;
  int status = CLI_EXIT_OK;

  cli_command_init (&command, "info", "MODEL",
                    "Layers (index, from, repeats, module, args, output shape), "
                    "parameter count, GFLOPs, class names and strides of a model.",
                    entries);
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
  int height = 0, width = 0;
  if (size_text != NULL && !cli_parse_size (size_text, &height, &width))
    {
      status = cli_usage_error (&command, "--size %s is not S or HxW", size_text);
      goto out;
    }

  summary.model = cli_open_model (argv[1], &error);
  if (summary.model == NULL)
    goto failed;
  if (size_text == NULL)
    ssfpn_model_input_size (summary.model, &height, &width);
  int stride = ssfpn_model_max_stride (summary.model);
  if (height % stride != 0 || width % stride != 0)
    {
      status = cli_usage_error (&command, "--size %dx%d is not a multiple of the "
                                "model's largest stride %d", height, width, stride);
      goto out;
    }
  summary.height = height;
  summary.width = width;
  summary.layers = ssfpn_model_layers (summary.model, height, width,
                                       &summary.n_layers, &error);
  if (summary.layers == NULL)
    goto failed;

  if (as_json)
    {
      JsonNode *root = summary_json (&summary);
      cli_print_json (stdout, root);
      json_node_unref (root);
    }
  else
    print_table (&summary);
  goto out;

failed:
  status = cli_fail (error);
out:
  if (summary.layers)
    ssfpn_layer_info_free (summary.layers, summary.n_layers);
  if (summary.model)
    ssfpn_model_unref (summary.model);
  g_free (size_text);
  cli_command_clear (&command);
  return status;
}
