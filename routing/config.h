/* parallax's configuration: one JSON file describing the instance, its ledger, its admin
 * endpoint, global limits, the legacy upstreams and the feeds (listeners) with their routes
 * and filters. Every key is documented in examples/README.md.
 *
 * Loading validates everything at once: types, ranges, enumerations, references between
 * sections, field paths and time-zone names. Unknown keys are errors, so a typo never passes
 * silently. Every error message starts with the key path of the offending value
 * ("feeds[1].routes[0].match.PID-3.x: bad path: …"); JSON syntax errors start with
 * "line:column". Messages never hold message data (there is none in a config) and name what
 * was expected.
 *
 * A loaded configuration is immutable: every struct reached through it is read-only and may be
 * read from any thread without locking. It is reference counted (atomically) so that the
 * proxy can keep an old generation alive for the messages still in flight after a reload.
 * All `const char *` and struct pointers reached from a route_config_t are borrowed from it
 * and stay valid while the caller holds a reference. */
#ifndef PX_ROUTING_CONFIG_H
#define PX_ROUTING_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "hl7/ack.h"
#include "hl7/hl7.h"

/* The largest configuration file accepted. */
#define ROUTE_CONFIG_MAX_BYTES (4u * 1024u * 1024u)

/* Names (instance, feeds, upstreams, routes, profiles): 1 to this many bytes of
 * [A-Za-z0-9._-]. */
#define ROUTE_NAME_MAX 64

/* How the sender is answered (ARCHITECTURE.md, data flow step 7). */
typedef enum route_ack_policy {
    ROUTE_ACK_LEGACY = 0, /* relay the EHR's ACK unchanged (default) */
    ROUTE_ACK_COMMIT,     /* ACK once durable; both legs delivered from the outbox */
    ROUTE_ACK_FHIR,       /* answer from the FHIR write (after cutover) */
    ROUTE_ACK_BOTH,       /* AA only when both sides accepted (test feeds) */
} route_ack_policy;

/* What happens while the legacy upstream is down or unreachable. */
typedef enum route_upstream_down {
    ROUTE_DOWN_HOLD = 0, /* no ACK, stop reading, close after hold_close_after_ms (default) */
    ROUTE_DOWN_QUEUE,    /* store and forward, as the commit policy */
    ROUTE_DOWN_NAK,      /* AR / CE with ERR 207 */
} route_upstream_down;

/* The legs a message is delivered to (a bit mask). */
enum {
    ROUTE_LEG_LEGACY = 1u << 0, /* the feed's MLLP upstream */
    ROUTE_LEG_FHIR = 1u << 1,   /* the FHIR R4 stack */
};

/* Which messages keep their relative order on the legs. */
typedef enum route_ordering_kind {
    ROUTE_ORDER_CONNECTION = 0, /* FIFO per sender connection (default) */
    ROUTE_ORDER_FEED,           /* FIFO across the whole feed */
    ROUTE_ORDER_KEY,            /* FIFO per value of a field path (e.g. PID-3.1) */
} route_ordering_kind;

/* An ordering rule. key and key_text are meaningful only for ROUTE_ORDER_KEY. */
typedef struct route_ordering {
    route_ordering_kind kind;
    hl7_path key;
    const char *key_text; /* the path as written ("PID-3.1"); NULL unless kind is KEY */
} route_ordering;

/* The settings a feed gives its messages, refined per route. */
typedef struct route_settings {
    hl7_ack_mode ack_mode;                /* default original */
    route_ack_policy ack_policy;          /* default legacy */
    route_upstream_down on_upstream_down; /* default hold */
    unsigned legs;                        /* ROUTE_LEG_* mask, never 0 */
    route_ordering ordering;              /* default connection */
    const char *profile;                  /* conversion profile id, default "default" */
} route_settings;

/* ledger.synchronous */
typedef enum route_ledger_sync {
    ROUTE_SYNC_FULL = 0, /* default: a commit survives power loss */
    ROUTE_SYNC_NORMAL,   /* faster; a power cut may roll back the last commits */
} route_ledger_sync;

typedef struct route_ledger {
    const char *path; /* absolute, or relative without ".." components */
    route_ledger_sync synchronous;
    uint32_t journal_size_limit_mb; /* default 64 */
    uint32_t busy_timeout_ms;       /* default 5000 */
} route_ledger;

typedef struct route_admin {
    const char *listen; /* an IP address literal, default "127.0.0.1" */
    uint16_t port;
} route_admin;

/* Process-wide limits. Invariants (checked at load): max_connections_per_peer <=
 * max_connections, max_message_bytes <= inflight_bytes, and every feed's cap <=
 * inflight_bytes. */
typedef struct route_limits {
    uint32_t max_connections;          /* default 4096 */
    uint32_t max_connections_per_peer; /* default 256 */
    uint64_t max_message_bytes;        /* default 16 MiB; feeds may override */
    uint32_t frame_deadline_ms;        /* whole-frame deadline, default 10000 */
    uint32_t idle_timeout_ms;          /* default 60000 */
    uint64_t inflight_bytes;           /* global budget of bytes in flight, default 256 MiB */
    uint32_t ack_write_timeout_ms;     /* default 10000 */
    uint32_t drain_timeout_ms;         /* graceful stop bound, default 30000 */
} route_limits;

