/* Every graph op on the CPU backend against the naive reference (ref_ops.c)
 * on random shapes: odd sizes, channel counts off the SIMD blocks, groups,
 * strides, every activation and post-op, channel-slice inputs and outputs
 * inside concat buffers, batch 1 and 3; each graph in the backend's own
 * layout choice and in forced NCHW. Every tensor the backend holds is
 * compared, not only the network output.
 *
 *   test-ops            the correctness suite
 *   test-ops --perf     per-op timings (not run by meson)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu/cpu_backend.h"
#include "graph.h"
#include "model.h"
#include "ref_ops.h"

#define TOLERANCE 1e-4

static int n_passed, n_failed;

static void
record (gboolean ok, const char *what)
{
  if (ok) {
    n_passed++;
  } else {
    n_failed++;
    printf ("FAIL: %s\n", what);
  }
}

static void
record_owned (gboolean ok, char *what)
{
  record (ok, what);
  g_free (what);
}

static float *
random_floats (GRand *rng, gsize n, double scale)
{
  float *v = g_new (float, n);

  for (gsize i = 0; i < n; i++)
    v[i] = (float) (g_rand_double_range (rng, -1.0, 1.0) * scale);
  return v;
}

static int
pick (GRand *rng, const int *choices, int n)
{
  return choices[g_rand_int_range (rng, 0, n)];
}

/* ---- building graphs ---------------------------------------------------- */

typedef struct {
  int kernel, stride, pad, groups;
  SsfpnActivation act;
  float act_alpha, out_scale;
  gboolean shift, accumulate;
  int residual;
} ConvSpec;

static ConvSpec
plain_conv (int kernel, int stride, int pad)
{
  ConvSpec s = { kernel, stride, pad, 1, SSFPN_ACT_NONE, 0.0f, 1.0f, FALSE,
                 FALSE, -1 };
  return s;
}

/* Adds a CONV2D reading channels [in_offset, in_offset + in_channels) of
 * @input and writing all of @output, with random weights. */
static void
add_conv (SsfpnGraph *graph, GRand *rng, int input, int in_offset,
          int in_channels, int output, const ConvSpec *spec)
{
  SsfpnOp op = { 0 };
  SsfpnConv2dParams *c = &op.p.conv;
  int out_channels = ssfpn_graph_tensor (graph, output)->channels;
  int fan_in = in_channels / spec->groups * spec->kernel * spec->kernel;

  op.type = SSFPN_OP_CONV2D;
  op.input = input;
  op.output = output;
  op.layer = (int) graph->ops->len;
  c->in_offset = in_offset;
  c->in_channels = in_channels;
  c->out_channels = out_channels;
  c->kernel = spec->kernel;
  c->stride = spec->stride;
  c->pad = spec->pad;
  c->groups = spec->groups;
  c->weight = random_floats (rng, (gsize) out_channels * fan_in,
                             2.0 / sqrt (fan_in));
  c->bias = random_floats (rng, out_channels, 0.5);
  c->act = spec->act;
  c->act_alpha = spec->act_alpha;
  c->out_scale = spec->out_scale;
  c->out_shift = spec->shift ? random_floats (rng, out_channels, 1.0) : NULL;
  c->residual = spec->residual;
  c->accumulate = spec->accumulate;
  ssfpn_graph_add_op (graph, &op);
}

static void
add_simple_op (SsfpnGraph *graph, SsfpnOpType type, int input, int output,
               int a, int b, int c)
{
  SsfpnOp op = { 0 };

  op.type = type;
  op.input = input;
  op.output = output;
  op.layer = (int) graph->ops->len;
  switch (type) {
    case SSFPN_OP_UPSAMPLE_NEAREST:
      op.p.upsample.factor = a;
      break;
    case SSFPN_OP_MAXPOOL:
      op.p.maxpool.kernel = a;
      op.p.maxpool.stride = b;
      op.p.maxpool.pad = c;
      break;
    case SSFPN_OP_SPACE_TO_DEPTH:
    case SSFPN_OP_CONTRACT:
      op.p.reorder.gain = a;
      break;
    default:
      break;
  }
  ssfpn_graph_add_op (graph, &op);
}

/* A tensor of @channels that is, with probability one half, a view at a
 * random offset inside a larger root (a concat buffer). */
static int
maybe_view (SsfpnGraph *graph, GRand *rng, int channels, int *root_out,
            int *offset_out)
{
  static const int offsets[] = { 0, 8, 16, 32, 3, 5 };
  int tensor = ssfpn_graph_add_tensor (graph, channels);
  int root = tensor, offset = 0;

  if (g_rand_boolean (rng)) {
    offset = pick (rng, offsets, G_N_ELEMENTS (offsets));
    root = ssfpn_graph_add_tensor (graph, offset + channels
                                          + g_rand_int_range (rng, 0, 2) * 16);
    ssfpn_graph_set_view (graph, tensor, root, offset);
  }
  if (root_out)
    *root_out = root;
  if (offset_out)
    *offset_out = offset;
  return tensor;
}

