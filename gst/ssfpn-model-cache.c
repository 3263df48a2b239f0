/* ssfpndetect: models and inference contexts shared by model-instance-id. */
#include "ssfpn-model-cache.h"

#include <ssfpn/ssfpn-frame.h>
#include <stdlib.h>

typedef struct {
  char *path;
  SsfpnModel *model; /* the cache's reference */
  int users;
} CacheEntry;

/* Held only briefly: the entries, the shared contexts, their users and the
 * build locks. */
static GMutex cache_lock;
static GHashTable *cache_entries; /* instance id -> CacheEntry */

/* The slow work (opening a model, building and warming up a context) runs
 * under a lock of its instance id alone: a second element of the id waits
 * for the first instead of doing it twice, and other ids go on. */
typedef struct {
  GMutex mutex;
  int holders; /* cache_lock */
} BuildLock;

static GHashTable *build_locks; /* instance id -> BuildLock; cache_lock */

static BuildLock *
build_lock_take (const char *instance_id)
{
  g_mutex_lock (&cache_lock);
  if (build_locks == NULL)
    build_locks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         NULL);
  BuildLock *lock = g_hash_table_lookup (build_locks, instance_id);
  if (lock == NULL) {
    lock = g_new0 (BuildLock, 1);
    g_mutex_init (&lock->mutex);
    g_hash_table_insert (build_locks, g_strdup (instance_id), lock);
  }
  lock->holders++;
  g_mutex_unlock (&cache_lock);

  g_mutex_lock (&lock->mutex);
  return lock;
}

static void
build_lock_give (const char *instance_id, BuildLock *lock)
{
  g_mutex_unlock (&lock->mutex);

  g_mutex_lock (&cache_lock);
  if (--lock->holders == 0) {
    g_hash_table_remove (build_locks, instance_id);
    g_mutex_clear (&lock->mutex);
    g_free (lock);
    if (g_hash_table_size (build_locks) == 0)
      g_clear_pointer (&build_locks, g_hash_table_unref);
  }
  g_mutex_unlock (&cache_lock);
}

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

gboolean
ssfpn_model_path_is_default (const char *path)
{
  return path == NULL || *path == '\0';
}

static SsfpnModel *
open_model (const char *path, GError **error)
{
  return ssfpn_model_path_is_default (path)
      ? ssfpn_model_open_default (error) : ssfpn_model_open (path, error);
}

static char *
resolved_path (const char *path)
{
  char *real = realpath (path, NULL);
  if (real == NULL)
    return g_canonicalize_filename (path, NULL);
  char *copy = g_strdup (real);
  free (real);
  return copy;
}

SsfpnModel *
ssfpn_model_cache_acquire (const char *instance_id, const char *path,
                           GError **error)
{
  if (!has_instance_id (instance_id))
    return open_model (path, error);

  BuildLock *build = build_lock_take (instance_id);

  /* Two spellings of one file (a relative path, a symbolic link) are one
   * model; a path that does not resolve is compared as written, and its
   * load then fails with the engine's message. */
  g_autofree char *canonical = ssfpn_model_path_is_default (path)
      ? g_strdup (SSFPN_DEFAULT_MODEL_NAME) : resolved_path (path);
  SsfpnModel *model = NULL;
  g_mutex_lock (&cache_lock);
  CacheEntry *entry = cache_entries != NULL
      ? g_hash_table_lookup (cache_entries, instance_id) : NULL;
  if (entry != NULL) {
    if (g_strcmp0 (entry->path, canonical) != 0)
      g_set_error (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT,
                   "model-instance-id \"%s\" is already in use with model "
                   "\"%s\"; this element asks for \"%s\". Elements sharing an "
                   "id must use the same model file", instance_id,
                   entry->path, ssfpn_model_path_is_default (path)
                       ? SSFPN_DEFAULT_MODEL_NAME : path);
    else {
      entry->users++;
      model = ssfpn_model_ref (entry->model);
    }
    g_mutex_unlock (&cache_lock);
    goto out;
  }
  g_mutex_unlock (&cache_lock);

  /* No entry can appear meanwhile: adding one takes the build lock. */
  model = open_model (path, error);
  if (model == NULL)
    goto out;
  entry = g_new0 (CacheEntry, 1);
  entry->path = g_steal_pointer (&canonical);
  entry->model = ssfpn_model_ref (model);
  entry->users = 1;
  g_mutex_lock (&cache_lock);
  if (cache_entries == NULL)
    cache_entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           cache_entry_free);
  g_hash_table_insert (cache_entries, g_strdup (instance_id), entry);
  g_mutex_unlock (&cache_lock);

out:
  build_lock_give (instance_id, build);
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

/* ---- contexts ------------------------------------------------------------ */

struct _SsfpnSharedContext {
  char *instance_id;            /* NULL: the holder's alone, not listed */
  /* What the holders asked for, resolved where the engine's default is
   * known, so that "input-size=0" and the model's own size match. */
  const SsfpnModel *model;
  char *device;
  SsfpnPrecision precision;
  SsfpnAugment augment;
  int batch, height, width, threads;

  SsfpnContext *context;
  GMutex run_lock;              /* held around every use of context */
  int users;                    /* cache_lock */
  gint64 warmup_run_us;
};

static GList *shared_contexts;  /* SsfpnSharedContext with an id; cache_lock */

static void
shared_context_free (SsfpnSharedContext *shared)
{
  ssfpn_context_free (shared->context);
  g_mutex_clear (&shared->run_lock);
  g_free (shared->instance_id);
  g_free (shared->device);
  g_free (shared);
}

