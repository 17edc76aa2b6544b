#include "common/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = PX_LOG_INFO;
static _Atomic int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void px_log_set_level(px_log_level level)
{
    atomic_store(&log_level, (int)level);
}

px_log_level px_log_get_level(void)
{
    return (px_log_level)atomic_load(&log_level);
}

int px_log_level_parse(const char *s, px_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (px_log_level)i;
            return 0;
        }
    }
    return -1;
}

void px_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

/* Length of the valid UTF-8 sequence at p (at most left bytes), or 0 when invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n > left)
        return 0;
    uint32_t cp = c & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

size_t px_json_escape(char *dst, size_t cap, px_str s, int *cut)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s.ptr;
    for (size_t i = 0; i < s.len;) {
        char tmp[8];
        const char *out = tmp;
        size_t n, adv = 1;
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            n = 2;
        } else if (c == '\n') {
            out = "\\n";
            n = 2;
        } else if (c == '\r') {
            out = "\\r";
            n = 2;
        } else if (c == '\t') {
            out = "\\t";
            n = 2;
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            n = 6;
        } else if (c < 0x80) {
            tmp[0] = (char)c;
            n = 1;
        } else {
            adv = utf8_seq_len(p + i, s.len - i);
            if (adv == 0) {
                out = "\xEF\xBF\xBD"; /* U+FFFD for a byte that is not UTF-8 */
                n = 3;
                adv = 1;
            } else {
                out = (const char *)p + i;
                n = adv;
            }
        }
        if (o + n > cap) {
            if (cut != NULL)
                *cut = 1;
            return o;
        }
        memcpy(dst + o, out, n);
        o += n;
        i += adv;
    }
    return o;
}

static void line_put(px_log_line *l, const char *s, size_t n)
{
    /* Keep 3 bytes for the closing `}` + newline and a possible marker comma. */
    size_t room = sizeof(l->buf) - 64 - l->len;
    if (n > room) {
        n = room;
        l->truncated = 1;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_key(px_log_line *l, const char *key)
{
    line_put(l, ",\"", 2);
    line_put(l, key, strlen(key));
    line_put(l, "\":", 2);
}

void px_log_begin(px_log_line *l, px_log_level level, const char *event)
{
    l->len = 0;
    l->truncated = 0;
    l->enabled = (int)level >= atomic_load(&log_level);
    if (!l->enabled)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(l->buf, sizeof(l->buf),
                 "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"event\":\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, level_names[level]);
    l->len = n > 0 ? (size_t)n : 0;
    int cut = 0;
    l->len += px_json_escape(l->buf + l->len, 128, px_str_from_cstr(event), &cut);
    line_put(l, "\"", 1);
}

void px_log_str(px_log_line *l, const char *key, px_str value)
{
    if (!l->enabled)
        return;
    line_key(l, key);
    line_put(l, "\"", 1);
    int cut = 0;
    size_t room = sizeof(l->buf) - 64 - l->len;
    l->len += px_json_escape(l->buf + l->len, room, value, &cut);
    if (cut)
        l->truncated = 1;
    line_put(l, "\"", 1);
}

void px_log_cstr(px_log_line *l, const char *key, const char *value)
{
    px_log_str(l, key, px_str_from_cstr(value));
}

static void line_number(px_log_line *l, const char *key, const char *fmt, ...) PX_PRINTF(3, 4);

static void line_number(px_log_line *l, const char *key, const char *fmt, ...)
{
    if (!l->enabled)
        return;
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    line_key(l, key);
    line_put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void px_log_int(px_log_line *l, const char *key, int64_t value)
{
    line_number(l, key, "%" PRId64, value);
}

void px_log_uint(px_log_line *l, const char *key, uint64_t value)
{
    line_number(l, key, "%" PRIu64, value);
}

void px_log_bool(px_log_line *l, const char *key, int value)
{
    line_number(l, key, "%s", value ? "true" : "false");
}

void px_log_double(px_log_line *l, const char *key, double value)
{
    line_number(l, key, "%.3f", value);
}

void px_log_end(px_log_line *l)
{
    if (!l->enabled)
        return;
    if (l->truncated) {
        static const char marker[] = ",\"truncated\":true";
        memcpy(l->buf + l->len, marker, sizeof(marker) - 1);
        l->len += sizeof(marker) - 1;
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    ssize_t w = write(atomic_load(&log_fd), l->buf, l->len);
    (void)w; /* a log line that cannot be written has nowhere else to go */
}

void px_log_msg(px_log_level level, const char *event, const char *text)
{
    px_log_line l;
    px_log_begin(&l, level, event);
    px_log_cstr(&l, "msg", text);
    px_log_end(&l);
}