/* Tensor 0 (3 channels) through a 1x1 conv into a source tensor of
 * @channels, which may sit inside a wider root (so readers use in_offset). */
static int
add_source (SsfpnGraph *graph, GRand *rng, int channels)
{
  int src = maybe_view (graph, rng, channels, NULL, NULL);
  ConvSpec stem = plain_conv (1, 1, 0);

  add_conv (graph, rng, 0, 0, 3, src, &stem);
  return src;
}

/* ---- comparing ---------------------------------------------------------- */

static gboolean
close_enough (const float *got, const float *want, gsize n, double *max_err)
{
  double peak = 0.0, err = 0.0;

  for (gsize i = 0; i < n; i++)
    peak = MAX (peak, fabs (want[i]));
  for (gsize i = 0; i < n; i++) {
    double e = fabs ((double) got[i] - want[i]);

    if (!(e <= err)) /* also catches NaN */
      err = isnan (e) ? INFINITY : e;
  }
  *max_err = err;
  return err <= TOLERANCE * (1.0 + peak);
}

/* Runs @graph through the CPU backend in one layout mode and compares every
 * tensor and the output with the reference run. */
static gboolean
compare_layout (const SsfpnGraph *graph, const char *name, const char *layout,
                int batch, int height, int width, const float *input,
                const RefTensors *ref, const float *ref_output, int rows)
{
  SsfpnPlanOptions options = { batch, height, width, SSFPN_PRECISION_FP32, 0,
                               0 };
  SsfpnPlan *plan;
  GError *error = NULL;
  int columns = graph->nc + 5;
  float *output = g_new0 (float, (gsize) MAX (batch * rows * columns, 1));
  gboolean ok = TRUE;

  g_setenv ("SSFPN_CPU_LAYOUT", layout, TRUE);
  plan = ssfpn_cpu_backend.plan_new (graph, &options, &error);
  if (plan == NULL || !ssfpn_cpu_backend.plan_run (plan, input, output,
                                                   &error)) {
    printf ("  %s [%s]: %s\n", name, layout, error->message);
    g_clear_error (&error);
    ssfpn_cpu_backend.plan_free (plan);
    g_free (output);
    return FALSE;
  }

  for (int t = 0; t < (int) graph->tensors->len && ok; t++) {
    gsize n = (gsize) ssfpn_graph_tensor (graph, t)->channels
              * ref->heights[t] * ref->widths[t];
    float *got = g_new (float, MAX (n, 1));
    float *want = g_new (float, MAX (n, 1));

    for (int item = 0; item < batch && ok; item++) {
      double err;

      if (!ssfpn_cpu_plan_read_tensor (plan, t, item, got))
        break; /* nothing writes it */
      ref_read_tensor (graph, ref, t, item, want);
      if (!close_enough (got, want, n, &err)) {
        printf ("  %s [%s]: tensor %d item %d (block %d): max error %g\n",
                name, layout, t, item, ssfpn_cpu_plan_tensor_block (plan, t),
                err);
        ok = FALSE;
      }
    }
    g_free (got);
    g_free (want);
  }
  if (ok && rows > 0) {
    double err;

    if (!close_enough (output, ref_output, (gsize) batch * rows * columns,
                       &err)) {
      printf ("  %s [%s]: output: max error %g\n", name, layout, err);
      ok = FALSE;
    }
  }
  ssfpn_cpu_backend.plan_free (plan);
  g_free (output);
  return ok;
}

static void
check_graph (SsfpnGraph *graph, GRand *rng, const char *name, int batch,
             int height, int width)
{
  gsize n_input = (gsize) batch * ssfpn_graph_tensor (graph, 0)->channels
                  * height * width;
  float *input = random_floats (rng, n_input, 1.0);
  int rows = graph->nl > 0 ? ssfpn_graph_output_rows (graph, height, width,
                                                      NULL) : 0;
  float *ref_output = g_new0 (float, (gsize) MAX (batch * rows * (graph->nc + 5), 1));
  GError *error = NULL;
  RefTensors *ref = ref_run_graph (graph, batch, height, width, input,
                                   ref_output, &error);
  char *what;
  gboolean ok;

  if (ref == NULL) {
    what = g_strdup_printf ("%s: reference run: %s", name, error->message);
    record (FALSE, what);
    g_free (what);
    g_clear_error (&error);
    g_free (input);
    g_free (ref_output);
    return;
  }
  ok = compare_layout (graph, name, "auto", batch, height, width, input, ref,
                       ref_output, rows);
  ok = compare_layout (graph, name, "nchw", batch, height, width, input, ref,
                       ref_output, rows) && ok;
  g_unsetenv ("SSFPN_CPU_LAYOUT");
  what = g_strdup_printf ("%s (batch %d, %dx%d)", name, batch, height, width);
  record (ok, what);
  g_free (what);
  ref_tensors_free (ref);
  g_free (input);
  g_free (ref_output);
}

