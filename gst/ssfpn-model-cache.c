/* ssfpndetect: models shared between elements by model-instance-id. */
#include "ssfpn-model-cache.h"

typedef struct {
  char *path;
  SsfpnModel *model; /* the cache's reference */
  int users;
} CacheEntry;

static GMutex cache_lock;
static GHashTable *cache_entries; /* instance id -> CacheEntry */

static void
cache_entry_free (gpointer data)
{
  CacheEntry *entry = data;
  g_free (entry->path);
  ssfpn_model_unref (entry->model);
  g_free (entry);
}

static gboolean
has_instance_id (const char *instance_id)
{
  return instance_id != NULL && *instance_id != '\0';
}

SsfpnModel *
ssfpn_model_cache_acquire (const char *instance_id, const char *path,
                           GError **error)
{
  if (!has_instance_id (instance_id))
    return ssfpn_model_open (path, error);

  /* Opening under the lock makes a second element with the same id wait for
   * the first load instead of loading the file twice. */
  g_mutex_lock (&cache_lock);
  if (cache_entries == NULL)
    cache_entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           cache_entry_free);

  /* Two spellings of one file are one model. */
  g_autofree char *canonical = g_canonicalize_filename (path, NULL);
  SsfpnModel *model = NULL;
  CacheEntry *entry = g_hash_table_lookup (cache_entries, instance_id);
  if (entry != NULL) {
    if (g_strcmp0 (entry->path, canonical) != 0) {
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "model-instance-id \"%s\" is already in use with model "
                   "\"%s\"; this element asks for \"%s\". Elements sharing an "
                   "id must use the same model file", instance_id,
                   entry->path, path);
      goto out;
    }
    entry->users++;
    model = ssfpn_model_ref (entry->model);
    goto out;
  }

  model = ssfpn_model_open (path, error);
  if (model == NULL)
    goto out;
  entry = g_new0 (CacheEntry, 1);
  entry->path = g_steal_pointer (&canonical);
  entry->model = ssfpn_model_ref (model);
  entry->users = 1;
  g_hash_table_insert (cache_entries, g_strdup (instance_id), entry);

out:
  g_mutex_unlock (&cache_lock);
  return model;
}

void
ssfpn_model_cache_release (const char *instance_id, SsfpnModel *model)
{
  if (model == NULL)
    return;

  if (has_instance_id (instance_id)) {
    g_mutex_lock (&cache_lock);
    CacheEntry *entry = cache_entries != NULL
        ? g_hash_table_lookup (cache_entries, instance_id) : NULL;
    if (entry != NULL && entry->model == model && --entry->users == 0)
      g_hash_table_remove (cache_entries, instance_id);
    if (cache_entries != NULL && g_hash_table_size (cache_entries) == 0)
      g_clear_pointer (&cache_entries, g_hash_table_unref);
    g_mutex_unlock (&cache_lock);
  }
  ssfpn_model_unref (model);
}

int
ssfpn_model_cache_users (const char *instance_id)
{
  if (!has_instance_id (instance_id))
    return 0;
  g_mutex_lock (&cache_lock);
  CacheEntry *entry = cache_entries != NULL
      ? g_hash_table_lookup (cache_entries, instance_id) : NULL;
  int users = entry != NULL ? entry->users : 0;
  g_mutex_unlock (&cache_lock);
  return users;
}
