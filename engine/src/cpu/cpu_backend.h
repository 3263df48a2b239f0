/* CPU-backend entry points beyond the SsfpnBackend table, for tests: they
 * look inside a plan made by ssfpn_cpu_backend. */
#ifndef SSFPN_CPU_BACKEND_H
#define SSFPN_CPU_BACKEND_H

#include "backend.h"
#include "cpu/cpu_memory.h"

G_BEGIN_DECLS

/* Copies batch item @item of @tensor (a root or a view) out of the plan's
 * buffers as plain NCHW (channels, H, W) into @out. FALSE when the tensor
 * has no buffer (nothing writes it) or is out of range. */
gboolean ssfpn_cpu_plan_read_tensor (const SsfpnPlan *plan, int tensor,
                                     int item, float *out);

/* Channel block of the layout chosen for @tensor's buffer: 1 (NCHW), 8 or
 * 16; 0 when it has none. */
int ssfpn_cpu_plan_tensor_block (const SsfpnPlan *plan, int tensor);

/* How many convolutions oneDNN serves with a reference (non-JIT) kernel:
 * orders of magnitude slower, so 0 on a real network is the aim. */
int ssfpn_cpu_plan_reference_convs (const SsfpnPlan *plan);


G_END_DECLS

#endif /* SSFPN_CPU_BACKEND_H */