static SsfpnGraph *
new_graph (void)
{
  SsfpnGraph *graph = ssfpn_graph_new ();

  ssfpn_graph_add_tensor (graph, 3);
  return graph;
}

/* ---- cases -------------------------------------------------------------- */

static void
test_conv (GRand *rng, int index)
{
  static const int kernels[] = { 1, 3, 5, 6 };
  static const int channel_choices[] = { 16, 32, 8, 3, 7, 13, 24, 40 };
  SsfpnGraph *graph = new_graph ();
  ConvSpec spec = plain_conv (pick (rng, kernels, 4), 1, 0);
  int cin = pick (rng, channel_choices, G_N_ELEMENTS (channel_choices));
  int cout = pick (rng, channel_choices, G_N_ELEMENTS (channel_choices));
  int batch = g_rand_boolean (rng) ? 1 : 3;
  int height = g_rand_int_range (rng, 5, 22), width = g_rand_int_range (rng, 5, 22);
  int extra = g_rand_boolean (rng) ? 0 : g_rand_int_range (rng, 1, 20);
  int in_offset = g_rand_boolean (rng) ? 0 : pick (rng, (const int[]) { 16, 5 }, 2);
  int src, out, out_root, out_offset;
  char *name;

  spec.stride = g_rand_int_range (rng, 1, 3);
  spec.pad = spec.kernel == 6 ? 2 : g_rand_boolean (rng) ? spec.kernel / 2 : 0;
  switch (g_rand_int_range (rng, 0, 5)) {
    case 0: /* grouped */
      spec.groups = pick (rng, (const int[]) { 2, 4 }, 2);
      cin = spec.groups * g_rand_int_range (rng, 1, 6);
      cout = spec.groups * g_rand_int_range (rng, 1, 6);
      break;
    case 1: /* depthwise */
      spec.groups = cin;
      cout = cin;
      break;
    default:
      break;
  }
  spec.act = (SsfpnActivation) g_rand_int_range (rng, 0, SSFPN_ACT_SIGMOID + 1);
  spec.act_alpha = spec.act == SSFPN_ACT_LEAKY_RELU
                   ? pick (rng, (const int[]) { 10, 100 }, 2) == 10 ? 0.1f : 0.01f
                   : 0.0f;
  spec.out_scale = g_rand_boolean (rng) ? 1.0f : 1.0f / 3.0f;
  spec.shift = g_rand_int_range (rng, 0, 3) == 0;

  src = add_source (graph, rng, in_offset + cin + extra);
  out = maybe_view (graph, rng, cout, &out_root, &out_offset);
  {
    /* The concat neighbours on both sides, written first: the conv must
     * not touch them. */
    int tail = ssfpn_graph_tensor (graph, out_root)->channels - out_offset
               - cout;
    ConvSpec n = plain_conv (spec.kernel, spec.stride, spec.pad);

    if (out_offset > 0) {
      int before = ssfpn_graph_add_tensor (graph, out_offset);

      ssfpn_graph_set_view (graph, before, out_root, 0);
      add_conv (graph, rng, src, 0, cin, before, &n);
    }
    if (tail > 0) {
      /* Through a copy, which leaves the layout free, so a conv writing
       * padding lanes of a block into this slice would show. */
      int after = ssfpn_graph_add_tensor (graph, tail);
      int staged = ssfpn_graph_add_tensor (graph, tail);

      ssfpn_graph_set_view (graph, after, out_root, out_offset + cout);
      add_conv (graph, rng, src, 0, cin, staged, &n);
      add_simple_op (graph, SSFPN_OP_COPY, staged, after, 0, 0, 0);
    }
  }
  if (g_rand_int_range (rng, 0, 3) == 0) {
    ConvSpec r = plain_conv (spec.kernel, spec.stride, spec.pad);

    spec.residual = maybe_view (graph, rng, cout, NULL, NULL);
    add_conv (graph, rng, src, in_offset, cin, spec.residual, &r);
  }
  if (g_rand_int_range (rng, 0, 3) == 0) {
    ConvSpec first = spec;

    first.residual = -1;
    first.accumulate = FALSE;
    add_conv (graph, rng, src, in_offset, cin, out, &first);
    spec.accumulate = TRUE;
  }
  add_conv (graph, rng, src, in_offset, cin, out, &spec);

  name = g_strdup_printf ("conv %d: %d->%d k%d s%d p%d g%d act %d scale %g%s%s%s"
                          " in_offset %d out_offset %d", index, cin, cout,
                          spec.kernel, spec.stride, spec.pad, spec.groups,
                          spec.act, spec.out_scale, spec.shift ? " shift" : "",
                          spec.residual >= 0 ? " residual" : "",
                          spec.accumulate ? " accumulate" : "", in_offset,
                          out_offset);
  check_graph (graph, rng, name, batch, height, width);
  g_free (name);
  ssfpn_graph_free (graph);
}

