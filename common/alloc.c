#include "common/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>

/* Relaxed atomics: other threads allocate too, and a count need not be exact there. */
static _Atomic long fail_countdown = -1;
static _Atomic long alloc_count;

static int alloc_should_fail(void)
{
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    long left = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (left < 0)
        return 0;
    if (left == 0) {
        atomic_store_explicit(&fail_countdown, -1, memory_order_relaxed);
        return 1;
    }
    atomic_store_explicit(&fail_countdown, left - 1, memory_order_relaxed);
    return 0;
}

void *px_malloc(size_t size)
{
    return alloc_should_fail() ? NULL : malloc(size);
}

void *px_calloc(size_t count, size_t size)
{
    return alloc_should_fail() ? NULL : calloc(count, size);
}

void *px_realloc(void *ptr, size_t size)
{
    return alloc_should_fail() ? NULL : realloc(ptr, size);
}

void px_free(void *ptr)
{
    free(ptr);
}

long px_alloc_fail_after(long countdown)
{
    long made = atomic_exchange_explicit(&alloc_count, 0, memory_order_relaxed);
    atomic_store_explicit(&fail_countdown, countdown, memory_order_relaxed);
    return made;
}