/* A legacy MLLP upstream. reconnect_min_ms <= reconnect_max_ms. */
typedef struct route_upstream {
    const char *name;
    const char *host; /* a host name or an IP address literal */
    uint16_t port;
    uint32_t pool;               /* connections, 1..64, default 1 */
    uint32_t connect_timeout_ms; /* default 3000 */
    uint32_t ack_timeout_ms;     /* default 10000 */
    bool require_msa2_echo;      /* default true: an ACK whose MSA-2 differs is not relayed */
    uint32_t reconnect_min_ms;   /* default 100 */
    uint32_t reconnect_max_ms;   /* default 5000 */
    uint32_t breaker_failures;   /* consecutive failures that open the breaker, 0 = never;
                                    default 5 */
    uint32_t breaker_open_ms;    /* default 5000 */
} route_upstream;

/* Opaque parts of a feed, read through routing/route.h. */
typedef struct route_rule route_rule;
typedef struct route_filter route_filter;

/* A feed: one listener and what happens to its messages. */
typedef struct route_feed {
    const char *name;
    const char *listen; /* an IP address literal */
    uint16_t port;
    const route_upstream *upstream; /* never NULL */
    size_t upstream_index;          /* its index in route_config_upstreams() */
    size_t index;                   /* this feed's index in route_config_feeds() */
    route_settings defaults;        /* the default route: used when no route matches */
    uint32_t hold_close_after_ms;   /* on_upstream_down hold: close after, default 30000 */
    const char *charset;            /* MSH-18 to assume when empty, default "UNICODE UTF-8" */
    const char *timezone;           /* IANA zone for offset-less times, default "UTC" */
    uint32_t retransmit_window;     /* entries in the dedupe window, default 10000 */
    uint64_t max_message_bytes;     /* this feed's frame cap (its own or limits') */
    size_t route_count;
    const route_rule *routes; /* route_count rules, in match order */
    size_t filter_count;
    const route_filter *filters; /* filter_count filters, in evaluation order */
} route_feed;

typedef struct route_config route_config_t;

/* Reads, parses and validates the file at path (borrowed). The file must be a regular file,
 * at most ROUTE_CONFIG_MAX_BYTES, and not writable by others. On success *out holds one
 * reference (owned: release with route_config_destroy). err->msg does not repeat the file
 * name (callers prefix it). Returns PX_ERR_IO (cannot open/read; errno in err->detail),
 * PX_ERR_TOO_LARGE, PX_ERR_PARSE (JSON syntax: "line:column: …", line in err->detail),
 * PX_ERR_INVAL (validation: "key.path: …"), PX_ERR_NOMEM. *out is NULL on failure. */
px_err route_config_load(const char *path, route_config_t **out, px_error *err);

/* As route_config_load for len bytes of JSON at json (borrowed for the call; need not be
 * NUL-terminated). */
px_err route_config_parse(const char *json, size_t len, route_config_t **out, px_error *err);

/* Adds a reference (atomic; any thread) and returns cfg. */
route_config_t *route_config_ref(route_config_t *cfg);

/* Drops a reference; the last one frees the configuration. NULL is a no-op. */
void route_config_destroy(route_config_t *cfg);

/* The instance id ("px-1"). */
const char *route_config_instance(const route_config_t *cfg);

/* The version: the 64-bit FNV-1a hash of the file's bytes as 16 lower-case hex digits.
 * The same bytes always give the same version; record it with every message. */
const char *route_config_version(const route_config_t *cfg);

/* The same version as a number (the hash itself), for integer columns: stable across
 * restarts, so a stored message names the file it was processed under. */
uint64_t route_config_version_id(const route_config_t *cfg);

/* The load generation: 1 for the first configuration loaded by this process, then one more
 * for each later successful load or parse (a reload counter; not stable across restarts). */
uint64_t route_config_generation(const route_config_t *cfg);

const route_ledger *route_config_ledger(const route_config_t *cfg);

/* The admin endpoint, or NULL when the config has no "admin" section (no admin server). */
const route_admin *route_config_admin(const route_config_t *cfg);

const route_limits *route_config_limits(const route_config_t *cfg);

/* The arrays of upstreams and feeds (count never 0 in a loaded config), in file order. */
const route_upstream *route_config_upstreams(const route_config_t *cfg, size_t *count);
const route_feed *route_config_feeds(const route_config_t *cfg, size_t *count);

/* Lookup by name; NULL when there is none. */
const route_upstream *route_config_upstream_find(const route_config_t *cfg, const char *name);
const route_feed *route_config_feed_find(const route_config_t *cfg, const char *name);

/* The number of routes over all feeds (not counting the feeds' default routes). */
size_t route_config_route_count(const route_config_t *cfg);

/* Stable names of enumeration values, as written in the config ("legacy", "from-MSH",
 * "hold", "connection", "full"); never NULL ("?" for an out-of-range value). */
const char *route_ack_policy_name(route_ack_policy p);
const char *route_ack_mode_name(hl7_ack_mode m);
const char *route_upstream_down_name(route_upstream_down d);
const char *route_ordering_kind_name(route_ordering_kind k);
const char *route_ledger_sync_name(route_ledger_sync s);

#endif
