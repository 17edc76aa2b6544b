/* Loading the configuration: reading the file, the top-level sections, and the accessors. */
#include "routing/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "routing/internal.h"

#define MAX_UPSTREAMS 256
#define MAX_TIMEOUT   86400000u /* one day in ms: larger values are mistakes */

/* Every successful load or parse takes the next generation. */
static atomic_uint_fast64_t generation_counter;

static const char *const top_keys[] = {"instance",  "ledger", "admin", "limits",
                                       "upstreams", "feeds",  NULL};
static const char *const ledger_keys[] = {"path", "synchronous", "journal_size_limit_mb",
                                          "busy_timeout_ms", NULL};
static const char *const admin_keys[] = {"listen", "port", NULL};
static const char *const limits_keys[] = {
    "max_connections",      "max_connections_per_peer", "max_message_bytes",
    "frame_deadline_ms",    "idle_timeout_ms",          "inflight_bytes",
    "ack_write_timeout_ms", "drain_timeout_ms",         NULL};
static const char *const upstream_keys[] = {"name",
                                            "host",
                                            "port",
                                            "pool",
                                            "connect_timeout_ms",
                                            "ack_timeout_ms",
                                            "require_msa2_echo",
                                            "reconnect_min_ms",
                                            "reconnect_max_ms",
                                            "breaker_failures",
                                            "breaker_open_ms",
                                            NULL};
static const char *const sync_names[] = {"full", "normal"};

static px_err read_ledger(route_ctx *c, const json_t *root, route_ledger *l)
{
    const json_t *v = json_object_get(root, "ledger");
    size_t mark = route__push_key(c, "ledger");
    if (v == NULL)
        return route__fail(c, "missing (expected an object with at least \"path\")");
    px_err rc = route__check_object(c, v, ledger_keys);
    if (rc != PX_OK)
        return rc;
    if ((rc = route__get_file_path(c, v, "path", &l->path)) != PX_OK)
        return rc;
    int sync = 0;
    rc = route__get_enum(c, v, "synchronous", sync_names, 2, 0, &sync, NULL);
    if (rc != PX_OK)
        return rc;
    l->synchronous = sync == 1 ? ROUTE_SYNC_NORMAL : ROUTE_SYNC_FULL;
    if ((rc = route__get_u32(c, v, "journal_size_limit_mb", false, 1, 65536, 64,
                             &l->journal_size_limit_mb)) != PX_OK)
        return rc;
    if ((rc = route__get_u32(c, v, "busy_timeout_ms", false, 1, MAX_TIMEOUT, 5000,
                             &l->busy_timeout_ms)) != PX_OK)
        return rc;
    route__pop(c, mark);
    return PX_OK;
}

static px_err read_admin(route_ctx *c, const json_t *root, struct route_config *cfg)
{
    const json_t *v = json_object_get(root, "admin");
    if (v == NULL)
        return PX_OK;
    size_t mark = route__push_key(c, "admin");
    px_err rc = route__check_object(c, v, admin_keys);
    if (rc != PX_OK)
        return rc;
    if ((rc = route__get_ip(c, v, "listen", false, "127.0.0.1", &cfg->admin.listen)) != PX_OK)
        return rc;
    if ((rc = route__get_port(c, v, "port", true, 0, &cfg->admin.port)) != PX_OK)
        return rc;
    cfg->has_admin = true;
    route__pop(c, mark);
    return PX_OK;
}

