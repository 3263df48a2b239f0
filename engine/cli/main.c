/* `ssfpn`: the engine's command line (docs: spec cli.md). Dispatches to one
 * file per subcommand. */
#include "buildconfig.h"

#include <errno.h>
#include <locale.h>
#include <string.h>

#include "cli.h"

int cmd_info (int argc, char **argv);
int cmd_run (int argc, char **argv);
int cmd_detect (int argc, char **argv);
int cmd_bench (int argc, char **argv);
int cmd_eval (int argc, char **argv);

typedef struct {
  const char *name;
  int (*main) (int argc, char **argv); /* NULL: not in this build yet */
  const char *summary;
} Subcommand;

static const Subcommand subcommands[] = {
  { "info", cmd_info, "layers, parameters, GFLOPs, classes and strides of a model" },
  { "run", cmd_run, "run the network on a .npy batch, write the raw output" },
  { "detect", cmd_detect, "detect objects in images" },
  { "bench", cmd_bench, "time the network per batch size" },
  { "eval", cmd_eval, "COCO-style evaluation on a YOLO-format dataset" },
};

static void
print_usage (FILE *stream)
{
  fprintf (stream,
           "Usage: ssfpn COMMAND MODEL [OPTION...]\n\n"
           "MODEL is a model file, or 'default' for the embedded model.\n\n"
           "Commands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (subcommands); i++)
    fprintf (stream, "  %-8s %s%s\n", subcommands[i].name, subcommands[i].summary,
             subcommands[i].main ? "" : " (not available yet)");
  fprintf (stream,
           "\nCommon options: --device auto|cpu|cuda|cuda:N, "
           "--precision fp32|fp16, --threads T.\n"
           "'ssfpn COMMAND --help' describes each command.\n");
}

/* Output that could not be written (a full disk, a closed pipe) is a
 * failure, not a silent success. */
static int
finish_stdout (void)
{
  int saved = ferror (stdout) ? errno : 0;
  if (fflush (stdout) != 0 && saved == 0)
    saved = errno;
  if (!ferror (stdout))
    return CLI_EXIT_OK;
  fprintf (stderr, "ssfpn: cannot write to stdout: %s\n",
           saved ? g_strerror (saved) : "an earlier write failed");
  return CLI_EXIT_FAILURE;
}

int
main (int argc, char **argv)
{
  /* Numbers in JSON and on the command line use '.' whatever the locale. */
  setlocale (LC_ALL, "");
  setlocale (LC_NUMERIC, "C");

  if (argc < 2)
    {
      fprintf (stderr, "ssfpn: no command given (see 'ssfpn --help')\n");
      return CLI_EXIT_USAGE;
    }
  const char *name = argv[1];
  if (strcmp (name, "--help") == 0 || strcmp (name, "-h") == 0
      || strcmp (name, "help") == 0)
    {
      print_usage (stdout);
      return CLI_EXIT_OK;
    }
  if (strcmp (name, "--version") == 0)
    {
      printf ("ssfpn %s\n", SSFPN_VERSION);
      return CLI_EXIT_OK;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (subcommands); i++)
    {
      if (strcmp (name, subcommands[i].name) != 0)
        continue;
      if (subcommands[i].main == NULL)
        {
          fprintf (stderr, "ssfpn %s: not available in this build yet\n", name);
          return CLI_EXIT_FAILURE;
        }
      /* The subcommand sees its own name as argv[0]. */
      int status = subcommands[i].main (argc - 1, argv + 1);
      return status == CLI_EXIT_OK ? finish_stdout () : status;
    }

  fprintf (stderr, "ssfpn: unknown command '%s' (see 'ssfpn --help')\n", name);
  return CLI_EXIT_USAGE;
}