static void
test_maxpool (GRand *rng, int index)
{
  static const int windows[][3] = {
    { 5, 1, 2 }, { 9, 1, 4 }, { 13, 1, 6 }, { 3, 1, 1 }, { 2, 2, 0 },
    { 3, 2, 1 }, { 1, 1, 0 }, { 5, 2, 1 },
  };
  SsfpnGraph *graph = new_graph ();
  const int *w = windows[g_rand_int_range (rng, 0, G_N_ELEMENTS (windows))];
  int channels = g_rand_int_range (rng, 1, 40);
  int src = add_source (graph, rng, channels);
  int out = maybe_view (graph, rng, channels, NULL, NULL);
  char *name = g_strdup_printf ("maxpool %d: %d ch k%d s%d p%d", index,
                                channels, w[0], w[1], w[2]);

  add_simple_op (graph, SSFPN_OP_MAXPOOL, src, out, w[0], w[1], w[2]);
  check_graph (graph, rng, name, g_rand_boolean (rng) ? 1 : 3,
               g_rand_int_range (rng, 3, 20), g_rand_int_range (rng, 3, 20));
  g_free (name);
  ssfpn_graph_free (graph);
}

/* YOLOv5's SPPF: cv1 into slice 0 of a concat, three chained pools into the
 * next slices, cv2 over the whole concat. */
static void
test_sppf (GRand *rng, int index)
{
  SsfpnGraph *graph = new_graph ();
  int c = pick (rng, (const int[]) { 16, 12, 32 }, 3);
  int src = add_source (graph, rng, 2 * c);
  int cat = ssfpn_graph_add_tensor (graph, 4 * c);
  int slices[4], out = ssfpn_graph_add_tensor (graph, 2 * c);
  ConvSpec cv = plain_conv (1, 1, 0);
  char *name = g_strdup_printf ("SPPF %d: %d ch", index, c);

  cv.act = SSFPN_ACT_SILU;
  for (int i = 0; i < 4; i++) {
    slices[i] = ssfpn_graph_add_tensor (graph, c);
    ssfpn_graph_set_view (graph, slices[i], cat, i * c);
  }
  add_conv (graph, rng, src, 0, 2 * c, slices[0], &cv);
  for (int i = 1; i < 4; i++)
    add_simple_op (graph, SSFPN_OP_MAXPOOL, slices[i - 1], slices[i], 5, 1, 2);
  add_conv (graph, rng, cat, 0, 4 * c, out, &cv);
  check_graph (graph, rng, name, 1, g_rand_int_range (rng, 4, 14),
               g_rand_int_range (rng, 4, 14));
  g_free (name);
  ssfpn_graph_free (graph);
}

static void
test_upsample (GRand *rng, int index)
{
  SsfpnGraph *graph = new_graph ();
  /* 41, 47, 55 and 61 are the factors up to 64 where PyTorch's float index
   * differs from y / factor (output 41 of x41 reads input 0). */
  static const int large[] = { 41, 47, 55, 61 };
  gboolean is_large = index % 4 == 3;
  int factor = is_large ? large[g_rand_int_range (rng, 0, 4)]
                        : g_rand_int_range (rng, 1, 5);
  int channels = g_rand_int_range (rng, 1, 40);
  int src = add_source (graph, rng, channels);
  int out = maybe_view (graph, rng, channels, NULL, NULL);
  char *name = g_strdup_printf ("upsample %d: %d ch x%d", index, channels,
                                factor);

  add_simple_op (graph, SSFPN_OP_UPSAMPLE_NEAREST, src, out, factor, 0, 0);
  int size_limit = is_large ? 4 : 12;
  check_graph (graph, rng, name, g_rand_boolean (rng) ? 1 : 3,
               g_rand_int_range (rng, 1, size_limit),
               g_rand_int_range (rng, 1, size_limit));
  g_free (name);
  ssfpn_graph_free (graph);
}

