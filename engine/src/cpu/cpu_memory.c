/* How much memory the process may still take: /proc/meminfo for the
 * machine, the cgroup's limit for a container, whose /proc/meminfo shows
 * the host's. */
#include "cpu/cpu_memory.h"

#include <string.h>

guint64
ssfpn_cpu_meminfo_bytes (const char *key)
{
  g_autofree char *text = NULL;
  g_autofree char *name = g_strdup_printf ("%s:", key);
  const char *line;

  if (!g_file_get_contents ("/proc/meminfo", &text, NULL, NULL))
    return 0;
  /* A whole entry, at the start of a line (not "SwapFree" in "XSwapFree"). */
  line = strstr (text, name);
  while (line != NULL && line != text && line[-1] != '\n')
    line = strstr (line + 1, name);
  return line != NULL ? g_ascii_strtoull (line + strlen (name), NULL, 10) * 1024
                      : 0;
}

/* The number in @folder/@file; FALSE when absent or "max". */
static gboolean
read_limit_file (const char *folder, const char *file, guint64 *value)
{
  g_autofree char *path = g_build_filename (folder, file, NULL);
  g_autofree char *text = NULL;
  char *end;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  g_strstrip (text);
  *value = g_ascii_strtoull (text, &end, 10);
  return end != text && *end == '\0';
}

/* The least room under @limit_file minus @usage_file over @folder and the
 * folders above it up to @top. */
static guint64
room_up_to (const char *top, const char *path, const char *limit_file,
            const char *usage_file)
{
  guint64 room = G_MAXUINT64;
  g_autofree char *folder = g_build_filename (top, path, NULL);

  while (TRUE)
    {
      guint64 limit, usage;
      if (read_limit_file (folder, limit_file, &limit)
          && read_limit_file (folder, usage_file, &usage))
        room = MIN (room, limit > usage ? limit - usage : 0);
      if (strlen (folder) <= strlen (top))
        break;
      char *parent = g_path_get_dirname (folder);
      g_free (folder);
      folder = parent;
    }
  return room;
}

guint64
ssfpn_cpu_cgroup_room_bytes (const char *proc_self_cgroup,
                             const char *cgroup_mount)
{
  guint64 room = G_MAXUINT64;
  g_auto (GStrv) lines = g_strsplit (proc_self_cgroup, "\n", -1);

  for (int i = 0; lines[i] != NULL; i++)
    {
      /* "ID:CONTROLLERS:PATH": v2 is "0::PATH", v1 lists "memory". */
      g_auto (GStrv) fields = g_strsplit (lines[i], ":", 3);
      if (g_strv_length (fields) != 3 || fields[2][0] != '/')
        continue;
      if (strcmp (fields[0], "0") == 0 && fields[1][0] == '\0')
        room = MIN (room, room_up_to (cgroup_mount, fields[2], "memory.max",
                                      "memory.current"));
      g_auto (GStrv) controllers = g_strsplit (fields[1], ",", -1);
      if (g_strv_contains ((const char *const *) controllers, "memory"))
        {
          g_autofree char *top = g_build_filename (cgroup_mount, "memory",
                                                   NULL);
          room = MIN (room, room_up_to (top, fields[2],
                                        "memory.limit_in_bytes",
                                        "memory.usage_in_bytes"));
        }
    }
  return room;
}

guint64
ssfpn_cpu_available_bytes (void)
{
  /* Without MemAvailable (kernels before 3.14) there is no figure. */
  guint64 available = ssfpn_cpu_meminfo_bytes ("MemAvailable");
  if (available > 0)
    available += ssfpn_cpu_meminfo_bytes ("SwapFree");

  g_autofree char *cgroups = NULL;
  if (g_file_get_contents ("/proc/self/cgroup", &cgroups, NULL, NULL))
    {
      guint64 room = ssfpn_cpu_cgroup_room_bytes (cgroups, "/sys/fs/cgroup");
      if (room != G_MAXUINT64)
        available = available > 0 ? MIN (available, room) : room;
    }
  return available;
}