static gboolean
shared_context_matches (const SsfpnSharedContext *shared,
                        const char *instance_id,
                        const SsfpnSharedContext *wanted)
{
  return g_str_equal (shared->instance_id, instance_id)
      && shared->model == wanted->model
      && g_str_equal (shared->device, wanted->device)
      && shared->precision == wanted->precision
      && shared->augment == wanted->augment
      && shared->batch == wanted->batch
      && shared->height == wanted->height
      && shared->width == wanted->width
      && shared->threads == wanted->threads;
}

/* Two detection runs on a blank batch: the first finishes the backend's
 * lazy setup, the second measures what a batch will cost, for the latency
 * query. */
static gboolean
warm_up (SsfpnSharedContext *shared, GError **error)
{
  SsfpnNmsOptions nms;
  ssfpn_nms_options_init (&nms);
  int height, width;
  ssfpn_context_input_size (shared->context, &height, &width);
  int batch = ssfpn_context_batch (shared->context);

  g_autofree guint8 *pixels = g_malloc0 ((gsize) 3 * width * height);
  g_autofree SsfpnFrame *frames = g_new0 (SsfpnFrame, batch);
  for (int i = 0; i < batch; i++) {
    frames[i].format = SSFPN_FRAME_RGB;
    frames[i].width = width;
    frames[i].height = height;
    frames[i].planes[0] = pixels;
    frames[i].strides[0] = 3 * width;
  }
  g_autofree SsfpnDetection *results =
      g_new (SsfpnDetection, (gsize) batch * nms.max_detections);
  g_autofree int *counts = g_new0 (int, batch);

  for (int run = 0; run < 2; run++) {
    gint64 start = g_get_monotonic_time ();
    if (!ssfpn_context_detect (shared->context, frames, batch, &nms, results,
                               nms.max_detections, counts, error))
      return FALSE;
    shared->warmup_run_us = g_get_monotonic_time () - start;
  }
  return TRUE;
}

static SsfpnSharedContext *
shared_context_new (const SsfpnSharedContext *wanted, SsfpnModel *model,
                    const SsfpnContextOptions *options, GError **error)
{
  SsfpnContext *context = ssfpn_context_new (model, options, error);
  if (context == NULL)
    return NULL;

  SsfpnSharedContext *shared = g_new0 (SsfpnSharedContext, 1);
  *shared = *wanted;
  shared->device = g_strdup (wanted->device);
  shared->instance_id = NULL;
  shared->context = context;
  g_mutex_init (&shared->run_lock);
  shared->users = 1;
  if (!warm_up (shared, error)) {
    shared_context_free (shared);
    return NULL;
  }
  return shared;
}

SsfpnSharedContext *
ssfpn_model_cache_acquire_context (const char *instance_id, SsfpnModel *model,
                                   const SsfpnContextOptions *options,
                                   GError **error)
{
  SsfpnSharedContext wanted = {
    .model = model,
    .device = (char *) (options->device != NULL ? options->device : "auto"),
    .precision = options->precision,
    .augment = options->augment,
    .batch = options->batch,
    .height = options->height,
    .width = options->width,
    .threads = options->threads,
  };
  if (wanted.height == 0 || wanted.width == 0)
    ssfpn_model_input_size (model, &wanted.height, &wanted.width);

  if (!has_instance_id (instance_id))
    return shared_context_new (&wanted, model, options, error);

  BuildLock *build = build_lock_take (instance_id);
  SsfpnSharedContext *shared = NULL;
  g_mutex_lock (&cache_lock);
  for (GList *l = shared_contexts; l != NULL; l = l->next) {
    if (shared_context_matches (l->data, instance_id, &wanted)) {
      shared = l->data;
      shared->users++;
      break;
    }
  }
  g_mutex_unlock (&cache_lock);
  if (shared != NULL)
    goto out;

  /* No twin can appear meanwhile: adding one takes the build lock. */
  shared = shared_context_new (&wanted, model, options, error);
  if (shared == NULL)
    goto out;
  shared->instance_id = g_strdup (instance_id);
  g_mutex_lock (&cache_lock);
  shared_contexts = g_list_prepend (shared_contexts, shared);
  g_mutex_unlock (&cache_lock);

out:
  build_lock_give (instance_id, build);
  return shared;
}

void
ssfpn_model_cache_release_context (SsfpnSharedContext *shared)
{
  if (shared == NULL)
    return;

  if (shared->instance_id != NULL) {
    g_mutex_lock (&cache_lock);
    gboolean last = --shared->users == 0;
    if (last)
      shared_contexts = g_list_remove (shared_contexts, shared);
    g_mutex_unlock (&cache_lock);
    if (!last)
      return;
  }
  shared_context_free (shared);
}

int
ssfpn_model_cache_contexts (const char *instance_id)
{
  if (!has_instance_id (instance_id))
    return 0;
  int count = 0;
  g_mutex_lock (&cache_lock);
  for (GList *l = shared_contexts; l != NULL; l = l->next)
    if (g_str_equal (((SsfpnSharedContext *) l->data)->instance_id,
                     instance_id))
      count++;
  g_mutex_unlock (&cache_lock);
  return count;
}

const SsfpnContext *
ssfpn_shared_context_peek (const SsfpnSharedContext *shared)
{
  return shared->context;
}

SsfpnContext *
ssfpn_shared_context_lock (SsfpnSharedContext *shared)
{
  g_mutex_lock (&shared->run_lock);
  return shared->context;
}

void
ssfpn_shared_context_unlock (SsfpnSharedContext *shared)
{
  g_mutex_unlock (&shared->run_lock);
}

gint64
ssfpn_shared_context_warmup_run_us (const SsfpnSharedContext *shared)
{
  return shared->warmup_run_us;
}
