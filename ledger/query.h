/* Read-only queries for reviewers (`parallax ledger summary|divergences`): a separate
 * read-only connection that never writes and never blocks the writer (WAL readers do not
 * take write locks). Every filter value is a bound parameter, never SQL text, so
 * `--type "%"` matches the type "%" and nothing else (RELIABILITY D7). */
#ifndef PX_LEDGER_QUERY_H
#define PX_LEDGER_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/str.h"

typedef struct ledger_reader ledger_reader_t;

/* Opens the ledger at path (borrowed) read-only. Refuses a missing file, a symlink and a
 * file that is not a ledger of this schema version (run `parallax serve` once to migrate
 * an older one). *out is owned by the caller (ledger_reader_close). Returns PX_ERR_IO,
 * PX_ERR_INVAL, PX_ERR_DB, PX_ERR_NOMEM. */
px_err ledger_reader_open(const char *path, ledger_reader_t **out, px_error *err);

/* NULL is a no-op. */
void ledger_reader_close(ledger_reader_t *r);

/* Filters; an unset field matches everything. Views are borrowed for the call. Times are
 * on the message's received_at: since inclusive, until exclusive. type is "ORU" or
 * "ORU^R01"; sender is "APP" (MSH-3) or "APP^FACILITY" (MSH-3 and MSH-4). kind applies
 * to divergence reads only and must be one of the stable kind names. */
typedef struct ledger_filter {
    bool has_since;
    int64_t since_ms;
    bool has_until;
    int64_t until_ms;
    px_str feed;
    px_str type;
    px_str sender;
    px_str kind;
} ledger_filter;

/* What a summary count is grouped by. */
typedef enum ledger_summary_dim {
    LEDGER_SUM_TOTAL,      /* key empty: all messages matching the filter */
    LEDGER_SUM_FEED,       /* key: feed name */
    LEDGER_SUM_STATE,      /* key: received | rejected | filtered */
    LEDGER_SUM_TYPE,       /* key: "ORU^R01" */
    LEDGER_SUM_ACK,        /* key: the sender ACK code, "(none)" when no ACK is stored */
    LEDGER_SUM_LEG_STATE,  /* key: "legacy/delivered" */
    LEDGER_SUM_DIVERGENCE, /* key: divergence kind */
} ledger_summary_dim;

/* "total", "feed", "state", "type", "ack", "leg_state", "divergence". */
const char *ledger_summary_dim_name(ledger_summary_dim d);

/* Called once per (dimension, key) in dimension order, keys sorted; key is borrowed for
 * the call. A non-zero return stops the summary (ledger_summary then returns PX_OK). */
typedef int (*ledger_summary_cb)(void *arg, ledger_summary_dim dim, px_str key, int64_t count);

/* Counts messages by feed, state, type, sender ACK code, leg state and divergence kind.
 * Returns PX_ERR_INVAL (bad filter), PX_ERR_DB. */
px_err ledger_summary(ledger_reader_t *r, const ledger_filter *f, ledger_summary_cb cb, void *arg,
                      px_error *err);

/* One divergence with its message; views borrowed for the callback only. */
typedef struct ledger_divergence_row {
    int64_t id;
    int64_t message;
    int64_t detected_at_ms;
    int64_t received_at_ms;
    px_str kind;
    px_str detail; /* JSON text */
    px_str feed;
    px_str type;
    px_str trigger;
    px_str sending_app;
    px_str sending_facility;
    px_str control_id;
    px_str resolution; /* the latest resolution's reason code; empty while open */
} ledger_divergence_row;

typedef int (*ledger_divergence_cb)(void *arg, const ledger_divergence_row *row);

/* Lists divergences matching f in id order, at most limit (0: no limit). A non-zero return
 * from cb stops the listing. Returns PX_ERR_INVAL (bad filter, unknown kind), PX_ERR_DB. */
px_err ledger_divergences(ledger_reader_t *r, const ledger_filter *f, size_t limit,
                          ledger_divergence_cb cb, void *arg, px_error *err);

/* Parses a time for a filter: unix milliseconds ("1764064800000"), a date
 * ("2026-11-25", midnight UTC) or an ISO 8601 date-time with a zone
 * ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00.250+01:00", seconds optional).
 * Returns PX_ERR_PARSE with a message that says what is accepted. */
px_err ledger_time_parse(px_str s, int64_t *out_ms, px_error *err);

#endif
