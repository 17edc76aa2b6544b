/* Helpers shared by the test suites. */
#ifndef PX_TESTS_SUPPORT_H
#define PX_TESTS_SUPPORT_H

#include <stddef.h>

/* The corpus root (../shared/corpus, or $PX_CORPUS). */
const char *test_corpus_dir(void);

/* tests/data (or $PX_TEST_DATA). */
const char *test_data_dir(void);

/* Reads a whole file; returns a malloc'd buffer (NUL-terminated, not counted) or NULL. */
char *test_read_file(const char *path, size_t *len);

/* Calls fn for every regular file under dir (recursively, sorted by path).
 * Returns the number of files visited. */
size_t test_walk_files(const char *dir, void (*fn)(const char *path, void *ctx), void *ctx);

#endif
