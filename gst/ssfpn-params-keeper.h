/* A buffer meta that keeps the "detection" structure of each region of
 * interest meta ssfpndetect attached, and puts it back on copies of those
 * regions that lost it.
 *
 * GStreamer 1.22's region-of-interest meta keeps its params only when a
 * buffer is copied: its scale transform, which videoscale and videoconvert
 * (one element, videoconvertscale) apply, carries the box, label and id but
 * drops the params. This meta has no tags, so those elements copy it, and
 * its copy runs after the regions' own transforms (metas are transformed in
 * the order they were added): it finds the new regions by id and gives each
 * its structure again.
 */
#ifndef SSFPN_PARAMS_KEEPER_H
#define SSFPN_PARAMS_KEEPER_H

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

/* Adds a keeper to the writable @buffer, after its metas, holding a copy
 * of the "detection" param of each of the @n_rois region metas (ones
 * without it are skipped). Call it once the regions are attached: a keeper
 * only helps regions added before it. */
void ssfpn_params_keeper_attach (GstBuffer *buffer,
                                 GstVideoRegionOfInterestMeta **rois,
                                 guint n_rois);

/* Puts each structure of the buffer's keepers back on the region meta of
 * its id on the writable @buffer, where that region has no param of its
 * name. */
void ssfpn_params_keeper_restore (GstBuffer *buffer);

G_END_DECLS

#endif /* SSFPN_PARAMS_KEEPER_H */