static px_err read_limits(route_ctx *c, const json_t *root, route_limits *l)
{
    const json_t *v = json_object_get(root, "limits");
    size_t mark = route__push_key(c, "limits");
    px_err rc = PX_OK;
    if (v != NULL && (rc = route__check_object(c, v, limits_keys)) != PX_OK)
        return rc;
    /* Absent, every limit takes its default: json_object_get on NULL finds nothing. */
    if ((rc = route__get_u32(c, v, "max_connections", false, 1, 1000000, 4096,
                             &l->max_connections)) != PX_OK ||
        (rc = route__get_u32(c, v, "max_connections_per_peer", false, 1, 1000000, 256,
                             &l->max_connections_per_peer)) != PX_OK ||
        (rc = route__get_uint(c, v, "max_message_bytes", false, 1024, 1u << 30, 16u << 20,
                              &l->max_message_bytes)) != PX_OK ||
        (rc = route__get_u32(c, v, "frame_deadline_ms", false, 1, MAX_TIMEOUT, 10000,
                             &l->frame_deadline_ms)) != PX_OK ||
        (rc = route__get_u32(c, v, "idle_timeout_ms", false, 1, MAX_TIMEOUT, 60000,
                             &l->idle_timeout_ms)) != PX_OK ||
        (rc = route__get_uint(c, v, "inflight_bytes", false, 1024, 1ull << 36, 256u << 20,
                              &l->inflight_bytes)) != PX_OK ||
        (rc = route__get_u32(c, v, "ack_write_timeout_ms", false, 1, MAX_TIMEOUT, 10000,
                             &l->ack_write_timeout_ms)) != PX_OK ||
        (rc = route__get_u32(c, v, "drain_timeout_ms", false, 1, MAX_TIMEOUT, 30000,
                             &l->drain_timeout_ms)) != PX_OK)
        return rc;
    if (l->max_connections_per_peer > l->max_connections)
        return route__fail_key(c, "max_connections_per_peer", "%u exceeds max_connections (%u)",
                               l->max_connections_per_peer, l->max_connections);
    if (l->max_message_bytes > l->inflight_bytes)
        return route__fail_key(c, "inflight_bytes",
                               "%llu is less than max_message_bytes (%llu): such a message "
                               "could never be read",
                               (unsigned long long)l->inflight_bytes,
                               (unsigned long long)l->max_message_bytes);
    route__pop(c, mark);
    return PX_OK;
}

static px_err read_upstream(route_ctx *c, const json_t *v, struct route_config *cfg, size_t i)
{
    route_upstream *u = &cfg->upstreams[i];
    px_err rc = route__check_object(c, v, upstream_keys);
    if (rc != PX_OK)
        return rc;
    if ((rc = route__get_name(c, v, "name", true, NULL, &u->name)) != PX_OK)
        return rc;
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->upstreams[j].name, u->name) == 0)
            return route__fail_key(
                c, "name", "duplicate upstream name \"%s\" (also upstreams[%zu])", u->name, j);
    if ((rc = route__get_host(c, v, "host", &u->host)) != PX_OK ||
        (rc = route__get_port(c, v, "port", true, 0, &u->port)) != PX_OK ||
        (rc = route__get_u32(c, v, "pool", false, 1, 64, 1, &u->pool)) != PX_OK ||
        (rc = route__get_u32(c, v, "connect_timeout_ms", false, 1, MAX_TIMEOUT, 3000,
                             &u->connect_timeout_ms)) != PX_OK ||
        (rc = route__get_u32(c, v, "ack_timeout_ms", false, 1, MAX_TIMEOUT, 10000,
                             &u->ack_timeout_ms)) != PX_OK ||
        (rc = route__get_bool(c, v, "require_msa2_echo", true, &u->require_msa2_echo)) != PX_OK ||
        (rc = route__get_u32(c, v, "reconnect_min_ms", false, 1, MAX_TIMEOUT, 100,
                             &u->reconnect_min_ms)) != PX_OK ||
        (rc = route__get_u32(c, v, "reconnect_max_ms", false, 1, MAX_TIMEOUT, 5000,
                             &u->reconnect_max_ms)) != PX_OK ||
        (rc = route__get_u32(c, v, "breaker_failures", false, 0, 10000, 5, &u->breaker_failures)) !=
            PX_OK ||
        (rc = route__get_u32(c, v, "breaker_open_ms", false, 1, MAX_TIMEOUT, 5000,
                             &u->breaker_open_ms)) != PX_OK)
        return rc;
    if (u->reconnect_min_ms > u->reconnect_max_ms)
        return route__fail_key(c, "reconnect_min_ms", "%u exceeds reconnect_max_ms (%u)",
                               u->reconnect_min_ms, u->reconnect_max_ms);
    return PX_OK;
}

