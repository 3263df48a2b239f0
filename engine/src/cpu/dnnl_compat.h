/* The differences between oneDNN 2.x (Debian 12) and 3.x (Debian 13,
 * Ubuntu 24.04) that the convolutions meet, behind one spelling:
 *  - memory descriptors are handles the caller owns (3.x's opaque pointers;
 *    for 2.x, its structs on the heap), passed as they are to either API;
 *  - a convolution's primitive descriptor is made in one call (2.x made an
 *    operation descriptor first);
 *  - eltwise post-ops take no scale (2.x's was always 1 here).
 */
#ifndef SSFPN_DNNL_COMPAT_H
#define SSFPN_DNNL_COMPAT_H

#include <glib.h>
#include <oneapi/dnnl/dnnl.h>

#if DNNL_VERSION_MAJOR >= 3
typedef dnnl_memory_desc_t CpuMd;
typedef const_dnnl_memory_desc_t CpuConstMd;
#else
typedef dnnl_memory_desc_t *CpuMd;
typedef const dnnl_memory_desc_t *CpuConstMd;
#endif

static inline dnnl_status_t
cpu_md_create (CpuMd *md, int ndims, const dnnl_dims_t dims,
               dnnl_format_tag_t tag)
{
#if DNNL_VERSION_MAJOR >= 3
  return dnnl_memory_desc_create_with_tag (md, ndims, dims, dnnl_f32, tag);
#else
  *md = g_new0 (dnnl_memory_desc_t, 1);
  dnnl_status_t status =
      dnnl_memory_desc_init_by_tag (*md, ndims, dims, dnnl_f32, tag);
  if (status != dnnl_success)
    g_clear_pointer (md, g_free);
  return status;
#endif
}

static inline void
cpu_md_destroy (CpuMd md)
{
#if DNNL_VERSION_MAJOR >= 3
  if (md != NULL)
    dnnl_memory_desc_destroy (md);
#else
  g_free (md);
#endif
}

static inline dnnl_status_t
cpu_post_ops_append_eltwise (dnnl_post_ops_t post_ops, dnnl_alg_kind_t alg,
                             float alpha, float beta)
{
#if DNNL_VERSION_MAJOR >= 3
  return dnnl_post_ops_append_eltwise (post_ops, alg, alpha, beta);
#else
  return dnnl_post_ops_append_eltwise (post_ops, 1.0f, alg, alpha, beta);
#endif
}

static inline dnnl_status_t
cpu_convolution_pd_create (dnnl_primitive_desc_t *pd, dnnl_engine_t engine,
                           CpuConstMd src, CpuConstMd weights,
                           CpuConstMd bias, CpuConstMd dst,
                           const dnnl_dims_t strides,
                           const dnnl_dims_t padding_l,
                           const dnnl_dims_t padding_r,
                           const_dnnl_primitive_attr_t attr)
{
#if DNNL_VERSION_MAJOR >= 3
  const dnnl_dims_t no_dilation = { 0, 0 };

  return dnnl_convolution_forward_primitive_desc_create
      (pd, engine, dnnl_forward_inference, dnnl_convolution_direct, src,
       weights, bias, dst, strides, no_dilation, padding_l, padding_r, attr);
#else
  dnnl_convolution_desc_t desc;
  dnnl_status_t status = dnnl_convolution_forward_desc_init
      (&desc, dnnl_forward_inference, dnnl_convolution_direct, src, weights,
       bias, dst, strides, padding_l, padding_r);

  if (status != dnnl_success)
    return status;
  return dnnl_primitive_desc_create (pd, &desc, attr, engine, NULL);
#endif
}

#endif /* SSFPN_DNNL_COMPAT_H */