static void
test_reorder (GRand *rng, int index, SsfpnOpType type)
{
  SsfpnGraph *graph = new_graph ();
  int gain = type == SSFPN_OP_CONTRACT ? g_rand_int_range (rng, 2, 4) : 2;
  gboolean from_input = g_rand_boolean (rng); /* Focus reads the image */
  int channels = from_input ? 3 : g_rand_int_range (rng, 1, 20);
  int src = from_input ? 0 : add_source (graph, rng, channels);
  int out = maybe_view (graph, rng, gain * gain * channels, NULL, NULL);
  char *name = g_strdup_printf ("%s %d: %d ch gain %d%s",
                                type == SSFPN_OP_CONTRACT ? "contract"
                                : "space-to-depth", index, channels, gain,
                                from_input ? " from the input" : "");
  ConvSpec cv = plain_conv (3, 1, 1);

  add_simple_op (graph, type, src, out, gain, 0, 0);
  /* Focus's conv after the reorder, reading it through the backend's
   * layout. */
  cv.act = SSFPN_ACT_SILU;
  add_conv (graph, rng, out, 0, gain * gain * channels,
            ssfpn_graph_add_tensor (graph, 16), &cv);
  check_graph (graph, rng, name, g_rand_boolean (rng) ? 1 : 3,
               gain * g_rand_int_range (rng, 1, 9),
               gain * g_rand_int_range (rng, 1, 9));
  g_free (name);
  ssfpn_graph_free (graph);
}

static void
test_copy (GRand *rng, int index)
{
  SsfpnGraph *graph = new_graph ();
  int channels = g_rand_int_range (rng, 1, 40);
  int src = add_source (graph, rng, channels);
  int out = maybe_view (graph, rng, channels, NULL, NULL);
  char *name = g_strdup_printf ("copy %d: %d ch", index, channels);

  add_simple_op (graph, SSFPN_OP_COPY, src, out, 0, 0, 0);
  check_graph (graph, rng, name, g_rand_boolean (rng) ? 1 : 3,
               g_rand_int_range (rng, 1, 15), g_rand_int_range (rng, 1, 15));
  g_free (name);
  ssfpn_graph_free (graph);
}

/* 1 to 3 Detect levels at strides 1, 2, 4, each fed by a sigmoid 1x1 conv. */
static void
test_detect (GRand *rng, int index)
{
  SsfpnGraph *graph = new_graph ();
  int nl = g_rand_int_range (rng, 1, 4);
  int na = g_rand_int_range (rng, 1, 4), nc = g_rand_int_range (rng, 1, 8);
  int height = 4 * g_rand_int_range (rng, 1, 5);
  int width = 4 * g_rand_int_range (rng, 1, 5);
  char *name = g_strdup_printf ("detect %d: %d levels, %d anchors, %d classes",
                                index, nl, na, nc);

  graph->nl = nl;
  graph->na = na;
  graph->nc = nc;
  graph->strides = g_new (int, nl);
  for (int l = 0; l < nl; l++) {
    int stride = 1 << l;
    int feature = ssfpn_graph_add_tensor (graph, g_rand_int_range (rng, 4, 20));
    int head = ssfpn_graph_add_tensor (graph, na * (nc + 5));
    ConvSpec down = plain_conv (stride, stride, 0);
    ConvSpec sigmoid = plain_conv (1, 1, 0);
    SsfpnOp op = { 0 };

    graph->strides[l] = stride;
    graph->max_stride = stride;
    sigmoid.act = SSFPN_ACT_SIGMOID;
    add_conv (graph, rng, 0, 0, 3, feature, &down);
    add_conv (graph, rng, feature, 0,
              ssfpn_graph_tensor (graph, feature)->channels, head, &sigmoid);
    op.type = SSFPN_OP_DETECT;
    op.input = head;
    op.output = -1;
    op.layer = (int) graph->ops->len;
    op.p.detect.level = l;
    op.p.detect.stride = stride;
    op.p.detect.na = na;
    op.p.detect.nc = nc;
    op.p.detect.anchors = g_new (float, 2 * na);
    for (int a = 0; a < 2 * na; a++)
      op.p.detect.anchors[a] = (float) g_rand_double_range (rng, 2.0, 60.0);
    ssfpn_graph_add_op (graph, &op);
  }
  check_graph (graph, rng, name, g_rand_boolean (rng) ? 1 : 3, height, width);
  g_free (name);
  ssfpn_graph_free (graph);
}

/* Official-form ssFPN's fused average: three convolutions over overlapping
 * channel ranges of one concat, LeakyReLU(0.01) and 1/3 each, the second
 * and third accumulating into the first's output. */