static px_err read_upstreams(route_ctx *c, const json_t *root, struct route_config *cfg)
{
    const json_t *v = json_object_get(root, "upstreams");
    size_t mark = route__push_key(c, "upstreams");
    if (v == NULL)
        return route__fail(c, "missing (expected an array of upstreams)");
    if (!json_is_array(v))
        return route__fail(c, "expected an array of upstreams, got %s", route__json_kind(v));
    size_t n = json_array_size(v);
    if (n == 0)
        return route__fail(c, "expected at least one upstream");
    if (n > MAX_UPSTREAMS)
        return route__fail(c, "too many upstreams (%zu, at most %d)", n, MAX_UPSTREAMS);
    cfg->upstreams = px_calloc(n, sizeof(*cfg->upstreams));
    if (cfg->upstreams == NULL)
        return px_error_set(c->err, PX_ERR_NOMEM, "out of memory reading the configuration");
    cfg->upstream_count = n;
    for (size_t i = 0; i < n; i++) {
        size_t imark = route__push_index(c, i);
        px_err rc = read_upstream(c, json_array_get(v, i), cfg, i);
        if (rc != PX_OK)
            return rc;
        route__pop(c, imark);
    }
    route__pop(c, mark);
    return PX_OK;
}

/* Validates the parsed tree into cfg. */
static px_err build(route_ctx *c, struct route_config *cfg)
{
    const json_t *root = cfg->root;
    px_err rc = route__check_object(c, root, top_keys);
    if (rc != PX_OK)
        return rc;
    if ((rc = route__get_name(c, root, "instance", true, NULL, &cfg->instance)) != PX_OK ||
        (rc = read_ledger(c, root, &cfg->ledger)) != PX_OK ||
        (rc = read_admin(c, root, cfg)) != PX_OK ||
        (rc = read_limits(c, root, &cfg->limits)) != PX_OK ||
        (rc = read_upstreams(c, root, cfg)) != PX_OK ||
        (rc = route__read_feeds(c, json_object_get(root, "feeds"), cfg)) != PX_OK)
        return rc;
    if (cfg->has_admin) {
        for (size_t i = 0; i < cfg->feed_count; i++) {
            if (cfg->feeds[i].port != cfg->admin.port)
                continue;
            size_t mark = route__push_key(c, "admin");
            rc = route__fail_key(c, "port", "port %u is already used by feeds[%zu] (\"%s\")",
                                 (unsigned)cfg->admin.port, i, cfg->feeds[i].name);
            route__pop(c, mark);
            return rc;
        }
    }
    return PX_OK;
}

px_err route_config_parse(const char *json, size_t len, route_config_t **out, px_error *err)
{
    *out = NULL;
    if (len > ROUTE_CONFIG_MAX_BYTES)
        return px_error_set(err, PX_ERR_TOO_LARGE,
                            "the configuration is %zu bytes, more than the %u accepted", len,
                            ROUTE_CONFIG_MAX_BYTES);
    struct route_config *cfg = px_calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "out of memory reading the configuration");
    atomic_init(&cfg->refs, 1);
    px_err rc = PX_OK;
    json_error_t jerr;
    /* Duplicate keys are refused: the second would silently win otherwise. */
    cfg->root = json_loadb(json == NULL ? "" : json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (cfg->root == NULL) {
        rc = px_error_setd(err, PX_ERR_PARSE, jerr.line, "%d:%d: %s", jerr.line, jerr.column,
                           jerr.text);
        goto out_free;
    }
    route_ctx c = {.err = err, .len = 0, .path = {0}};
    rc = build(&c, cfg);
    if (rc != PX_OK)
        goto out_free;
    cfg->version_id = px_fnv1a64(json, len);
    int n = snprintf(cfg->version, sizeof(cfg->version), "%016llx",
                     (unsigned long long)cfg->version_id);
    if (n != 16) {
        rc = px_error_set(err, PX_ERR_INVAL, "cannot format the configuration version");
        goto out_free;
    }
    cfg->generation = atomic_fetch_add(&generation_counter, 1) + 1;
    *out = cfg;
    return PX_OK;
out_free:
    route_config_destroy(cfg);
    return rc;
}

