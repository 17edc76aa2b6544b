/* Structured logs: one JSON object per line on stderr. Values given here must never be
 * PHI (names, MRNs, bodies, field values); control ids, hashes, counts and peers are fine.
 *
 *     px_log_line line;
 *     px_log_begin(&line, PX_LOG_INFO, "conn_open");
 *     px_log_str(&line, "feed", feed_name);
 *     px_log_int(&line, "fd", fd);
 *     px_log_end(&line);
 *
 * The line is built in the caller's struct (no allocation, thread-safe) and written with one
 * write(2) so lines from several threads never interleave. Overlong lines are cut and
 * marked "truncated":true. */
#ifndef PX_COMMON_LOG_H
#define PX_COMMON_LOG_H

#include <stdint.h>

#include "common/str.h"

typedef enum px_log_level {
    PX_LOG_DEBUG = 0,
    PX_LOG_INFO,
    PX_LOG_WARN,
    PX_LOG_ERROR,
} px_log_level;

typedef struct px_log_line {
    char buf[2048];
    size_t len;
    int enabled;
    int truncated;
} px_log_line;

/* Lines below this level are skipped (default PX_LOG_INFO). */
void px_log_set_level(px_log_level level);
px_log_level px_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns 0 on success, -1 otherwise. */
int px_log_level_parse(const char *s, px_log_level *out);

/* Redirects output to fd (default 2). For tests. */
void px_log_set_fd(int fd);

void px_log_begin(px_log_line *l, px_log_level level, const char *event);
void px_log_str(px_log_line *l, const char *key, px_str value);
void px_log_cstr(px_log_line *l, const char *key, const char *value);
void px_log_int(px_log_line *l, const char *key, int64_t value);
void px_log_uint(px_log_line *l, const char *key, uint64_t value);
void px_log_bool(px_log_line *l, const char *key, int value);
void px_log_double(px_log_line *l, const char *key, double value);
void px_log_end(px_log_line *l);

/* One-call form for a line with a single message text. */
void px_log_msg(px_log_level level, const char *event, const char *text);

/* Appends s to dst as a JSON string body (no quotes), escaping quotes, backslashes and
 * control bytes, and replacing invalid UTF-8 with U+FFFD. Returns bytes written (<= cap);
 * stops before overflowing, setting *cut when it did. */
size_t px_json_escape(char *dst, size_t cap, px_str s, int *cut);

#endif
