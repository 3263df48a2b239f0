/* Test-time augmentation: each image runs as several mirrored views, and
 * the views' outputs are mapped back onto the image's own anchor grid and
 * averaged, so the result has the shape of one plain pass (augment.c). */
#ifndef SSFPN_AUGMENT_H
#define SSFPN_AUGMENT_H

#include "ssfpn/ssfpn.h"

G_BEGIN_DECLS

/* Network passes per image: 1 for none, 4 for flips; 0 for a value that is
 * no SsfpnAugment. */
int ssfpn_augment_view_count (SsfpnAugment augment);

/* @input: (batch, 3, H, W). Writes (batch * views, 3, H, W) into @views,
 * image b's view v at b * views + v. */
void ssfpn_augment_expand (SsfpnAugment augment, const float *input,
                           int batch, int height, int width, float *views);

/* @views: the network's output for ssfpn_augment_expand's input, (batch *
 * views, A, 5 + nc). Writes (batch, A, 5 + nc) into @output: per anchor,
 * the mean of the views' rows for that anchor's mirror cell, with the
 * box centre mirrored back. */
void ssfpn_augment_merge (SsfpnAugment augment, const SsfpnModel *model,
                          const float *views, int batch, int height,
                          int width, float *output);

G_END_DECLS

#endif /* SSFPN_AUGMENT_H */
