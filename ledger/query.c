/* Read-only reviewer queries. The WHERE clauses are assembled from constant fragments of
 * this file only; every value a user typed is bound as a parameter. */
#include "ledger/query.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "common/alloc.h"
#include "ledger/internal.h"
#include "ledger/ledger.h"

struct ledger_reader {
    sqlite3 *db;
};

px_err ledger_reader_open(const char *path, ledger_reader_t **out, px_error *err)
{
    *out = NULL;
    px_err e = ledger__check_existing(path, err);
    if (e != PX_OK)
        return e;
    ledger_reader_t *r = px_calloc(1, sizeof(*r));
    if (r == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "no memory for the ledger reader");
    int rc = sqlite3_open_v2(
        path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        e = px_error_setd(err, PX_ERR_DB, rc, "cannot open ledger %s: %s", path,
                          r->db != NULL ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
        goto out_close;
    }
    sqlite3_extended_result_codes(r->db, 1);
    sqlite3_busy_timeout(r->db, 5000);
    e = ledger__exec(r->db, "PRAGMA query_only = ON", err);
    if (e != PX_OK)
        goto out_close;
    int64_t version = 0;
    e = ledger__query_int(r->db, "PRAGMA user_version", &version, err);
    if (e != PX_OK)
        goto out_close;
    if (version == 0) {
        e = px_error_set(err, PX_ERR_INVAL, "%s is not a parallax ledger", path);
        goto out_close;
    }
    if (version != LEDGER_SCHEMA_VERSION) {
        e = px_error_set(err, PX_ERR_DB,
                         "ledger %s has schema version %" PRId64 ", this parallax reads "
                         "version %d (%s)",
                         path, version, LEDGER_SCHEMA_VERSION,
                         version < LEDGER_SCHEMA_VERSION ? "start parallax serve once to migrate it"
                                                         : "upgrade parallax");
        goto out_close;
    }
    *out = r;
    return PX_OK;

out_close:
    sqlite3_close(r->db);
    px_free(r);
    return e;
}

void ledger_reader_close(ledger_reader_t *r)
{
    if (r == NULL)
        return;
    sqlite3_close(r->db);
    px_free(r);
}

const char *ledger_summary_dim_name(ledger_summary_dim d)
{
    static const char *const names[] = {"total", "feed",      "state",     "type",
                                        "ack",   "leg_state", "divergence"};
    if ((unsigned)d >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[d];
}

/* ---- filters ---- */

/* A query under construction: constant SQL fragments only. */
typedef struct sqltext {
    char text[1024];
    size_t len;
    bool where;
    bool overflow;
} sqltext;

static void sql_add(sqltext *q, const char *frag)
{
    size_t n = strlen(frag);
    if (q->len + n + 1 > sizeof(q->text)) {
        q->overflow = true;
        return;
    }
    memcpy(q->text + q->len, frag, n + 1);
    q->len += n;
}

static void sql_cond(sqltext *q, const char *cond)
{
    sql_add(q, q->where ? " AND " : " WHERE ");
    sql_add(q, cond);
    q->where = true;
}

/* The parts of a filter, with "APP^FAC" and "ORU^R01" split. */
typedef struct parsed_filter {
    const ledger_filter *f;
    px_str type, trigger;
    bool has_trigger;
    px_str app, facility;
    bool has_facility;
} parsed_filter;

static void split_caret(px_str s, px_str *a, px_str *b, bool *has_b)
{
    ptrdiff_t i = px_str_find_byte(s, '^');
    if (i < 0) {
        *a = s;
        *b = PX_STR_NULL;
        *has_b = false;
        return;
    }
    *a = px_str_sub(s, 0, (size_t)i);
    *b = px_str_sub(s, (size_t)i + 1, s.len - (size_t)i - 1);
    *has_b = true;
}

static px_err parse_filter(const ledger_filter *f, bool with_kind, parsed_filter *p, px_error *err)
{
    memset(p, 0, sizeof(*p));
    p->f = f;
    if (f->has_since && f->has_until && f->until_ms <= f->since_ms)
        return px_error_set(err, PX_ERR_INVAL, "--until must be later than --since");
    if (with_kind && !px_str_empty(f->kind)) {
        ledger_divergence_kind k;
        if (ledger_divergence_kind_parse(f->kind, &k) != PX_OK)
            return px_error_set(err, PX_ERR_INVAL,
                                "--kind: not a divergence kind (one of outcome_mismatch, "
                                "one_side_failed, unknown_outcome, conversion_gap, "
                                "field_mismatch, ack_anomaly, duplicate)");
    }
    split_caret(f->type, &p->type, &p->trigger, &p->has_trigger);
    split_caret(f->sender, &p->app, &p->facility, &p->has_facility);
    return PX_OK;
}

static void add_conditions(sqltext *q, const parsed_filter *p, bool with_kind)
{
    const ledger_filter *f = p->f;
    if (f->has_since)
        sql_cond(q, "m.received_at >= :since");
    if (f->has_until)
        sql_cond(q, "m.received_at < :until");
    if (!px_str_empty(f->feed))
        sql_cond(q, "m.feed = :feed");
    if (!px_str_empty(f->type)) {
        sql_cond(q, "m.type = :type");
        if (p->has_trigger)
            sql_cond(q, "m.trigger_event = :trigger");
    }
    if (!px_str_empty(f->sender)) {
        sql_cond(q, "m.sending_app = :app");
        if (p->has_facility)
            sql_cond(q, "m.sending_facility = :facility");
    }
    if (with_kind && !px_str_empty(f->kind))
        sql_cond(q, "d.kind = :kind");
}

static int bind_named_str(sqlite3_stmt *st, const char *name, px_str v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    return i == 0 ? SQLITE_OK : ledger__bind_str(st, i, v);
}

static int bind_named_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    return i == 0 ? SQLITE_OK : sqlite3_bind_int64(st, i, v);
}

static int bind_filter(sqlite3_stmt *st, const parsed_filter *p)
{
    const ledger_filter *f = p->f;
    int rc = SQLITE_OK;
    if (rc == SQLITE_OK && f->has_since)
        rc = bind_named_int(st, ":since", f->since_ms);
    if (rc == SQLITE_OK && f->has_until)
        rc = bind_named_int(st, ":until", f->until_ms);
    if (rc == SQLITE_OK)
        rc = bind_named_str(st, ":feed", f->feed);
    if (rc == SQLITE_OK)
        rc = bind_named_str(st, ":type", p->type);
    if (rc == SQLITE_OK)
        rc = bind_named_str(st, ":trigger", p->trigger);
    if (rc == SQLITE_OK)
        rc = bind_named_str(st, ":app", p->app);
    if (rc == SQLITE_OK)
        rc = bind_named_str(st, ":facility", p->facility);
    if (rc == SQLITE_OK)
        rc = bind_named_str(st, ":kind", f->kind);
    return rc;
}

static px_str col_view(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    return px_str_make(p, p != NULL ? (size_t)sqlite3_column_bytes(st, i) : 0);
}

/* ---- summary ---- */

static const struct {
    ledger_summary_dim dim;
    const char *select;
    const char *group;
} summary_queries[] = {
    {LEDGER_SUM_TOTAL, "SELECT '', count(*) FROM messages m", ""},
    {LEDGER_SUM_FEED, "SELECT m.feed, count(*) FROM messages m", " GROUP BY 1 ORDER BY 1"},
    {LEDGER_SUM_STATE, "SELECT m.state, count(*) FROM messages m", " GROUP BY 1 ORDER BY 1"},
    {LEDGER_SUM_TYPE,
     "SELECT m.type || CASE WHEN m.trigger_event <> '' THEN '^' || m.trigger_event ELSE '' END,"
     " count(*) FROM messages m",
     " GROUP BY 1 ORDER BY 1"},
    {LEDGER_SUM_ACK,
     "SELECT coalesce(a.code, '(none)'), count(*) FROM messages m"
     " LEFT JOIN sender_acks a ON a.message = m.id",
     " GROUP BY 1 ORDER BY 1"},
    {LEDGER_SUM_LEG_STATE,
     "SELECT g.leg || '/' || g.state, count(*) FROM messages m JOIN legs g ON g.message = m.id",
     " GROUP BY 1 ORDER BY 1"},
    {LEDGER_SUM_DIVERGENCE,
     "SELECT d.kind, count(*) FROM messages m JOIN divergences d ON d.message = m.id",
     " GROUP BY 1 ORDER BY 1"},
};

px_err ledger_summary(ledger_reader_t *r, const ledger_filter *f, ledger_summary_cb cb, void *arg,
                      px_error *err)
{
    parsed_filter p;
    px_err e = parse_filter(f, false, &p, err);
    if (e != PX_OK)
        return e;
    /* One read transaction, so the counts agree with each other. */
    e = ledger__exec(r->db, "BEGIN", err);
    if (e != PX_OK)
        return e;
    bool stop = false;
    for (size_t i = 0; i < sizeof(summary_queries) / sizeof(summary_queries[0]) && !stop; i++) {
        sqltext q = {0};
        sql_add(&q, summary_queries[i].select);
        add_conditions(&q, &p, false);
        sql_add(&q, summary_queries[i].group);
        if (q.overflow) {
            e = px_error_set(err, PX_ERR_INVAL, "ledger summary query too long");
            break;
        }
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(r->db, q.text, (int)q.len, &st, NULL);
        if (rc == SQLITE_OK)
            rc = bind_filter(st, &p);
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            rc = SQLITE_OK;
            if (cb(arg, summary_queries[i].dim, col_view(st, 0), sqlite3_column_int64(st, 1))) {
                stop = true;
                break;
            }
        }
        if (rc != SQLITE_OK && rc != SQLITE_DONE)
            e = ledger__db_error(err, r->db, rc, "ledger summary");
        sqlite3_finalize(st);
        if (e != PX_OK)
            break;
    }
    sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
    return e;
}

