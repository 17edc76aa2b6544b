/* The project's allocator, with a hook so tests can fail the Nth allocation. */
#ifndef PX_COMMON_ALLOC_H
#define PX_COMMON_ALLOC_H

#include <stddef.h>

void *px_malloc(size_t size);
void *px_calloc(size_t count, size_t size);
void *px_realloc(void *ptr, size_t size);
void px_free(void *ptr);

/* Test hook: the next `countdown` allocations succeed, the one after fails, then all
 * succeed again. A negative countdown disables injection (the default). Not thread-safe:
 * set it before starting threads. Returns how many allocations were made since the last
 * call, so a test can loop N = 0 … count. */
long px_alloc_fail_after(long countdown);

#endif
