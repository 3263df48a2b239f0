/* The CPU backend's own kernels: every op that is not a convolution.
 *
 * Kernels read and write tensors through a CpuTensorView, which hides the
 * buffer layout: plain NCHW (block 1) or oneDNN's channel-blocked nChw8c /
 * nChw16c (block 8 or 16), where channel c of pixel p of a root buffer
 * lives at (c / block) * block * H * W + p * block + c % block. A view is a
 * channel slice of such a root buffer, so concats need no copies.
 */
#ifndef SSFPN_CPU_KERNELS_H
#define SSFPN_CPU_KERNELS_H

#include "graph.h"

G_BEGIN_DECLS

typedef struct {
  float *data;          /* the root buffer, batch item 0 */
  gsize item_stride;    /* floats from one batch item to the next */
  int channel_offset;   /* first channel of the view within the root */
  int channels;
  int height, width;
  int block;            /* 1, 8 or 16 */
} CpuTensorView;

/* First element (pixel 0) of channel @c of the view for batch item @item;
 * the next pixel of that channel is view->block floats further. */
static inline float *
cpu_view_channel (const CpuTensorView *view, int item, int c)
{
  gsize abs_c = (gsize) (view->channel_offset + c);
  gsize plane = (gsize) view->height * view->width;
  gsize b = (gsize) view->block;

  return view->data + item * view->item_stride + (abs_c / b) * b * plane
         + abs_c % b;
}

/* Floats of one batch item of a root buffer of @channels x @height x
 * @width in a layout of @block (channels rounded up to the block). */
gsize cpu_root_item_floats (int channels, int height, int width, int block);

void cpu_upsample_nearest (const CpuTensorView *in, const CpuTensorView *out,
                           int item, int factor);
/* Padding counts as -inf, as in PyTorch. */
void cpu_maxpool (const CpuTensorView *in, const CpuTensorView *out, int item,
                  int kernel, int stride, int pad);
/* Focus order: channel block k takes (row, column) offset (0,0), (1,0),
 * (0,1), (1,1) for k = 0..3. */
void cpu_space_to_depth (const CpuTensorView *in, const CpuTensorView *out,
                         int item);
/* YOLOv5 Contract: out channel (sy * gain + sx) * C + c. */
void cpu_contract (const CpuTensorView *in, const CpuTensorView *out,
                   int item, int gain);
void cpu_copy_channels (const CpuTensorView *in, const CpuTensorView *out,
                        int item);
/* Decodes one Detect level (sigmoid already applied) into rows
 * [@row_offset, ...) of @output, the item's (rows, 5 + nc) output. */
void cpu_detect_decode (const CpuTensorView *in, int item,
                        const SsfpnDetectParams *params, int row_offset,
                        float *output);

G_END_DECLS

#endif /* SSFPN_CPU_KERNELS_H */
