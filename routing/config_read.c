/* Typed readers of JSON values that keep the key path for error messages. */
#include "routing/internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Keys are shown at most this long in paths and messages. */
#define KEY_SHOW_MAX 48

static void path_append(route_ctx *c, const char *s, size_t n)
{
    size_t room = sizeof(c->path) - 1 - c->len;
    if (n > room)
        n = room;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        /* Keys come from the file: keep the message printable. */
        c->path[c->len + i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    c->len += n;
    c->path[c->len] = '\0';
}

size_t route__push_key(route_ctx *c, const char *key)
{
    size_t mark = c->len;
    if (c->len > 0)
        path_append(c, ".", 1);
    size_t n = strlen(key);
    path_append(c, key, n > KEY_SHOW_MAX ? KEY_SHOW_MAX : n);
    if (n > KEY_SHOW_MAX)
        path_append(c, "...", 3);
    return mark;
}

size_t route__push_index(route_ctx *c, size_t index)
{
    size_t mark = c->len;
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "[%zu]", index);
    if (n > 0)
        path_append(c, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
    return mark;
}

void route__pop(route_ctx *c, size_t mark)
{
    if (mark <= c->len) {
        c->len = mark;
        c->path[mark] = '\0';
    }
}

static px_err vfail(route_ctx *c, const char *fmt, va_list ap) PX_PRINTF(2, 0);

static px_err vfail(route_ctx *c, const char *fmt, va_list ap)
{
    char text[sizeof(((px_error *)0)->msg)];
    if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
        text[0] = '\0';
    return px_error_set(c->err, PX_ERR_INVAL, "%s: %s", c->len > 0 ? c->path : "(top level)", text);
}

px_err route__fail(route_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    px_err rc = vfail(c, fmt, ap);
    va_end(ap);
    return rc;
}

px_err route__fail_key(route_ctx *c, const char *key, const char *fmt, ...)
{
    size_t mark = route__push_key(c, key);
    va_list ap;
    va_start(ap, fmt);
    px_err rc = vfail(c, fmt, ap);
    va_end(ap);
    route__pop(c, mark);
    return rc;
}

const char *route__json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a decimal number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

/* Edit distance between short strings, for "did you mean" suggestions. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > KEY_SHOW_MAX || lb > KEY_SHOW_MAX)
        return SIZE_MAX;
    size_t row[KEY_SHOW_MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

px_err route__check_object(route_ctx *c, const json_t *v, const char *const *allowed)
{
    if (!json_is_object(v))
        return route__fail(c, "expected an object, got %s", route__json_kind(v));
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value)
    {
        (void)value;
        bool known = false;
        const char *best = NULL;
        size_t best_d = SIZE_MAX;
        for (size_t i = 0; allowed[i] != NULL; i++) {
            if (strcmp(key, allowed[i]) == 0) {
                known = true;
                break;
            }
            size_t d = edit_distance(key, allowed[i]);
            if (d < best_d) {
                best_d = d;
                best = allowed[i];
            }
        }
        if (known)
            continue;
        if (best != NULL && best_d <= 2 && best_d < strlen(key))
            return route__fail_key(c, key, "unknown key (did you mean \"%s\"?)", best);
        /* A unit suffix left off ("busy_timeout" for "busy_timeout_ms") is a common slip. */
        for (size_t i = 0; allowed[i] != NULL && strlen(key) >= 4; i++)
            if (strncmp(allowed[i], key, strlen(key)) == 0)
                return route__fail_key(c, key, "unknown key (did you mean \"%s\"?)", allowed[i]);
        return route__fail_key(c, key, "unknown key");
    }
    return PX_OK;
}

