/* The model configuration (metadata ssfpn.config) as YOLOv5 v6.0's
 * parse_model resolves it: depth and width multiples applied, `from`
 * made absolute, string arguments evaluated, channels worked out and every
 * layer checked against what its module accepts. No weights here. */
#ifndef SSFPN_CONFIG_H
#define SSFPN_CONFIG_H

#include <glib.h>

#include "graph.h"

G_BEGIN_DECLS

typedef enum {
  SSFPN_MODULE_CONV,
  SSFPN_MODULE_FOCUS,
  SSFPN_MODULE_BOTTLENECK,
  SSFPN_MODULE_C3,
  SSFPN_MODULE_BOTTLENECK_CSP,
  SSFPN_MODULE_SPP,
  SSFPN_MODULE_SPPF,
  SSFPN_MODULE_UPSAMPLE,
  SSFPN_MODULE_CONCAT,
  SSFPN_MODULE_SPACE_TO_DEPTH,
  SSFPN_MODULE_CONTRACT,
  SSFPN_MODULE_DETECT,
  SSFPN_MODULE_SSFPN,
  SSFPN_MODULE_UNSQUEEZE,
  SSFPN_MODULE_CONV3D,
} SsfpnModuleKind;

/* The network input, as a `from` entry. */
#define SSFPN_FROM_INPUT (-1)

typedef struct {
  int index;
  SsfpnModuleKind kind;
  char *module;      /* as written: "Conv", "nn.Upsample" */
  char *from_text;   /* as written: "-1", "[-1, 6]" */
  char *args_text;   /* resolved as parse_model prints them, JSON */
  int n_from;
  int *from;         /* absolute layer indices, or SSFPN_FROM_INPUT */
  int repeats;       /* after depth_multiple: copies, or Bottlenecks of C3/BottleneckCSP */
  int c1;            /* input channels (per scale slice; summed for ssFPN) */
  int c2;            /* output channels (per scale slice for 5-D outputs) */
  int depth;         /* 0: 4-D output; else the length of its scale axis */

  /* Resolved arguments; each kind uses its own. */
  int kernel, stride, pad, groups; /* Conv, Focus; groups also Bottleneck, C3, BottleneckCSP */
  gboolean act;      /* Conv, Focus: FALSE = no activation */
  gboolean shortcut; /* Bottleneck, C3, BottleneckCSP */
  int hidden;        /* c_ of Bottleneck, C3, BottleneckCSP, SPP, SPPF */
  int n_pools;       /* SPP: kernels in pools; SPPF: 1 (applied 3 times) */
  int *pools;
  int factor;        /* nn.Upsample scale, Contract gain, space_to_depth 2 */
  int dim;           /* Concat: 1 or 2 */
} SsfpnLayerConfig;

typedef struct {
  int nc;            /* classes */
  int na;            /* anchors per Detect level */
  int nl;            /* Detect levels */
  double depth_multiple, width_multiple;
  SsfpnActivation act; /* of every Conv */
  float act_alpha;
  int n_layers;
  SsfpnLayerConfig *layers; /* the last one is Detect */
} SsfpnConfig;

/* Parses and resolves @json (the value of ssfpn.config). @source names the
 * file in messages. Errors are SSFPN_ERROR_CONFIG. */
SsfpnConfig *ssfpn_config_parse (const char *json, const char *source,
                                 GError **error);
void ssfpn_config_free (SsfpnConfig *config);

/* YOLOv5's make_divisible(x, 8) and Python's round(), exposed for tests. */
int ssfpn_config_make_divisible (double x, int divisor);
double ssfpn_config_python_round (double x);

G_END_DECLS

#endif /* SSFPN_CONFIG_H */
