/* parallax ledger summary|divergences: read-only reviewer queries over the ledger. */
#include "cli/commands.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/error.h"
#include "common/str.h"
#include "ledger/ledger.h"
#include "ledger/query.h"
#include "routing/config.h"

static const char ledger_usage[] =
    "usage: parallax ledger summary [--db PATH | -c CONFIG] [--since T] [--until T]\n"
    "                               [--feed F]\n"
    "       parallax ledger divergences [--db PATH | -c CONFIG] [--since T] [--until T]\n"
    "                               [--kind K] [--type T] [--sender S] [--feed F]\n"
    "                               [--limit N] [--json]\n"
    "\n"
    "Reads the ledger through a read-only connection (it never blocks the running proxy).\n"
    "summary counts the messages by feed, state, type, sender ACK code, leg state and\n"
    "divergence kind; divergences lists them with their message, oldest first.\n"
    "\n"
    "  --db PATH      the ledger database file\n"
    "  -c, --config CONFIG  take the ledger path from this configuration file\n"
    "  --since T      messages received at or after T\n"
    "  --until T      messages received before T\n"
    "                 T: 2026-11-25, 2026-11-25T10:00:00Z, 2026-11-25T11:00+01:00 or\n"
    "                 unix milliseconds\n"
    "  --feed F       one feed (listener) name\n"
    "  --kind K       outcome_mismatch, one_side_failed, unknown_outcome, conversion_gap,\n"
    "                 field_mismatch, ack_anomaly or duplicate\n"
    "  --type T       message type: ORU or ORU^R01\n"
    "  --sender S     sending application (MSH-3), or APP^FACILITY (MSH-3 and MSH-4)\n"
    "  --limit N      at most N divergences\n"
    "  --json         one JSON array instead of a table\n"
    "  -h, --help     this text\n"
    "\n"
    "Filter values are matched literally (no wildcards).\n"
    "exit codes: 0 ok, 2 usage (bad flag or value), 3 ledger or config unreadable,\n"
    "            4 invalid configuration, 5 ledger error\n";

typedef struct args {
    const char *db;
    const char *config;
    ledger_filter filter;
    size_t limit;
    bool json;
} args;

static int usage_error(const char *fmt, ...) PX_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("parallax ledger: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see parallax ledger --help)\n", stderr);
    return PX_EXIT_USAGE;
}

/* Parses the options after the subcommand. divergences enables the divergence-only flags. */
static int parse_args(int argc, char **argv, bool divergences, args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 2; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) {
            fputs(ledger_usage, stdout);
            return -1;
        }
        if (divergences && strcmp(flag, "--json") == 0) {
            a->json = true;
            continue;
        }
        bool known = strcmp(flag, "--db") == 0 || strcmp(flag, "-c") == 0 ||
                     strcmp(flag, "--config") == 0 || strcmp(flag, "--since") == 0 ||
                     strcmp(flag, "--until") == 0 || strcmp(flag, "--feed") == 0;
        bool div_only = strcmp(flag, "--kind") == 0 || strcmp(flag, "--type") == 0 ||
                        strcmp(flag, "--sender") == 0 || strcmp(flag, "--limit") == 0;
        if (!known && !(divergences && div_only))
            return usage_error("unexpected argument '%s'%s", flag,
                               div_only ? " (only for divergences)" : "");
        if (i + 1 >= argc)
            return usage_error("%s needs a value", flag);
        const char *value = argv[++i];
        px_str v = px_str_from_cstr(value);
        if (v.len == 0)
            return usage_error("%s: the value is empty", flag);
        px_error err;
        if (strcmp(flag, "--db") == 0) {
            a->db = value;
        } else if (strcmp(flag, "-c") == 0 || strcmp(flag, "--config") == 0) {
            a->config = value;
        } else if (strcmp(flag, "--since") == 0) {
            if (ledger_time_parse(v, &a->filter.since_ms, &err) != PX_OK)
                return usage_error("--since: %s", err.msg);
            a->filter.has_since = true;
        } else if (strcmp(flag, "--until") == 0) {
            if (ledger_time_parse(v, &a->filter.until_ms, &err) != PX_OK)
                return usage_error("--until: %s", err.msg);
            a->filter.has_until = true;
        } else if (strcmp(flag, "--feed") == 0) {
            a->filter.feed = v;
        } else if (strcmp(flag, "--kind") == 0) {
            ledger_divergence_kind k;
            if (ledger_divergence_kind_parse(v, &k) != PX_OK)
                return usage_error("--kind: '%s' is not a divergence kind (outcome_mismatch, "
                                   "one_side_failed, unknown_outcome, conversion_gap, "
                                   "field_mismatch, ack_anomaly, duplicate)",
                                   value);
            a->filter.kind = v;
        } else if (strcmp(flag, "--type") == 0) {
            a->filter.type = v;
        } else if (strcmp(flag, "--sender") == 0) {
            a->filter.sender = v;
        } else {
            uint64_t n;
            if (px_str_to_u64(v, 1000000000, &n) != PX_OK || n == 0)
                return usage_error("--limit: expected a count from 1 to 1000000000");
            a->limit = (size_t)n;
        }
    }
    if (a->db != NULL && a->config != NULL)
        return usage_error("give --db or -c, not both");
    if (a->db == NULL && a->config == NULL)
        return usage_error("missing --db PATH or -c CONFIG");
    if (a->filter.has_since && a->filter.has_until && a->filter.until_ms <= a->filter.since_ms)
        return usage_error("--until must be later than --since");
    return 0;
}