static void
test_conv3d_average (GRand *rng, int index)
{
  SsfpnGraph *graph = new_graph ();
  int c = pick (rng, (const int[]) { 16, 8, 12 }, 3), c2 = 16;
  int stack = add_source (graph, rng, 3 * c);
  int out = ssfpn_graph_add_tensor (graph, c2);
  const int ranges[3][2] = { { 0, 2 }, { 0, 3 }, { 1, 3 } };
  char *name = g_strdup_printf ("Conv3D average %d: %d ch", index, c);

  for (int d = 0; d < 3; d++) {
    ConvSpec spec = plain_conv (3, 1, 1);

    spec.act = SSFPN_ACT_LEAKY_RELU;
    spec.act_alpha = 0.01f;
    spec.out_scale = 1.0f / 3.0f;
    spec.accumulate = d > 0;
    add_conv (graph, rng, stack, ranges[d][0] * c,
              (ranges[d][1] - ranges[d][0]) * c, out, &spec);
  }
  check_graph (graph, rng, name, g_rand_boolean (rng) ? 1 : 3,
               g_rand_int_range (rng, 4, 16), g_rand_int_range (rng, 4, 16));
  g_free (name);
  ssfpn_graph_free (graph);
}

static void
test_errors (void)
{
  SsfpnGraph *graph = new_graph ();
  SsfpnPlanOptions options = { 1, 8, 8, SSFPN_PRECISION_FP16, 0, 1 };
  GRand *rng = g_rand_new_with_seed (1);
  GError *error = NULL;
  SsfpnPlan *plan;
  int out = ssfpn_graph_add_tensor (graph, 3);

  add_simple_op (graph, SSFPN_OP_MAXPOOL, 0, out, 3, 1, 2);

  plan = ssfpn_cpu_backend.plan_new (graph, &options, &error);
  record (plan == NULL && g_error_matches (error, SSFPN_ERROR,
                                           SSFPN_ERROR_UNSUPPORTED),
          "fp16 is refused as unsupported");
  g_clear_error (&error);

  options.precision = SSFPN_PRECISION_FP32;
  plan = ssfpn_cpu_backend.plan_new (graph, &options, &error);
  record (plan == NULL && error != NULL
          && strstr (error->message, "layer 0") != NULL,
          "max-pool padding above half the kernel is refused, naming the layer");
  g_clear_error (&error);
  ssfpn_graph_free (graph);

  graph = new_graph ();
  out = ssfpn_graph_add_tensor (graph, 12);
  add_simple_op (graph, SSFPN_OP_SPACE_TO_DEPTH, 0, out, 2, 0, 0);
  options.height = 7;
  plan = ssfpn_cpu_backend.plan_new (graph, &options, &error);
  record (plan == NULL && error != NULL, "space-to-depth of an odd size is refused");
  g_clear_error (&error);
  options.height = 0;
  plan = ssfpn_cpu_backend.plan_new (graph, &options, &error);
  record (plan == NULL
          && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_ARGUMENT)
          && strstr (error->message, "input 0x") != NULL,
          "an input height of 0 is refused, naming the size");
  g_clear_error (&error);
  options.height = 7;
  ssfpn_graph_free (graph);

  /* 5 x 2^30 does not fit an int: refused as the layer's problem, not
   * wrapped into a bogus size. */
  graph = new_graph ();
  out = ssfpn_graph_add_tensor (graph, 3);
  add_simple_op (graph, SSFPN_OP_UPSAMPLE_NEAREST, 0, out, 1 << 30, 0, 0);
  options.height = options.width = 5;
  plan = ssfpn_cpu_backend.plan_new (graph, &options, &error);
  record (plan == NULL
          && g_error_matches (error, SSFPN_ERROR, SSFPN_ERROR_CONFIG)
          && strstr (error->message, "layer 0") != NULL,
          "an upsample whose size overflows is refused, naming the layer");
  g_clear_error (&error);
  ssfpn_graph_free (graph);
  g_rand_free (rng);
}

/* The built-in model in the automatic layout: oneDNN's JIT kernels for
 * every convolution, in blocked layouts. A layout the machine's kernels do
 * not take (16-channel blocks on an AVX2 machine) shows as reference
 * kernels, or as a relayout all the way down to NCHW. */
static void
test_kernels_chosen (void)
{
  SsfpnPlanOptions options = { 1, 320, 320, SSFPN_PRECISION_FP32, 0, 0 };
  GError *error = NULL;
  SsfpnModel *model = ssfpn_model_open_default (&error);
  SsfpnPlan *plan = NULL;

  record_owned (model != NULL, g_strdup_printf ("default model: %s",
                                                error ? error->message
                                                      : "opened"));
  if (model == NULL) {
    g_clear_error (&error);
    return;
  }
  g_unsetenv ("SSFPN_CPU_LAYOUT");
  plan = ssfpn_cpu_backend.plan_new (model->graph, &options, &error);
  record_owned (plan != NULL, g_strdup_printf ("default model plan: %s",
                                               error ? error->message
                                                     : "made"));
  if (plan != NULL) {
    int reference = ssfpn_cpu_plan_reference_convs (plan);
    int first_conv_out = ssfpn_graph_op (model->graph, 0)->output;
    int block = ssfpn_cpu_plan_tensor_block (plan, first_conv_out);

    record_owned (reference == 0, g_strdup_printf
                  ("default model: %d convolutions on reference kernels",
                   reference));
#if defined(__x86_64__)
    record_owned (block > 1, g_strdup_printf
                  ("default model: first convolution's output in blocks of %d",
                   block));
#endif
  }
  ssfpn_cpu_backend.plan_free (plan);
  ssfpn_model_unref (model);
  g_clear_error (&error);
}

