/* The internals of SsfpnModel, shared by model.c, context.c and the CLI's
 * `info`. */
#ifndef SSFPN_MODEL_H
#define SSFPN_MODEL_H

#include "graph.h"
#include "safetensors.h"
#include "ssfpn/ssfpn.h"

G_BEGIN_DECLS

/* Multiply-adds of one of a layer's convolutions, as the PyTorch module
 * computes them, per output pixel of @tensor: with the tensor's size at a
 * given input size this gives the layer's FLOPs. */
typedef struct {
  int tensor;
  double macs_per_pixel;
} SsfpnLayerCost;

/* One configuration layer after parse_model, for `info` and messages. */
typedef struct {
  char *from;         /* as written, JSON */
  int repeats;
  char *module;
  char *args;         /* resolved, JSON */
  int output_tensor;  /* graph tensor holding the layer's output; -1 for Detect */
  int depth;          /* scale-axis length: 1, or n for Unsqueeze/Concat[2] */
  gint64 parameters;
  GArray *costs;      /* SsfpnLayerCost */
} SsfpnLayer;

struct _SsfpnModel {
  gint ref_count;
  char *path;
  SsfpnGraph *graph;
  GArray *layers;     /* SsfpnLayer */
  char **names;       /* nc class names, NULL-terminated */
  int imgsz[2];       /* height, width */
  gint64 parameters;
};

/* Builds the graph from an opened container: metadata, configuration,
 * weights. Implemented in graph_build.c. */
gboolean ssfpn_model_build (SsfpnModel *model, const SsfpnSafetensors *st,
                            GError **error);

G_END_DECLS

#endif /* SSFPN_MODEL_H */