/* ---- divergences ---- */

px_err ledger_divergences(ledger_reader_t *r, const ledger_filter *f, size_t limit,
                          ledger_divergence_cb cb, void *arg, px_error *err)
{
    parsed_filter p;
    px_err e = parse_filter(f, true, &p, err);
    if (e != PX_OK)
        return e;
    sqltext q = {0};
    sql_add(&q, "SELECT d.id, d.message, d.kind, d.detail, d.detected_at, m.received_at,"
                " m.feed, m.type, m.trigger_event, m.sending_app, m.sending_facility,"
                " m.control_id, (SELECT s.reason FROM resolutions s WHERE s.divergence = d.id"
                " ORDER BY s.id DESC LIMIT 1)"
                " FROM divergences d JOIN messages m ON m.id = d.message");
    add_conditions(&q, &p, true);
    sql_add(&q, " ORDER BY d.id");
    if (limit > 0)
        sql_add(&q, " LIMIT :limit");
    if (q.overflow)
        return px_error_set(err, PX_ERR_INVAL, "ledger divergence query too long");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, q.text, (int)q.len, &st, NULL);
    if (rc == SQLITE_OK)
        rc = bind_filter(st, &p);
    if (rc == SQLITE_OK && limit > 0)
        rc = bind_named_int(st, ":limit", limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        ledger_divergence_row row = {
            .id = sqlite3_column_int64(st, 0),
            .message = sqlite3_column_int64(st, 1),
            .kind = col_view(st, 2),
            .detail = col_view(st, 3),
            .detected_at_ms = sqlite3_column_int64(st, 4),
            .received_at_ms = sqlite3_column_int64(st, 5),
            .feed = col_view(st, 6),
            .type = col_view(st, 7),
            .trigger = col_view(st, 8),
            .sending_app = col_view(st, 9),
            .sending_facility = col_view(st, 10),
            .control_id = col_view(st, 11),
            .resolution = col_view(st, 12),
        };
        if (cb(arg, &row))
            break;
    }
    if (rc != SQLITE_OK && rc != SQLITE_DONE)
        e = ledger__db_error(err, r->db, rc, "ledger divergences");
    sqlite3_finalize(st);
    return e;
}

