/* ssfpndetect: models shared between elements by model-instance-id.
 *
 * Elements whose model-instance-id is the same hold one SsfpnModel: the file
 * is loaded once and its weights live once in memory. The cache is
 * process-wide and thread-safe; an entry lives while an element uses it.
 */
#ifndef SSFPN_MODEL_CACHE_H
#define SSFPN_MODEL_CACHE_H

#include <ssfpn/ssfpn.h>

G_BEGIN_DECLS

/* Returns a new reference to the model for @instance_id, opening @path when
 * no element holds that id yet. Fails when the id is held with another
 * model file. With a NULL or empty @instance_id the model is opened for the
 * caller alone. Release with ssfpn_model_cache_release. */
SsfpnModel *ssfpn_model_cache_acquire (const char *instance_id,
                                       const char *path, GError **error);

/* Gives back a model from ssfpn_model_cache_acquire with the same id. */
void ssfpn_model_cache_release (const char *instance_id, SsfpnModel *model);

/* How many holders the id has now (0 when none); for tests and logs. */
int ssfpn_model_cache_users (const char *instance_id);

G_END_DECLS

#endif /* SSFPN_MODEL_CACHE_H */
