/* ssfpndetect: models and inference contexts shared by model-instance-id.
 *
 * Elements whose model-instance-id is the same hold one SsfpnModel: the file
 * is read and checked once (each context packs its own copy of the
 * weights for its backend). Those that also ask
 * for the same device, precision, augment, batch size and input size hold one
 * SsfpnContext too (its plan, buffers and, on a GPU, its stream); the
 * others get their own context on the shared model. A context is not
 * thread-safe, so a shared one is used only between
 * ssfpn_shared_context_lock and ssfpn_shared_context_unlock. The cache is
 * process-wide and thread-safe; an entry lives while an element uses it.
 */
#ifndef SSFPN_MODEL_CACHE_H
#define SSFPN_MODEL_CACHE_H

#include <ssfpn/ssfpn.h>

G_BEGIN_DECLS

/* Returns a new reference to the model for @instance_id, opening @path when
 * no element holds that id yet; a NULL or empty @path is the engine's
 * built-in default model. Fails when the id is held with another model
 * file. With a NULL or empty @instance_id the model is opened for the
 * caller alone. Release with ssfpn_model_cache_release. */
/* TRUE for the "model" values that select the engine's built-in default
 * model: NULL and empty. */
gboolean ssfpn_model_path_is_default (const char *path);

SsfpnModel *ssfpn_model_cache_acquire (const char *instance_id,
                                       const char *path, GError **error);

/* Gives back a model from ssfpn_model_cache_acquire with the same id. */
void ssfpn_model_cache_release (const char *instance_id, SsfpnModel *model);

/* How many holders the id's model has now (0 when none); for tests and
 * logs. */
int ssfpn_model_cache_users (const char *instance_id);

typedef struct _SsfpnSharedContext SsfpnSharedContext;

/* Returns the context for @model (from ssfpn_model_cache_acquire with the
 * same @instance_id) with @options, creating it, warming it up and timing
 * one detection run on a blank batch when no element holds the id with
 * these settings yet. With a NULL or empty @instance_id the context is the
 * caller's alone. Release with ssfpn_model_cache_release_context. */
SsfpnSharedContext *ssfpn_model_cache_acquire_context (const char *instance_id,
                                                       SsfpnModel *model,
                                                       const SsfpnContextOptions *options,
                                                       GError **error);

/* Gives back a context; the last holder frees it. */
void ssfpn_model_cache_release_context (SsfpnSharedContext *shared);

/* How many distinct contexts elements with @instance_id hold now (0 when
 * none); for tests and logs. */
int ssfpn_model_cache_contexts (const char *instance_id);

/* The context, for what never changes after creation (device, precision,
 * batch and input size). Running it needs the lock. */
const SsfpnContext *ssfpn_shared_context_peek (const SsfpnSharedContext *shared);

/* Waits until no other holder uses the context and returns it for running;
 * give it back with ssfpn_shared_context_unlock. */
SsfpnContext *ssfpn_shared_context_lock (SsfpnSharedContext *shared);
void ssfpn_shared_context_unlock (SsfpnSharedContext *shared);

/* Microseconds the timed blank run took at creation. */
gint64 ssfpn_shared_context_warmup_run_us (const SsfpnSharedContext *shared);

G_END_DECLS

#endif /* SSFPN_MODEL_CACHE_H */
