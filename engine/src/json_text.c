/* Untrusted JSON text: a strict pre-check, then json-glib with duplicate
 * keys refused. See json_text.h for why each check exists. */
#include "json_text.h"

#include "ssfpn/ssfpn.h"

/* The value of the 4 hex digits at @text, or -1. */
static int
hex4 (const char *text)
{
  int value = 0;
  for (int k = 0; k < 4; k++)
    {
      int digit = g_ascii_xdigit_value (text[k]);
      if (digit < 0)
        return -1;
      value = value * 16 + digit;
    }
  return value;
}

/* Checks the escape at text[*i] == '\\' inside a string and moves *i to its
 * last byte. Returns NULL, or why the escape is refused. */
static const char *
check_escape (const char *text, gsize length, gsize *i)
{
  gsize at = *i;
  if (at + 1 >= length)
    return "a string that ends in a backslash";
  if (text[at + 1] != 'u')
    {
      *i = at + 1;
      return NULL;
    }
  if (at + 6 > length)
    return "a \\u escape cut short";
  int unit = hex4 (text + at + 2);
  if (unit < 0)
    return "a \\u escape without 4 hex digits";
  if (unit == 0)
    return "\\u0000 (a NUL character)";
  if (unit >= 0xDC00 && unit <= 0xDFFF)
    return "a low UTF-16 surrogate escape without its high one";
  if (unit >= 0xD800 && unit <= 0xDBFF)
    {
      int low = at + 12 <= length && text[at + 6] == '\\'
        && text[at + 7] == 'u' ? hex4 (text + at + 8) : -1;
      if (low < 0xDC00 || low > 0xDFFF)
        return "a high UTF-16 surrogate escape without its low one";
      *i = at + 11;
      return NULL;
    }
  *i = at + 5;
  return NULL;
}

gboolean
ssfpn_json_check_text (const char *text, gsize length, const char *what,
                       GError **error)
{
  gboolean in_string = FALSE;
  int depth = 0;
  gsize values = 0;

  /* A value starts at each '"', '[' and '{' and after each ','; keys count
   * too, which only overestimates. */
  for (gsize i = 0; i < length; i++)
    {
      char c = text[i];

      if (in_string)
        {
          if (c == '\\')
            {
              gsize start = i;
              const char *refused = check_escape (text, length, &i);
              if (refused != NULL)
                {
                  g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                               "%s: JSON does not parse: %s at byte %"
                               G_GSIZE_FORMAT, what, refused, start);
                  return FALSE;
                }
            }
          else if (c == '"')
            in_string = FALSE;
          continue;
        }
      if ((c == '"' || c == '[' || c == '{' || c == ',')
          && ++values > SSFPN_JSON_MAX_VALUES)
        {
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s: JSON holds more than %d values", what,
                       SSFPN_JSON_MAX_VALUES);
          return FALSE;
        }
      switch (c)
        {
        case '"':
          in_string = TRUE;
          break;
        case '[':
        case '{':
          if (++depth > SSFPN_JSON_MAX_DEPTH)
            {
              g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                           "%s: JSON nested deeper than %d levels at byte %"
                           G_GSIZE_FORMAT, what, SSFPN_JSON_MAX_DEPTH, i);
              return FALSE;
            }
          break;
        case ']':
        case '}':
          depth--;
          break;
        case '\'':
        case '/':
        case '#':
          g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                       "%s: JSON does not parse: unexpected character "
                       "\"%c\" at byte %" G_GSIZE_FORMAT " (JSON has no "
                       "comments or single-quoted strings)", what, c, i);
          return FALSE;
        default:
          break;
        }
    }
  return TRUE;
}

/* json-glib's ::object-member fires once per parsed member, after it is
 * set: an object whose size did not grow has just replaced a member, so
 * that name is a duplicate. One count per object, no copies of names.
 * Objects are told apart by address, which can only be reused after a
 * replacement, i.e. after the first duplicate, the one reported. */
typedef struct {
  GHashTable *members_by_object; /* JsonObject* -> members seen */
  char *first_duplicate;
} DuplicateFinder;

static void
on_object_member (JsonParser *parser, JsonObject *object,
                  const char *member_name, gpointer user_data)
{
  DuplicateFinder *finder = user_data;

  if (finder->first_duplicate)
    return;
  guint seen = GPOINTER_TO_UINT (g_hash_table_lookup (finder->members_by_object,
                                                      object)) + 1;
  g_hash_table_insert (finder->members_by_object, object,
                       GUINT_TO_POINTER (seen));
  if (json_object_get_size (object) < seen)
    finder->first_duplicate = g_strdup (member_name);
}

JsonNode *
ssfpn_json_parse (const char *text, gsize length, const char *what,
                  GError **error)
{
  if (!ssfpn_json_check_text (text, length, what, error))
    return NULL;

  DuplicateFinder finder = {
    g_hash_table_new (g_direct_hash, g_direct_equal), NULL
  };
  JsonParser *parser = json_parser_new ();
  GError *json_error = NULL;
  JsonNode *root = NULL;

  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member),
                    &finder);
  if (!json_parser_load_from_data (parser, text, (gssize) length,
                                   &json_error))
    {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                   "%s: JSON does not parse: %s", what, json_error->message);
      g_error_free (json_error);
    }
  else if (finder.first_duplicate)
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                 "%s: duplicate key \"%s\"", what, finder.first_duplicate);
  else if (json_parser_get_root (parser) == NULL)
    g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_FORMAT,
                 "%s: JSON does not parse: the text is empty", what);
  else
    root = json_parser_steal_root (parser);

  g_object_unref (parser);
  g_hash_table_unref (finder.members_by_object);
  g_free (finder.first_duplicate);
  return root;
}
