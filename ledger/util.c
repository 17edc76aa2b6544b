/* Clocks, the commit latency histogram and SQLite binding helpers. */
#include <stdint.h>
#include <time.h>

#include "ledger/internal.h"

uint64_t ledger__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t ledger__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Values below 16 get a bucket each; above, each power of two [2^e, 2^(e+1)) is split in
 * eight equal buckets, so a bucket's upper bound is within 1/8 of any value in it. */
static unsigned bucket_of(uint64_t v)
{
    if (v < 16)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= 4 */
    unsigned sub = (unsigned)(v >> (e - 3)) & 7u;
    unsigned idx = 16u + (e - 4u) * 8u + sub;
    return idx < LEDGER_HIST_BUCKETS ? idx : LEDGER_HIST_BUCKETS - 1;
}

static uint64_t bucket_upper(unsigned idx)
{
    if (idx < 16)
        return idx;
    unsigned e = (idx - 16u) / 8u + 4u;
    unsigned sub = (idx - 16u) % 8u;
    return ((uint64_t)(8u + sub + 1u) << (e - 3)) - 1u;
}

void ledger__hist_add(ledger__hist *h, uint64_t us)
{
    atomic_fetch_add_explicit(&h->n[bucket_of(us)], 1, memory_order_relaxed);
}

uint64_t ledger__hist_quantile(ledger__hist *h, double q)
{
    uint64_t counts[LEDGER_HIST_BUCKETS];
    uint64_t total = 0;
    for (unsigned i = 0; i < LEDGER_HIST_BUCKETS; i++) {
        counts[i] = atomic_load_explicit(&h->n[i], memory_order_relaxed);
        total += counts[i];
    }
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total);
    if (rank >= total)
        rank = total - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LEDGER_HIST_BUCKETS; i++) {
        seen += counts[i];
        if (seen > rank)
            return bucket_upper(i);
    }
    return bucket_upper(LEDGER_HIST_BUCKETS - 1);
}

int ledger__bind_str(sqlite3_stmt *st, int i, px_str s)
{
    /* A NULL pointer would bind SQL NULL; the columns are NOT NULL text. */
    if (s.ptr == NULL || s.len == 0)
        return sqlite3_bind_text(st, i, "", 0, SQLITE_STATIC);
    return sqlite3_bind_text64(st, i, s.ptr, s.len, SQLITE_STATIC, SQLITE_UTF8);
}

int ledger__bind_blob_or_null(sqlite3_stmt *st, int i, px_str s)
{
    if (s.ptr == NULL || s.len == 0)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_blob64(st, i, s.ptr, s.len, SQLITE_STATIC);
}