px_err route_config_load(const char *path, route_config_t **out, px_error *err)
{
    *out = NULL;
    char *data = NULL;
    px_err rc = PX_OK;
    char why[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (strerror_r(e, why, sizeof(why)) != 0)
            why[0] = '\0';
        return px_error_setd(err, PX_ERR_IO, e, "cannot open: %s", why);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        if (strerror_r(e, why, sizeof(why)) != 0)
            why[0] = '\0';
        rc = px_error_setd(err, PX_ERR_IO, e, "cannot stat: %s", why);
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = px_error_set(err, PX_ERR_IO, "not a regular file");
        goto out_close;
    }
    if (st.st_mode & S_IWOTH) {
        rc = px_error_set(err, PX_ERR_IO,
                          "the file is writable by every user; remove that (chmod o-w)");
        goto out_close;
    }
    if ((uint64_t)st.st_size > ROUTE_CONFIG_MAX_BYTES) {
        rc = px_error_set(err, PX_ERR_TOO_LARGE,
                          "the file is %lld bytes, more than the %u "
                          "accepted",
                          (long long)st.st_size, ROUTE_CONFIG_MAX_BYTES);
        goto out_close;
    }
    size_t size = (size_t)st.st_size;
    data = px_malloc(size + 1);
    if (data == NULL) {
        rc = px_error_set(err, PX_ERR_NOMEM, "out of memory reading the configuration");
        goto out_close;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            if (strerror_r(e, why, sizeof(why)) != 0)
                why[0] = '\0';
            rc = px_error_setd(err, PX_ERR_IO, e, "cannot read: %s", why);
            goto out_free;
        }
        if (r == 0)
            break; /* the file shrank while we read it: parse what is there */
        got += (size_t)r;
    }
    rc = route_config_parse(data, got, out, err);
out_free:
    px_free(data);
out_close:
    close(fd);
    return rc;
}

route_config_t *route_config_ref(route_config_t *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void route_config_destroy(route_config_t *cfg)
{
    if (cfg == NULL)
        return;
    if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; cfg->feeds != NULL && i < cfg->feed_count; i++)
        route__feed_free(&cfg->feeds[i]);
    px_free(cfg->feeds);
    px_free(cfg->upstreams);
    json_decref(cfg->root);
    px_free(cfg);
}

const char *route_config_instance(const route_config_t *cfg)
{
    return cfg->instance;
}

const char *route_config_version(const route_config_t *cfg)
{
    return cfg->version;
}

uint64_t route_config_version_id(const route_config_t *cfg)
{
    return cfg->version_id;
}

uint64_t route_config_generation(const route_config_t *cfg)
{
    return cfg->generation;
}

const route_ledger *route_config_ledger(const route_config_t *cfg)
{
    return &cfg->ledger;
}

const route_admin *route_config_admin(const route_config_t *cfg)
{
    return cfg->has_admin ? &cfg->admin : NULL;
}

const route_limits *route_config_limits(const route_config_t *cfg)
{
    return &cfg->limits;
}

const route_upstream *route_config_upstreams(const route_config_t *cfg, size_t *count)
{
    *count = cfg->upstream_count;
    return cfg->upstreams;
}

const route_feed *route_config_feeds(const route_config_t *cfg, size_t *count)
{
    *count = cfg->feed_count;
    return cfg->feeds;
}

const route_upstream *route_config_upstream_find(const route_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->upstream_count; i++)
        if (strcmp(cfg->upstreams[i].name, name) == 0)
            return &cfg->upstreams[i];
    return NULL;
}

const route_feed *route_config_feed_find(const route_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->feed_count; i++)
        if (strcmp(cfg->feeds[i].name, name) == 0)
            return &cfg->feeds[i];
    return NULL;
}

size_t route_config_route_count(const route_config_t *cfg)
{
    return cfg->route_count;
}
