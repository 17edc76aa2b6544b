/* routing/ internals: the bodies behind the opaque types, and the JSON readers that keep the
 * key path of the value being read so that every error names it. */
#ifndef PX_ROUTING_INTERNAL_H
#define PX_ROUTING_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/str.h"
#include "hl7/hl7.h"
#include "routing/config.h"
#include "routing/route.h"

/* One pattern of a condition. For an MSH-9 condition, caret tells whether it is compared with
 * "type^trigger" (true) or with the type alone. text points into the JSON tree. */
struct route_pattern {
    px_str text;
    bool caret;
};

/* A condition on one field path: it holds when the value matches any of the patterns. */
struct route_cond {
    const char *path_text; /* as written, borrowed from the JSON tree */
    hl7_path path;
    bool msh9;    /* the path is exactly MSH-9: type / type^trigger comparison */
    bool any_rep; /* no repetition written: any repetition may match */
    bool glob;    /* glob patterns; otherwise exact equality */
    size_t pattern_count;
    struct route_pattern *patterns; /* owned */
};

/* A route: all conditions must hold. settings are the effective ones (the feed's defaults
 * with this route's overrides applied). */
struct route_rule {
    const char *name;
    size_t cond_count;
    struct route_cond *conds; /* owned */
    route_settings settings;
    bool legs_explicit; /* the route lists "legs": class defaults do not apply */
};

struct route_filter {
    struct route_cond cond;
    route_filter_action action;
};

/* The configuration. Immutable after route__build returns, except refs. Strings are borrowed
 * from root, which lives as long as the configuration. */
struct route_config {
    atomic_uint refs;
    json_t *root;
    const char *instance;
    char version[17];
    uint64_t version_id;
    uint64_t generation;
    route_ledger ledger;
    bool has_admin;
    route_admin admin;
    route_limits limits;
    size_t upstream_count;
    route_upstream *upstreams;
    size_t feed_count;
    route_feed *feeds;
    size_t route_count;
    /* Whether a FHIR endpoint is configured; decides the default legs. There is no FHIR
     * section yet, so this is false and feeds default to the legacy leg only. */
    bool has_fhir;
};

/* The reading context: where errors go and the key path of the value being read. */
typedef struct route_ctx {
    px_error *err;
    size_t len;
    char path[200];
} route_ctx;

/* Appends ".key" (or "key" at the top) / "[index]" to the path; returns the previous length
 * to hand to route__pop. A path that no longer fits is cut, never overflowed. */
size_t route__push_key(route_ctx *c, const char *key);
size_t route__push_index(route_ctx *c, size_t index);
void route__pop(route_ctx *c, size_t mark);

/* Sets err to "<path>: <message>" with PX_ERR_INVAL and returns PX_ERR_INVAL. */
px_err route__fail(route_ctx *c, const char *fmt, ...) PX_PRINTF(2, 3);

/* As route__fail with key appended to the path for this message only. */
px_err route__fail_key(route_ctx *c, const char *key, const char *fmt, ...) PX_PRINTF(3, 4);

/* The JSON type of v in words ("a string", "an array" …) for messages. */
const char *route__json_kind(const json_t *v);

/* Fails unless v is an object whose keys are all in allowed (NULL-terminated). The error
 * names the unknown key and suggests the closest accepted one. */
px_err route__check_object(route_ctx *c, const json_t *v, const char *const *allowed);

/* Typed readers of obj[key]. When the key is absent, a required key fails with "missing" and
 * an optional one gives def. Errors name obj's path plus key. */
px_err route__get_uint(route_ctx *c, const json_t *obj, const char *key, bool required,
                       uint64_t min, uint64_t max, uint64_t def, uint64_t *out);
px_err route__get_u32(route_ctx *c, const json_t *obj, const char *key, bool required, uint32_t min,
                      uint32_t max, uint32_t def, uint32_t *out);
px_err route__get_bool(route_ctx *c, const json_t *obj, const char *key, bool def, bool *out);

/* A string without NUL bytes, 1..max_len bytes long. *present tells whether the key was
 * there (may be NULL). */
px_err route__get_string(route_ctx *c, const json_t *obj, const char *key, bool required,
                         const char *def, size_t max_len, const char **out);

/* One of names[0..count) (exact spelling); *out is its index, def when absent. *present
 * (may be NULL) tells whether the key was there. */
px_err route__get_enum(route_ctx *c, const json_t *obj, const char *key, const char *const *names,
                       size_t count, int def, int *out, bool *present);

/* A name: 1..ROUTE_NAME_MAX bytes of [A-Za-z0-9._-]. */
px_err route__get_name(route_ctx *c, const json_t *obj, const char *key, bool required,
                       const char *def, const char **out);

/* An IP address literal (IPv4 or IPv6), as listeners use. */
px_err route__get_ip(route_ctx *c, const json_t *obj, const char *key, bool required,
                     const char *def, const char **out);

/* A host name (RFC 1123 labels) or an IP address literal. */
px_err route__get_host(route_ctx *c, const json_t *obj, const char *key, const char **out);

/* A TCP port, 1..65535. */
px_err route__get_port(route_ctx *c, const json_t *obj, const char *key, bool required,
                       uint16_t def, uint16_t *out);

/* A file path that is absolute or relative without ".." components. */
px_err route__get_file_path(route_ctx *c, const json_t *obj, const char *key, const char **out);

/* An IANA time-zone name that exists under zoneinfo_dir as a TZif file. */
px_err route__get_timezone(route_ctx *c, const json_t *obj, const char *key,
                           const char *zoneinfo_dir, const char *def, const char **out);

/* Reads the feeds array into cfg (upstreams must be read already). */
px_err route__read_feeds(route_ctx *c, const json_t *feeds, struct route_config *cfg);

/* Frees what route__read_feeds allocated for one feed. */
void route__feed_free(route_feed *feed);

/* Parses a field path written in the config, filling cond's path fields. */
px_err route__read_path(route_ctx *c, const char *text, struct route_cond *cond);

/* Frees a condition's patterns. */
void route__cond_free(struct route_cond *cond);

/* Where time-zone names are looked up. */
#define ROUTE_ZONEINFO_DIR "/usr/share/zoneinfo"

#endif
