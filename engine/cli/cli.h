/* What the `ssfpn` subcommands share: the common options, exit statuses,
 * error reporting and a few parsing helpers (cli_common.c). */
#ifndef SSFPN_CLI_H
#define SSFPN_CLI_H

#include <glib.h>
#include <stdio.h>
#include <json-glib/json-glib.h>

#include "ssfpn/ssfpn.h"

G_BEGIN_DECLS

enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAILURE = 1, /* the request was valid but could not be done */
  CLI_EXIT_USAGE = 2,   /* the command line itself is wrong */
};

/* --device, --precision, --threads, --augment, as every subcommand takes
 * them. */
typedef struct {
  char *device;           /* "auto" unless given (after parsing) */
  char *precision_name;   /* NULL, "fp32" or "fp16" */
  int threads;            /* 0 = all cores */
  char *augment_name;     /* NULL, or an ssfpn_augment_name() */
  SsfpnPrecision precision;
  SsfpnAugment augment;
} CliCommonOptions;

/* A subcommand's parsed command line: GOption state plus the common
 * options. */
typedef struct {
  const char *name;       /* "info", "run", ... */
  GOptionContext *context;
  CliCommonOptions common;
} CliCommand;

/* Sets up parsing for subcommand @name with @entries (NULL-terminated) and
 * the common options. @parameters and @summary go into --help. */
void cli_command_init (CliCommand *command, const char *name,
                       const char *parameters, const char *summary,
                       const GOptionEntry *entries);
void cli_command_clear (CliCommand *command);

/* Parses the command line (argv[0] is the subcommand name); on return
 * @argv holds the positional arguments after argv[0]. Returns FALSE after
 * printing a usage error. --help prints help and exits 0. */
gboolean cli_command_parse (CliCommand *command, int *argc, char ***argv);

/* Prints "ssfpn NAME: MESSAGE (see 'ssfpn NAME --help')" and returns
 * CLI_EXIT_USAGE. */
int cli_usage_error (const CliCommand *command, const char *format, ...)
  G_GNUC_PRINTF (2, 3);

/* Prints "ssfpn: MESSAGE" on one line, frees @error and returns
 * CLI_EXIT_FAILURE. */
int cli_fail (GError *error);

/* Opens MODEL: a path, or "default" for the embedded model. The message
 * of a failure always names the path. */
SsfpnModel *cli_open_model (const char *argument, GError **error);

/* Context options from the common options. */
void cli_context_options (const CliCommand *command,
                          SsfpnContextOptions *options);

/* "640" or "480x640" (height x width). */
gboolean cli_parse_size (const char *text, int *height, int *width);

/* Checks the NMS options every command shares (--conf, --iou, --max-det,
 * and --classes when @classes_text is given, parsed into @classes).
 * Returns 0, or the exit status of the usage error it printed. */
int cli_check_nms_options (const CliCommand *command, double conf, double iou,
                           int max_det, const char *classes_text,
                           int **classes, int *n_classes);

/* Checks that each of @classes is one of @model's class ids. Returns 0, or
 * the exit status of the usage error it printed. */
int cli_check_classes (const CliCommand *command, const SsfpnModel *model,
                       const int *classes, int n_classes);

/* "1,8,32": a comma-separated list of positive integers (or zero when
 * @allow_zero); free @values with g_free. */
gboolean cli_parse_int_list (const char *text, gboolean allow_zero,
                             int **values, int *count);

/* Prints @node as compact JSON followed by a newline. */
void cli_print_json (FILE *stream, JsonNode *node);

/* @text parsed as JSON, or a JSON string holding @text if it is not JSON
 * (the layer table's "from" and "args" are JSON text). */
JsonNode *cli_json_from_text (const char *text);

/* @value as the double with the shortest decimal form that still reads
 * back as the same float, so JSON shows 0.81 and not 0.81000000238. */
double cli_float_for_json (float value);

/* {"image", "width", "height", "detections": [{"class_id", "label",
 * "confidence", "box"}]}: what `detect` prints per image (cli.md). */
JsonNode *cli_detections_json (const SsfpnModel *model, const char *image,
                               int width, int height,
                               const SsfpnDetection *dets, int n);

/* Seconds on a monotonic clock. */
double cli_now (void);

G_END_DECLS

#endif /* SSFPN_CLI_H */
