/* ssfpndetect: the detection structures kept across scaling transforms;
 * see ssfpn-params-keeper.h for why. */
#include "ssfpn-params-keeper.h"

#include <gst/video/video.h>

/* A region is told by id and type: ids are only unique among one element's
 * regions, and another element on the buffer may number its own from 1. */
typedef struct
{
  gint roi_id;
  GQuark roi_type;
  GstStructure *params;
} KeptParams;

typedef struct
{
  GstMeta meta;
  GArray *kept;                 /* KeptParams */
} SsfpnParamsKeeper;

static GType ssfpn_params_keeper_api_get_type (void);
static const GstMetaInfo *ssfpn_params_keeper_get_info (void);

static void
clear_kept (gpointer data)
{
  KeptParams *entry = data;
  gst_structure_free (entry->params);
}

static gboolean
keeper_init (GstMeta * meta, gpointer params, GstBuffer * buffer)
{
  SsfpnParamsKeeper *keeper = (SsfpnParamsKeeper *) meta;
  keeper->kept = g_array_new (FALSE, FALSE, sizeof (KeptParams));
  g_array_set_clear_func (keeper->kept, clear_kept);
  return TRUE;
}

static void
keeper_free (GstMeta * meta, GstBuffer * buffer)
{
  SsfpnParamsKeeper *keeper = (SsfpnParamsKeeper *) meta;
  g_array_unref (keeper->kept);
}

/* A new keeper, after every meta @buffer has now. */
static SsfpnParamsKeeper *
add_keeper (GstBuffer * buffer)
{
  return (SsfpnParamsKeeper *) gst_buffer_add_meta (buffer,
      ssfpn_params_keeper_get_info (), NULL);
}

static void
keep (SsfpnParamsKeeper * keeper, gint roi_id, GQuark roi_type,
    const GstStructure * params)
{
  KeptParams entry = { roi_id, roi_type, gst_structure_copy (params) };
  g_array_append_val (keeper->kept, entry);
}

/* Every transform (copy, region copy, scale, anything newer) carries the
 * structures: they are normalised to the frame, so scaling leaves them
 * right, and only regions whose id came along get one back. Each keeper
 * becomes its own keeper on @dest, at the same place among the metas. */
static gboolean
keeper_transform (GstBuffer * dest, GstMeta * meta, GstBuffer * buffer,
    GQuark type, gpointer data)
{
  SsfpnParamsKeeper *source = (SsfpnParamsKeeper *) meta;
  SsfpnParamsKeeper *target = add_keeper (dest);
  if (target == NULL)
    return FALSE;
  for (guint i = 0; i < source->kept->len; i++) {
    KeptParams *entry = &g_array_index (source->kept, KeptParams, i);
    keep (target, entry->roi_id, entry->roi_type, entry->params);
  }
  ssfpn_params_keeper_restore (dest);
  return TRUE;
}

static GType
ssfpn_params_keeper_api_get_type (void)
{
  static GType type = 0;
  /* No tags: elements that change the frame still copy it. */
  static const gchar *tags[] = { NULL };
  if (g_once_init_enter (&type)) {
    GType registered =
        gst_meta_api_type_register ("SsfpnParamsKeeperAPI", tags);
    g_once_init_leave (&type, registered);
  }
  return type;
}

static const GstMetaInfo *
ssfpn_params_keeper_get_info (void)
{
  static const GstMetaInfo *info = NULL;
  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    const GstMetaInfo *registered =
        gst_meta_register (ssfpn_params_keeper_api_get_type (),
        "SsfpnParamsKeeper", sizeof (SsfpnParamsKeeper), keeper_init,
        keeper_free, keeper_transform);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) registered);
  }
  return info;
}

void
ssfpn_params_keeper_attach (GstBuffer * buffer,
    GstVideoRegionOfInterestMeta ** rois, guint n_rois)
{
  if (n_rois == 0)
    return;
  SsfpnParamsKeeper *keeper = add_keeper (buffer);
  if (keeper == NULL)
    return;
  for (guint i = 0; i < n_rois; i++) {
    GstStructure *params =
        gst_video_region_of_interest_meta_get_param (rois[i], "detection");
    if (params != NULL)
      keep (keeper, rois[i]->id, rois[i]->roi_type, params);
  }
}

/* The kept structure for the region @roi_id of @roi_type, or NULL. */
static const GstStructure *
kept_params (GstBuffer * buffer, gint roi_id, GQuark roi_type)
{
  gpointer state = NULL;
  GstMeta *meta;
  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              ssfpn_params_keeper_api_get_type ())) != NULL) {
    SsfpnParamsKeeper *keeper = (SsfpnParamsKeeper *) meta;
    for (guint i = 0; i < keeper->kept->len; i++) {
      KeptParams *entry = &g_array_index (keeper->kept, KeptParams, i);
      if (entry->roi_id == roi_id && entry->roi_type == roi_type)
        return entry->params;
    }
  }
  return NULL;
}

void
ssfpn_params_keeper_restore (GstBuffer * buffer)
{
  gpointer state = NULL;
  GstMeta *meta;
  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    const GstStructure *params = kept_params (buffer, roi->id,
        roi->roi_type);
    if (params != NULL && gst_video_region_of_interest_meta_get_param (roi,
            gst_structure_get_name (params)) == NULL)
      gst_video_region_of_interest_meta_add_param (roi,
          gst_structure_copy (params));
  }
}
