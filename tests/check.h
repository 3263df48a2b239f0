/* The little that the plain C tests share: pass/fail counting with a
 * message naming file and line, and the fixture folder. Each test prints
 * "N passed, M failed" at the end (the closing line CI reads). */
#ifndef SSFPN_TESTS_CHECK_H
#define SSFPN_TESTS_CHECK_H

#include <glib.h>
#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    if (cond)                                                                \
      passed++;                                                              \
    else                                                                     \
      {                                                                      \
        failed++;                                                            \
        fprintf (stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                \
        fprintf (stderr, __VA_ARGS__);                                       \
        fputc ('\n', stderr);                                                \
      }                                                                      \
  } while (0)

/* tests/data, or $SSFPN_TEST_DATA. */
static inline const char *
data_dir (void)
{
  const char *env = g_getenv ("SSFPN_TEST_DATA");
  return env ? env : SSFPN_TEST_DATA;
}

#endif /* SSFPN_TESTS_CHECK_H */