/* Opens the reader from --db, or from the ledger path in -c CONFIG. */
static int open_reader(const args *a, ledger_reader_t **out)
{
    route_config_t *cfg = NULL;
    const char *path = a->db;
    px_error err;
    px_error_clear(&err);
    if (a->config != NULL) {
        px_err rc = route_config_load(a->config, &cfg, &err);
        if (rc != PX_OK) {
            fprintf(stderr, "parallax ledger: %s: %s\n", a->config, err.msg);
            return rc == PX_ERR_IO      ? PX_EXIT_INPUT
                   : rc == PX_ERR_NOMEM ? PX_EXIT_RUNTIME
                                        : PX_EXIT_CONFIG;
        }
        path = route_config_ledger(cfg)->path;
    }
    px_err rc = ledger_reader_open(path, out, &err);
    int code = PX_EXIT_OK;
    if (rc != PX_OK) {
        fprintf(stderr, "parallax ledger: %s\n", err.msg);
        code = rc == PX_ERR_IO ? PX_EXIT_INPUT : PX_EXIT_RUNTIME;
    }
    route_config_destroy(cfg);
    return code;
}

/* Prints bytes from the ledger for a terminal: control characters become '?', so a stored
 * value cannot move the cursor or change colours. */
static void put_safe(FILE *out, px_str s, size_t max)
{
    size_t n = s.len < max ? s.len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
    }
    if (s.len > max)
        fputs("...", out);
}

static void format_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, size, "%" PRId64, ms);
        return;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* ---- summary ---- */

typedef struct summary_state {
    int last_dim;
} summary_state;

static int print_count(void *arg, ledger_summary_dim dim, px_str key, int64_t count)
{
    summary_state *s = arg;
    static const char *const titles[] = {
        [LEDGER_SUM_FEED] = "by feed",
        [LEDGER_SUM_STATE] = "by message state",
        [LEDGER_SUM_TYPE] = "by type",
        [LEDGER_SUM_ACK] = "by ACK code returned to the sender",
        [LEDGER_SUM_LEG_STATE] = "by leg state",
        [LEDGER_SUM_DIVERGENCE] = "by divergence kind",
    };
    if (dim == LEDGER_SUM_TOTAL) {
        printf("messages: %" PRId64 "\n", count);
        s->last_dim = (int)dim;
        return 0;
    }
    if ((int)dim != s->last_dim) {
        printf("%s:\n", titles[dim]);
        s->last_dim = (int)dim;
    }
    fputs("  ", stdout);
    put_safe(stdout, key, 60);
    int pad = 34 - (int)(key.len < 60 ? key.len : 63);
    printf("%*s %10" PRId64 "\n", pad > 0 ? pad : 1, "", count);
    return 0;
}

static int run_summary(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, false, &a);
    if (rc != 0)
        return rc < 0 ? PX_EXIT_OK : rc;
    ledger_reader_t *r = NULL;
    rc = open_reader(&a, &r);
    if (rc != PX_EXIT_OK)
        return rc;
    summary_state s = {.last_dim = -1};
    px_error err;
    px_error_clear(&err);
    px_err e = ledger_summary(r, &a.filter, print_count, &s, &err);
    ledger_reader_close(r);
    if (e != PX_OK) {
        fprintf(stderr, "parallax ledger summary: %s\n", err.msg);
        return e == PX_ERR_INVAL ? PX_EXIT_USAGE : PX_EXIT_RUNTIME;
    }
    return PX_EXIT_OK;
}

/* ---- divergences ---- */

/* A JSON string of s; bytes that are not UTF-8 (Latin-1 HL7 text) become '?'. */
static json_t *jstr(px_str s)
{
    json_t *j = json_stringn(s.ptr != NULL ? s.ptr : "", s.len);
    if (j != NULL || s.len == 0)
        return j;
    char *copy = malloc(s.len);
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < s.len; i++)
        copy[i] = (unsigned char)s.ptr[i] < 0x80 ? s.ptr[i] : '?';
    j = json_stringn(copy, s.len);
    free(copy);
    return j;
}

static json_t *jtime(int64_t ms)
{
    char buf[96];
    format_time(ms, buf, sizeof(buf));
    return json_string(buf);
}

typedef struct div_state {
    bool json;
    size_t n;
    bool failed;
} div_state;