px_err route__get_uint(route_ctx *c, const json_t *obj, const char *key, bool required,
                       uint64_t min, uint64_t max, uint64_t def, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required)
            return route__fail_key(c, key, "missing (expected an integer from %llu to %llu)",
                                   (unsigned long long)min, (unsigned long long)max);
        *out = def;
        return PX_OK;
    }
    if (!json_is_integer(v))
        return route__fail_key(c, key, "expected an integer from %llu to %llu, got %s",
                               (unsigned long long)min, (unsigned long long)max,
                               route__json_kind(v));
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
        return route__fail_key(c, key, "expected an integer from %llu to %llu, got %lld",
                               (unsigned long long)min, (unsigned long long)max, (long long)n);
    *out = (uint64_t)n;
    return PX_OK;
}

px_err route__get_u32(route_ctx *c, const json_t *obj, const char *key, bool required, uint32_t min,
                      uint32_t max, uint32_t def, uint32_t *out)
{
    uint64_t v = 0;
    px_err rc = route__get_uint(c, obj, key, required, min, max, def, &v);
    if (rc == PX_OK)
        *out = (uint32_t)v;
    return rc;
}

px_err route__get_bool(route_ctx *c, const json_t *obj, const char *key, bool def, bool *out)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = def;
        return PX_OK;
    }
    if (!json_is_boolean(v))
        return route__fail_key(c, key, "expected true or false, got %s", route__json_kind(v));
    *out = json_is_true(v);
    return PX_OK;
}

px_err route__get_string(route_ctx *c, const json_t *obj, const char *key, bool required,
                         const char *def, size_t max_len, const char **out)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required)
            return route__fail_key(c, key, "missing (expected a string)");
        *out = def;
        return PX_OK;
    }
    if (!json_is_string(v))
        return route__fail_key(c, key, "expected a string, got %s", route__json_kind(v));
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n)
        return route__fail_key(c, key, "the string holds a NUL character");
    if (n == 0)
        return route__fail_key(c, key, "expected a non-empty string");
    if (n > max_len)
        return route__fail_key(c, key, "too long (%zu bytes, at most %zu)", n, max_len);
    *out = s;
    return PX_OK;
}

px_err route__get_enum(route_ctx *c, const json_t *obj, const char *key, const char *const *names,
                       size_t count, int def, int *out, bool *present)
{
    if (present != NULL)
        *present = false;
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = def;
        return PX_OK;
    }
    char accepted[160];
    size_t used = 0;
    accepted[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        int n = snprintf(accepted + used, sizeof(accepted) - used, "%s\"%s\"",
                         i == 0 ? "" : (i + 1 == count ? " or " : ", "), names[i]);
        if (n < 0 || (size_t)n >= sizeof(accepted) - used)
            break;
        used += (size_t)n;
    }
    if (!json_is_string(v))
        return route__fail_key(c, key, "expected %s, got %s", accepted, route__json_kind(v));
    const char *s = json_string_value(v);
    for (size_t i = 0; i < count; i++) {
        if (json_string_length(v) == strlen(names[i]) && strcmp(s, names[i]) == 0) {
            *out = (int)i;
            if (present != NULL)
                *present = true;
            return PX_OK;
        }
    }
    return route__fail_key(c, key, "expected %s, got \"%.40s\"", accepted, s);
}

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

px_err route__get_name(route_ctx *c, const json_t *obj, const char *key, bool required,
                       const char *def, const char **out)
{
    const char *s = NULL;
    px_err rc = route__get_string(c, obj, key, required, def, ROUTE_NAME_MAX, &s);
    if (rc != PX_OK)
        return rc;
    if (s != def)
        for (const char *p = s; *p != '\0'; p++)
            if (!name_char(*p))
                return route__fail_key(c, key,
                                       "a name uses only letters, digits, '.', '_' and '-'");
    *out = s;
    return PX_OK;
}