/* ---- performance -------------------------------------------------------- */

static double
time_graph (SsfpnGraph *graph, int height, int width, int threads,
            int repeats)
{
  SsfpnPlanOptions options = { 1, height, width, SSFPN_PRECISION_FP32, 0,
                               threads };
  GError *error = NULL;
  SsfpnPlan *plan = ssfpn_cpu_backend.plan_new (graph, &options, &error);
  GRand *rng = g_rand_new_with_seed (7);
  float *input, *output;
  double best = INFINITY;

  if (plan == NULL) {
    printf ("plan: %s\n", error->message);
    g_error_free (error);
    g_rand_free (rng);
    return NAN;
  }
  input = random_floats (rng, (gsize) ssfpn_graph_tensor (graph, 0)->channels
                              * height * width, 1.0);
  output = g_new0 (float, 1 + (gsize) ssfpn_graph_output_rows (graph, height, width, NULL)
                              * (graph->nc + 5));
  for (int i = 0; i < repeats + 2; i++) {
    gint64 start = g_get_monotonic_time ();

    if (!ssfpn_cpu_backend.plan_run (plan, input, output, &error)) {
      printf ("run: %s\n", error->message);
      g_clear_error (&error);
      break;
    }
    if (i >= 2)
      best = MIN (best, (g_get_monotonic_time () - start) / 1000.0);
  }
  ssfpn_cpu_backend.plan_free (plan);
  g_free (input);
  g_free (output);
  g_rand_free (rng);
  return best;
}

/* Per-op timings: each op in a graph behind a 1x1 stem from the 3-channel
 * input (so its input has the layout a real network gives it), minus the
 * time of the stem alone. */
typedef struct {
  const char *label;
  SsfpnOpType type;
  int channels, out_channels, size;
  int a, b, c; /* conv: kernel, stride; pool: kernel, stride, pad; factor */
} PerfOp;

static SsfpnGraph *
stem_graph (GRand *rng, int channels, int *stem_out)
{
  SsfpnGraph *graph = new_graph ();
  ConvSpec stem = plain_conv (1, 1, 0);

  *stem_out = ssfpn_graph_add_tensor (graph, channels);
  add_conv (graph, rng, 0, 0, 3, *stem_out, &stem);
  return graph;
}

static double
time_op (GRand *rng, const PerfOp *p, int threads)
{
  int src, out;
  SsfpnGraph *graph = stem_graph (rng, p->channels, &src);
  SsfpnGraph *stem_only = stem_graph (rng, p->channels, &src);
  double with_op, without;

  out = ssfpn_graph_add_tensor (graph, p->out_channels);
  if (p->type == SSFPN_OP_CONV2D) {
    ConvSpec spec = plain_conv (p->a, p->b, p->a == 6 ? 2 : p->a / 2);

    spec.act = SSFPN_ACT_SILU;
    add_conv (graph, rng, src, 0, p->channels, out, &spec);
  } else {
    add_simple_op (graph, p->type, src, out, p->a, p->b, p->c);
  }
  with_op = time_graph (graph, p->size, p->size, threads, 30);
  without = time_graph (stem_only, p->size, p->size, threads, 30);
  ssfpn_graph_free (graph);
  ssfpn_graph_free (stem_only);
  return MAX (with_op - without, 0.0);
}

/* The convolutions of a yolov5n-like backbone at 320x320, chained, ending
 * in a Detect-sized 1x1: the whole-stack time to set against PyTorch. */
