/* How much memory the process may still take, for the CPU backend's check
 * before it allocates a plan. */
#ifndef SSFPN_CPU_MEMORY_H
#define SSFPN_CPU_MEMORY_H

#include <glib.h>

G_BEGIN_DECLS

/* The /proc/meminfo entry @key (e.g. "MemAvailable") in bytes; 0 when the
 * file or the entry cannot be read. */
guint64 ssfpn_cpu_meminfo_bytes (const char *key);

/* Room left under the memory limits of the cgroups @proc_self_cgroup (the
 * text of /proc/self/cgroup) names, for cgroup v2 (memory.max minus
 * memory.current) and v1 (memory.limit_in_bytes minus usage), each
 * cgroup's and its ancestors' up to @cgroup_mount (/sys/fs/cgroup);
 * G_MAXUINT64 when none is limited. */
guint64 ssfpn_cpu_cgroup_room_bytes (const char *proc_self_cgroup,
                                     const char *cgroup_mount);

/* MemAvailable + SwapFree, or the cgroup's room when that is less; 0 when
 * neither is known. */
guint64 ssfpn_cpu_available_bytes (void);

G_END_DECLS

#endif /* SSFPN_CPU_MEMORY_H */