static bool is_ip_literal(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

px_err route__get_ip(route_ctx *c, const json_t *obj, const char *key, bool required,
                     const char *def, const char **out)
{
    const char *s = NULL;
    px_err rc = route__get_string(c, obj, key, required, def, 64, &s);
    if (rc != PX_OK)
        return rc;
    if (s != def && !is_ip_literal(s))
        return route__fail_key(c, key,
                               "expected an IP address such as \"127.0.0.1\", \"0.0.0.0\" or "
                               "\"::1\" (host names are not resolved for listeners)");
    *out = s;
    return PX_OK;
}

static bool is_host_name(const char *s)
{
    /* RFC 1123: dot-separated labels of letters, digits and inner hyphens, 1..63 bytes. */
    size_t label = 0;
    char prev = '.';
    for (const char *p = s; *p != '\0'; p++) {
        char ch = *p;
        if (ch == '.') {
            if (label == 0 || prev == '-')
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-') {
            if (ch == '-' && label == 0)
                return false;
            if (++label > 63)
                return false;
        } else {
            return false;
        }
        prev = ch;
    }
    return label > 0 && prev != '-';
}

px_err route__get_host(route_ctx *c, const json_t *obj, const char *key, const char **out)
{
    const char *s = NULL;
    px_err rc = route__get_string(c, obj, key, true, NULL, 253, &s);
    if (rc != PX_OK)
        return rc;
    if (!is_ip_literal(s) && !is_host_name(s))
        return route__fail_key(c, key, "expected a host name or an IP address");
    *out = s;
    return PX_OK;
}

px_err route__get_port(route_ctx *c, const json_t *obj, const char *key, bool required,
                       uint16_t def, uint16_t *out)
{
    uint64_t v = 0;
    px_err rc = route__get_uint(c, obj, key, required, 1, 65535, def, &v);
    if (rc == PX_OK)
        *out = (uint16_t)v;
    return rc;
}

px_err route__get_file_path(route_ctx *c, const json_t *obj, const char *key, const char **out)
{
    const char *s = NULL;
    px_err rc = route__get_string(c, obj, key, true, NULL, 4096, &s);
    if (rc != PX_OK)
        return rc;
    size_t n = strlen(s);
    if (s[n - 1] == '/')
        return route__fail_key(c, key, "expected a file path, not a directory");
    /* Walk the components: ".." anywhere could step out of the intended directory. */
    const char *p = s;
    while (*p != '\0') {
        const char *end = strchr(p, '/');
        size_t len = end == NULL ? strlen(p) : (size_t)(end - p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return route__fail_key(c, key, "\"..\" components are not allowed in paths");
        p += len;
        if (*p == '/')
            p++;
    }
    *out = s;
    return PX_OK;
}

static bool zone_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '+' || ch == '/';
}

/* True when dir/name is a regular file starting with the TZif magic. */
static bool zone_file_ok(const char *dir, const char *name)
{
    char file[512];
    int n = snprintf(file, sizeof(file), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(file))
        return false;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return false;
    struct stat st;
    char magic[4];
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic) &&
              memcmp(magic, "TZif", 4) == 0;
    close(fd);
    return ok;
}

px_err route__get_timezone(route_ctx *c, const json_t *obj, const char *key,
                           const char *zoneinfo_dir, const char *def, const char **out)
{
    const char *s = NULL;
    px_err rc = route__get_string(c, obj, key, false, def, 64, &s);
    if (rc != PX_OK)
        return rc;
    if (s == def) {
        *out = s;
        return PX_OK;
    }
    /* Names are looked up as files: no '.', no leading '/' and no empty component, so a value
     * can never leave the zoneinfo directory. */
    bool shape_ok = s[0] != '/';
    for (const char *p = s; shape_ok && *p != '\0'; p++)
        shape_ok = zone_char(*p) && !(*p == '/' && (p[1] == '/' || p[1] == '\0'));
    if (!shape_ok)
        return route__fail_key(c, key,
                               "expected an IANA time-zone name such as \"America/New_York\"");
    if (!zone_file_ok(zoneinfo_dir, s))
        return route__fail_key(c, key, "unknown time zone \"%s\" (not found in %s)", s,
                               zoneinfo_dir);
    *out = s;
    return PX_OK;
}
