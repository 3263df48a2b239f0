/* ssfpndetect: parsing the property values that need more than a type check.
 *
 * The element validates these at start() so that a bad value fails the
 * state change with a message naming the value; the functions here only
 * parse and report, with GErrors in the SSFPN_ERROR domain.
 */
#ifndef SSFPN_SETTINGS_H
#define SSFPN_SETTINGS_H

#include <glib.h>

G_BEGIN_DECLS

/* Parses a class filter such as "0,2" (spaces allowed around the numbers)
 * into a new array of distinct, non-negative class indices. NULL or "" mean
 * no filter: returns TRUE with *classes = NULL. */
gboolean ssfpn_parse_class_filter (const char *text, GArray **classes,
                                   GError **error);

/* Checks every index of @classes against a model with @num_classes. */
gboolean ssfpn_check_class_filter (const char *text, const GArray *classes,
                                   int num_classes, GError **error);

/* Reads a labels file: one class name per line, in class order; a final
 * empty line is ignored, surrounding spaces and a trailing '\r' are
 * stripped. The file must name exactly @num_classes classes. Returns a
 * NULL-terminated array. */
char **ssfpn_read_labels_file (const char *path, int num_classes,
                               GError **error);

G_END_DECLS

#endif /* SSFPN_SETTINGS_H */
