/* Untrusted JSON text (the safetensors header, ssfpn.config, ssfpn.names,
 * ...): checked before json-glib sees it, then parsed with duplicate keys
 * refused. */
#ifndef SSFPN_JSON_TEXT_H
#define SSFPN_JSON_TEXT_H

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define SSFPN_JSON_MAX_DEPTH 64
/* Values (strings, numbers, arrays, objects...) in one text. A model file's
 * header holds a few thousand; json-glib spends about 50 bytes on each. */
#define SSFPN_JSON_MAX_VALUES 2000000

/* json-glib recurses once per nesting level without a limit (deep nesting
 * overflows the stack), accepts comments and single quotes, and mishandles
 * a lone UTF-16 surrogate escape; a "\u0000" would cut the text it returns.
 * Refuses all of these, nesting deeper than SSFPN_JSON_MAX_DEPTH and more
 * than SSFPN_JSON_MAX_VALUES values with SSFPN_ERROR_FORMAT; @what starts
 * the message. */
gboolean ssfpn_json_check_text (const char *text, gsize length,
                                const char *what, GError **error);

/* Checks @text (ssfpn_json_check_text), parses it and refuses an object
 * with two equal keys (json-glib would keep the last without a word).
 * Returns the root (json_node_unref it), or NULL with SSFPN_ERROR_FORMAT:
 * "@what: JSON does not parse: ...", "@what: duplicate key \"k\"". */
JsonNode *ssfpn_json_parse (const char *text, gsize length, const char *what,
                            GError **error);

G_END_DECLS

#endif /* SSFPN_JSON_TEXT_H */
