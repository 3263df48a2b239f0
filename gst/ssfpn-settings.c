/* ssfpndetect: parsing the property values that need more than a type check. */
#include "ssfpn-settings.h"

#include <ssfpn/ssfpn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Indices above this are certainly a typo; it also keeps the int cast safe. */
#define MAX_CLASS_INDEX 65535

gboolean
ssfpn_parse_class_filter (const char *text, GArray **classes, GError **error)
{
  *classes = NULL;
  if (text == NULL)
    return TRUE;

  g_autofree char *stripped = g_strstrip (g_strdup (text));
  if (*stripped == '\0')
    return TRUE;

  g_auto (GStrv) items = g_strsplit (stripped, ",", -1);
  g_autoptr (GArray) parsed = g_array_new (FALSE, FALSE, sizeof (int));
  for (int i = 0; items[i] != NULL; i++) {
    char *item = g_strstrip (items[i]);
    char *end = NULL;
    errno = 0;
    long value = *item ? strtol (item, &end, 10) : -1;
    if (*item == '\0' || end == NULL || *end != '\0' || errno != 0
        || !g_ascii_isdigit (item[0]) || value > MAX_CLASS_INDEX) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "classes \"%s\": \"%s\" is not a class index; expected "
                   "comma-separated indices such as \"0,2\"", text, item);
      return FALSE;
    }
    int index = (int) value;
    gboolean seen = FALSE;
    for (guint j = 0; j < parsed->len; j++)
      seen |= g_array_index (parsed, int, j) == index;
    if (!seen)
      g_array_append_val (parsed, index);
  }
  *classes = g_steal_pointer (&parsed);
  return TRUE;
}

gboolean
ssfpn_check_class_filter (const char *text, const GArray *classes,
                          int num_classes, GError **error)
{
  if (classes == NULL)
    return TRUE;
  for (guint i = 0; i < classes->len; i++) {
    int index = g_array_index (classes, int, i);
    if (index >= num_classes) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "classes \"%s\": class %d does not exist; the model has "
                   "%d classes (0 to %d)", text, index, num_classes,
                   num_classes - 1);
      return FALSE;
    }
  }
  return TRUE;
}

char **
ssfpn_read_labels_file (const char *path, int num_classes, GError **error)
{
  g_autofree char *contents = NULL;
  g_autoptr (GError) read_error = NULL;
  if (!g_file_get_contents (path, &contents, NULL, &read_error)) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_IO,
                 "cannot read labels file \"%s\": %s", path,
                 read_error->message);
    return NULL;
  }

  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  guint n_lines = g_strv_length (lines);
  /* Blank lines at the end are no classes (editors and echo leave them). */
  while (n_lines > 0 && *g_strstrip (lines[n_lines - 1]) == '\0')
    n_lines--;

  if ((int) n_lines != num_classes) {
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                 "labels file \"%s\" names %u classes but the model has %d; "
                 "write one name per line", path, n_lines, num_classes);
    return NULL;
  }

  char **labels = g_new0 (char *, n_lines + 1);
  for (guint i = 0; i < n_lines; i++) {
    char *name = g_strstrip (lines[i]);
    /* Names go into GstStructure strings and Pango text: UTF-8 only. */
    if (!g_utf8_validate (name, -1, NULL)) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "labels file \"%s\": line %u is not UTF-8 text (save "
                   "the file as UTF-8)", path, i + 1);
      g_strfreev (labels);
      return NULL;
    }
    if (*name == '\0') {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "labels file \"%s\": line %u is empty; every class needs "
                   "a name", path, i + 1);
      g_strfreev (labels);
      return NULL;
    }
    labels[i] = g_strdup (name);
  }
  return labels;
}