/* ---- times ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(px_str s, size_t at, size_t n, int *out)
{
    if (at + n > s.len)
        return false;
    int v = 0;
    for (size_t i = at; i < at + n; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        v = v * 10 + (s.ptr[i] - '0');
    }
    *out = v;
    return true;
}

static bool at_char(px_str s, size_t at, char c)
{
    return at < s.len && s.ptr[at] == c;
}

px_err ledger_time_parse(px_str s, int64_t *out_ms, px_error *err)
{
    static const char expected[] = "expected unix milliseconds, a date (2026-11-25) or an ISO "
                                   "8601 time with a zone (2026-11-25T10:00:00Z)";
    if (s.len == 0 || s.len > 40)
        return px_error_set(err, PX_ERR_PARSE, "%s", expected);
    bool all_digits = true;
    for (size_t i = 0; i < s.len; i++)
        all_digits = all_digits && s.ptr[i] >= '0' && s.ptr[i] <= '9';
    if (all_digits) {
        uint64_t v;
        if (px_str_to_u64(s, (uint64_t)INT64_MAX, &v) != PX_OK)
            return px_error_set(err, PX_ERR_PARSE, "time out of range; %s", expected);
        *out_ms = (int64_t)v;
        return PX_OK;
    }

    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!digits(s, 0, 4, &y) || !at_char(s, 4, '-') || !digits(s, 5, 2, &mo) ||
        !at_char(s, 7, '-') || !digits(s, 8, 2, &d))
        return px_error_set(err, PX_ERR_PARSE, "%s", expected);
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap))
        return px_error_set(err, PX_ERR_PARSE, "no such date; %s", expected);
    size_t at = 10;
    int64_t offset_min = 0;
    if (at < s.len) {
        if (!at_char(s, at, 'T') && !at_char(s, at, 't') && !at_char(s, at, ' '))
            return px_error_set(err, PX_ERR_PARSE, "%s", expected);
        at++;
        if (!digits(s, at, 2, &h) || !at_char(s, at + 2, ':') || !digits(s, at + 3, 2, &mi))
            return px_error_set(err, PX_ERR_PARSE, "%s", expected);
        at += 5;
        if (at_char(s, at, ':')) {
            if (!digits(s, at + 1, 2, &sec))
                return px_error_set(err, PX_ERR_PARSE, "%s", expected);
            at += 3;
            if (at_char(s, at, '.') || at_char(s, at, ',')) {
                at++;
                size_t start = at;
                int scale = 100;
                while (at < s.len && s.ptr[at] >= '0' && s.ptr[at] <= '9') {
                    ms += (s.ptr[at] - '0') * scale;
                    scale /= 10;
                    at++;
                }
                if (at == start)
                    return px_error_set(err, PX_ERR_PARSE, "%s", expected);
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return px_error_set(err, PX_ERR_PARSE, "no such time of day; %s", expected);
        if (at_char(s, at, 'Z') || at_char(s, at, 'z')) {
            at++;
        } else if (at_char(s, at, '+') || at_char(s, at, '-')) {
            int sign = s.ptr[at] == '-' ? -1 : 1;
            int oh, om;
            if (!digits(s, at + 1, 2, &oh))
                return px_error_set(err, PX_ERR_PARSE, "%s", expected);
            at += 3;
            if (at_char(s, at, ':'))
                at++;
            if (!digits(s, at, 2, &om) || oh > 23 || om > 59)
                return px_error_set(err, PX_ERR_PARSE, "bad zone offset; %s", expected);
            at += 2;
            offset_min = sign * (oh * 60 + om);
        } else {
            return px_error_set(err, PX_ERR_PARSE, "the time needs a zone (Z or +01:00); %s",
                                expected);
        }
        if (at != s.len)
            return px_error_set(err, PX_ERR_PARSE, "%s", expected);
    }
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *out_ms = secs * 1000 + ms;
    return PX_OK;
}