static int print_divergence(void *arg, const ledger_divergence_row *row)
{
    div_state *s = arg;
    if (s->json) {
        json_t *detail = json_loadb(row->detail.ptr != NULL ? row->detail.ptr : "", row->detail.len,
                                    JSON_DECODE_ANY, NULL);
        if (detail == NULL)
            detail = jstr(row->detail);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(row->id));
        json_object_set_new(o, "message", json_integer(row->message));
        json_object_set_new(o, "kind", jstr(row->kind));
        json_object_set_new(o, "detected_at", jtime(row->detected_at_ms));
        json_object_set_new(o, "received_at", jtime(row->received_at_ms));
        json_object_set_new(o, "feed", jstr(row->feed));
        json_object_set_new(o, "type", jstr(row->type));
        json_object_set_new(o, "trigger", jstr(row->trigger));
        json_object_set_new(o, "sending_app", jstr(row->sending_app));
        json_object_set_new(o, "sending_facility", jstr(row->sending_facility));
        json_object_set_new(o, "control_id", jstr(row->control_id));
        json_object_set_new(o, "resolution",
                            px_str_empty(row->resolution) ? json_null() : jstr(row->resolution));
        json_object_set_new(o, "detail", detail);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (text == NULL) {
            s->failed = true;
            return 1;
        }
        printf("%s  %s", s->n == 0 ? "" : ",\n", text);
        free(text);
        s->n++;
        return 0;
    }
    if (s->n == 0)
        printf("%-8s %-10s %-24s %-10s %-9s %-16s %-14s %-17s %-10s %s\n", "ID", "MESSAGE",
               "RECEIVED", "FEED", "TYPE", "SENDER", "CONTROL ID", "KIND", "RESOLVED", "DETAIL");
    char when[96];
    format_time(row->received_at_ms, when, sizeof(when));
    printf("%-8" PRId64 " %-10" PRId64 " %-24s ", row->id, row->message, when);
    char cell[64];
    px_str cells[] = {row->feed,       PX_STR_NULL, PX_STR_NULL,
                      row->control_id, row->kind,   row->resolution};
    int widths[] = {10, 9, 16, 14, 17, 10};
    for (size_t c = 0; c < sizeof(cells) / sizeof(cells[0]); c++) {
        px_str v = cells[c];
        if (c == 1) {
            snprintf(cell, sizeof(cell), "%.*s%s%.*s", (int)row->type.len,
                     row->type.ptr != NULL ? row->type.ptr : "", row->trigger.len ? "^" : "",
                     (int)row->trigger.len, row->trigger.ptr != NULL ? row->trigger.ptr : "");
            v = px_str_from_cstr(cell);
        } else if (c == 2) {
            snprintf(cell, sizeof(cell), "%.*s%s%.*s", (int)row->sending_app.len,
                     row->sending_app.ptr != NULL ? row->sending_app.ptr : "",
                     row->sending_facility.len ? "^" : "", (int)row->sending_facility.len,
                     row->sending_facility.ptr != NULL ? row->sending_facility.ptr : "");
            v = px_str_from_cstr(cell);
        } else if (c == 5 && v.len == 0) {
            v = PX_LIT("-");
        }
        put_safe(stdout, v, (size_t)widths[c]);
        int pad = widths[c] - (int)(v.len < (size_t)widths[c] ? v.len : (size_t)widths[c] + 3);
        printf("%*s ", pad > 0 ? pad : 0, "");
    }
    put_safe(stdout, row->detail, 200);
    fputc('\n', stdout);
    s->n++;
    return 0;
}

static int run_divergences(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, true, &a);
    if (rc != 0)
        return rc < 0 ? PX_EXIT_OK : rc;
    ledger_reader_t *r = NULL;
    rc = open_reader(&a, &r);
    if (rc != PX_EXIT_OK)
        return rc;
    div_state s = {.json = a.json};
    if (a.json)
        fputs("[\n", stdout);
    px_error err;
    px_error_clear(&err);
    px_err e = ledger_divergences(r, &a.filter, a.limit, print_divergence, &s, &err);
    ledger_reader_close(r);
    if (a.json)
        fputs(s.n == 0 ? "]\n" : "\n]\n", stdout);
    else if (e == PX_OK && s.n == 0)
        puts("no divergences match");
    if (s.failed) {
        fprintf(stderr, "parallax ledger divergences: out of memory writing JSON\n");
        return PX_EXIT_RUNTIME;
    }
    if (e != PX_OK) {
        fprintf(stderr, "parallax ledger divergences: %s\n", err.msg);
        return e == PX_ERR_INVAL ? PX_EXIT_USAGE : PX_EXIT_RUNTIME;
    }
    return PX_EXIT_OK;
}

int cmd_ledger(int argc, char **argv)
{
    if (argc < 2) {
        fputs(ledger_usage, stderr);
        return PX_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(ledger_usage, stdout);
        return PX_EXIT_OK;
    }
    if (strcmp(argv[1], "summary") == 0)
        return run_summary(argc, argv);
    if (strcmp(argv[1], "divergences") == 0)
        return run_divergences(argc, argv);
    fprintf(stderr, "parallax ledger: unknown subcommand '%s' (summary, divergences)\n", argv[1]);
    return PX_EXIT_USAGE;
}