static double
time_stack (GRand *rng, int threads)
{
  static const int layers[][4] = { /* cout, k, s, pad */
    { 16, 6, 2, 2 }, { 32, 3, 2, 1 }, { 32, 1, 1, 0 }, { 32, 3, 1, 1 },
    { 64, 3, 2, 1 }, { 64, 1, 1, 0 }, { 64, 3, 1, 1 }, { 128, 3, 2, 1 },
    { 128, 1, 1, 0 }, { 128, 3, 1, 1 }, { 256, 3, 2, 1 }, { 256, 1, 1, 0 },
    { 255, 1, 1, 0 },
  };
  SsfpnGraph *graph = new_graph ();
  int prev = 0;
  double ms;

  for (guint i = 0; i < G_N_ELEMENTS (layers); i++) {
    ConvSpec spec = plain_conv (layers[i][1], layers[i][2], layers[i][3]);
    int out = ssfpn_graph_add_tensor (graph, layers[i][0]);

    spec.act = SSFPN_ACT_SILU;
    add_conv (graph, rng, prev, 0, ssfpn_graph_tensor (graph, prev)->channels,
              out, &spec);
    prev = out;
  }
  ms = time_graph (graph, 320, 320, threads, 30);
  ssfpn_graph_free (graph);
  return ms;
}

static int
run_perf (int threads)
{
  static const PerfOp ops[] = {
    { "conv 16->32 k3 s2 @160", SSFPN_OP_CONV2D, 16, 32, 160, 3, 2, 0 },
    { "conv 32->16 k1 @80", SSFPN_OP_CONV2D, 32, 16, 80, 1, 1, 0 },
    { "conv 16->16 k3 @80", SSFPN_OP_CONV2D, 16, 16, 80, 3, 1, 0 },
    { "conv 32->64 k3 s2 @80", SSFPN_OP_CONV2D, 32, 64, 80, 3, 2, 0 },
    { "conv 64->64 k1 @40", SSFPN_OP_CONV2D, 64, 64, 40, 1, 1, 0 },
    { "conv 32->32 k3 @40", SSFPN_OP_CONV2D, 32, 32, 40, 3, 1, 0 },
    { "conv 64->128 k3 s2 @40", SSFPN_OP_CONV2D, 64, 128, 40, 3, 2, 0 },
    { "conv 128->256 k3 s2 @20", SSFPN_OP_CONV2D, 128, 256, 20, 3, 2, 0 },
    { "conv 512->256 k1 @10", SSFPN_OP_CONV2D, 512, 256, 10, 1, 1, 0 },
    { "conv 64->255 k1 @40 (Detect)", SSFPN_OP_CONV2D, 64, 255, 40, 1, 1, 0 },
    { "max-pool 128 ch k5 @10", SSFPN_OP_MAXPOOL, 128, 128, 10, 5, 1, 2 },
    { "upsample x2 64 ch @20", SSFPN_OP_UPSAMPLE_NEAREST, 64, 64, 20, 2, 0, 0 },
    { "space-to-depth 16 ch @160", SSFPN_OP_SPACE_TO_DEPTH, 16, 64, 160, 2, 0, 0 },
    { "copy 64 ch @40", SSFPN_OP_COPY, 64, 64, 40, 0, 0, 0 },
  };
  GRand *rng = g_rand_new_with_seed (3);

  printf ("%-36s %10s   (threads: %d, 0 = all)\n", "op", "ms", threads);
  for (guint i = 0; i < G_N_ELEMENTS (ops); i++)
    printf ("%-36s %10.3f\n", ops[i].label, time_op (rng, &ops[i], threads));
  printf ("%-36s %10.3f\n", "yolov5n-like conv stack @320",
          time_stack (rng, threads));
  g_rand_free (rng);
  return 0;
}

int
main (int argc, char **argv)
{
  GRand *rng;
  guint32 seed = 20240611;

  if (argc > 1 && strcmp (argv[1], "--perf") == 0)
    return run_perf (argc > 2 ? atoi (argv[2]) : 0);
  if (g_getenv ("SSFPN_TEST_SEED") != NULL)
    seed = (guint32) g_ascii_strtoull (g_getenv ("SSFPN_TEST_SEED"), NULL, 10);
  rng = g_rand_new_with_seed (seed);

  test_errors ();
  test_kernels_chosen ();
  for (int i = 0; i < 60; i++)
    test_conv (rng, i);
  for (int i = 0; i < 12; i++)
    test_maxpool (rng, i);
  for (int i = 0; i < 4; i++)
    test_sppf (rng, i);
  for (int i = 0; i < 8; i++)
    test_upsample (rng, i);
  for (int i = 0; i < 8; i++)
    test_reorder (rng, i, SSFPN_OP_SPACE_TO_DEPTH);
  for (int i = 0; i < 8; i++)
    test_reorder (rng, i, SSFPN_OP_CONTRACT);
  for (int i = 0; i < 6; i++)
    test_copy (rng, i);
  for (int i = 0; i < 8; i++)
    test_detect (rng, i);
  for (int i = 0; i < 4; i++)
    test_conv3d_average (rng, i);

  printf ("%d passed, %d failed\n", n_passed, n_failed);
  g_rand_free (rng);
  return n_failed > 0 ? 1 : 0;
}
