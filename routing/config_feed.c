/* Reading feeds: their settings, filters and routes, with the conditions they match on. */
#include "routing/internal.h"

#include <string.h>

#include "common/alloc.h"

/* Bounds on per-message work and on config size. */
#define MAX_FEEDS      256
#define MAX_ROUTES     256
#define MAX_FILTERS    64
#define MAX_CONDITIONS 16
#define MAX_PATTERNS   64
#define MAX_PATTERN    256

static const char *const policy_names[] = {"legacy", "commit", "fhir", "both"};
static const route_ack_policy policy_values[] = {ROUTE_ACK_LEGACY, ROUTE_ACK_COMMIT, ROUTE_ACK_FHIR,
                                                 ROUTE_ACK_BOTH};
static const char *const mode_names[] = {"original", "enhanced", "from-MSH"};
static const hl7_ack_mode mode_values[] = {HL7_ACK_MODE_ORIGINAL, HL7_ACK_MODE_ENHANCED,
                                           HL7_ACK_MODE_FROM_MSH};
static const char *const down_names[] = {"hold", "queue", "nak"};
static const route_upstream_down down_values[] = {ROUTE_DOWN_HOLD, ROUTE_DOWN_QUEUE,
                                                  ROUTE_DOWN_NAK};
static const char *const action_names[] = {"refuse", "legacy_only", "skip_fhir"};
static const route_filter_action action_values[] = {ROUTE_FILTER_REFUSE, ROUTE_FILTER_LEGACY_ONLY,
                                                    ROUTE_FILTER_SKIP_FHIR};

/* HL7 table 0211 (alternate character sets), the values MSH-18 may hold. */
static const char *const charsets[] = {
    "ASCII",         "8859/1",    "8859/2",         "8859/3",         "8859/4",
    "8859/5",        "8859/6",    "8859/7",         "8859/8",         "8859/9",
    "8859/15",       "ISO IR6",   "ISO IR14",       "ISO IR87",       "ISO IR159",
    "ISO IR192",     "UNICODE",   "UNICODE UTF-8",  "UNICODE UTF-16", "UNICODE UTF-32",
    "GB 18030-2000", "KS X 1001", "CNS 11643-1992", "BIG-5",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const feed_keys[] = {
    "name",
    "listen",
    "port",
    "upstream",
    "ack_mode",
    "ack_policy",
    "on_upstream_down",
    "hold_close_after_ms",
    "charset",
    "timezone",
    "ordering",
    "retransmit_window",
    "legs",
    "profile",
    "max_message_bytes",
    "filters",
    "routes",
    NULL,
};
static const char *const route_keys[] = {
    "name",     "match",   "ack_policy",       "ack_mode", "legs",
    "ordering", "profile", "on_upstream_down", NULL,
};
static const char *const filter_keys[] = {"path", "equals", "in", "glob", "action", NULL};
static const char *const ordering_keys[] = {"key", NULL};

/* Which settings one level (feed or route) wrote itself. */
struct written {
    bool ack_policy;
    bool legs;
};

void route__cond_free(struct route_cond *cond)
{
    px_free(cond->patterns);
    cond->patterns = NULL;
    cond->pattern_count = 0;
}

void route__feed_free(route_feed *feed)
{
    struct route_rule *rules = (struct route_rule *)feed->routes;
    for (size_t i = 0; rules != NULL && i < feed->route_count; i++) {
        for (size_t j = 0; rules[i].conds != NULL && j < rules[i].cond_count; j++)
            route__cond_free(&rules[i].conds[j]);
        px_free(rules[i].conds);
    }
    px_free(rules);
    struct route_filter *filters = (struct route_filter *)feed->filters;
    for (size_t i = 0; filters != NULL && i < feed->filter_count; i++)
        route__cond_free(&filters[i].cond);
    px_free(filters);
    feed->routes = NULL;
    feed->filters = NULL;
    feed->route_count = 0;
    feed->filter_count = 0;
}

px_err route__read_path(route_ctx *c, const char *text, struct route_cond *cond)
{
    px_error perr;
    px_error_clear(&perr);
    if (hl7_path_parse(px_str_from_cstr(text), &cond->path, &perr) != PX_OK) {
        /* The parser's messages start with "path: "; ours already say so. */
        const char *why = perr.msg;
        if (strncmp(why, "path: ", 6) == 0)
            why += 6;
        return route__fail(c, "bad path: %s (paths look like PID-3.1, OBX[2]-5, PID-3[2].4)",
                           why[0] != '\0' ? why : "unreadable");
    }
    cond->path_text = text;
    /* A repetition is explicit when '[' follows the segment's dash (OBX[2]-5 names a segment
     * occurrence, PID-3[2] a repetition). */
    const char *dash = strchr(text, '-');
    cond->any_rep = dash == NULL || strchr(dash, '[') == NULL;
    cond->msh9 = strcmp(cond->path.segment, "MSH") == 0 && cond->path.occurrence <= 1 &&
                 cond->path.field == 9 && cond->path.rep == 0 && cond->path.comp == 0 &&
                 cond->path.sub == 0 && cond->any_rep;
    return PX_OK;
}

/* Fills cond's patterns from a string or an array of strings. */
static px_err read_patterns(route_ctx *c, const json_t *v, bool glob, struct route_cond *cond)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !json_is_string(v))
        return route__fail(c, "expected a string or an array of strings, got %s",
                           route__json_kind(v));
    if (n == 0)
        return route__fail(c, "expected at least one value");
    if (n > MAX_PATTERNS)
        return route__fail(c, "too many values (%zu, at most %d)", n, MAX_PATTERNS);
    cond->patterns = px_calloc(n, sizeof(*cond->patterns));
    if (cond->patterns == NULL)
        return px_error_set(c->err, PX_ERR_NOMEM, "out of memory reading the configuration");
    cond->pattern_count = n;
    cond->glob = glob;
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
        size_t mark = json_is_array(v) ? route__push_index(c, i) : c->len;
        px_err rc = PX_OK;
        if (!json_is_string(item))
            rc = route__fail(c, "expected a string, got %s", route__json_kind(item));
        else if (json_string_length(item) > MAX_PATTERN)
            rc = route__fail(c, "too long (%zu bytes, at most %d)", json_string_length(item),
                             MAX_PATTERN);
        if (rc != PX_OK)
            return rc;
        route__pop(c, mark);
        px_str text = px_str_make(json_string_value(item), json_string_length(item));
        cond->patterns[i].text = text;
        cond->patterns[i].caret = px_str_find_byte(text, '^') >= 0;
    }
    return PX_OK;
}

static px_err read_legs(route_ctx *c, const json_t *obj, unsigned *legs, bool *present)
{
    const json_t *v = json_object_get(obj, "legs");
    *present = v != NULL;
    if (v == NULL)
        return PX_OK;
    size_t mark = route__push_key(c, "legs");
    px_err rc = PX_OK;
    if (!json_is_array(v)) {
        rc = route__fail(c, "expected an array of \"legacy\" and/or \"fhir\", got %s",
                         route__json_kind(v));
        goto out;
    }
    if (json_array_size(v) == 0) {
        rc = route__fail(c, "expected at least one leg (\"legacy\", \"fhir\")");
        goto out;
    }
    unsigned mask = 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *item = json_array_get(v, i);
        size_t imark = route__push_index(c, i);
        unsigned bit = 0;
        if (json_is_string(item) && strcmp(json_string_value(item), "legacy") == 0)
            bit = ROUTE_LEG_LEGACY;
        else if (json_is_string(item) && strcmp(json_string_value(item), "fhir") == 0)
            bit = ROUTE_LEG_FHIR;
        if (bit == 0) {
            rc = route__fail(c, "expected \"legacy\" or \"fhir\"");
            goto out;
        }
        if (mask & bit) {
            rc = route__fail(c, "leg listed twice");
            goto out;
        }
        mask |= bit;
        route__pop(c, imark);
    }
    *legs = mask;
out:
    if (rc == PX_OK)
        route__pop(c, mark);
    return rc;
}

static px_err read_ordering(route_ctx *c, const json_t *obj, route_ordering *o)
{
    const json_t *v = json_object_get(obj, "ordering");
    if (v == NULL)
        return PX_OK;
    size_t mark = route__push_key(c, "ordering");
    px_err rc = PX_OK;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "connection") == 0 || strcmp(s, "feed") == 0) {
            o->kind = strcmp(s, "feed") == 0 ? ROUTE_ORDER_FEED : ROUTE_ORDER_CONNECTION;
            memset(&o->key, 0, sizeof(o->key));
            o->key_text = NULL;
            goto out;
        }
        rc = route__fail(c,
                         "expected \"connection\", \"feed\" or {\"key\": \"<field path>\"}, "
                         "got \"%.40s\"",
                         s);
        goto out;
    }
    if (!json_is_object(v)) {
        rc = route__fail(c,
                         "expected \"connection\", \"feed\" or {\"key\": \"<field path>\"}, "
                         "got %s",
                         route__json_kind(v));
        goto out;
    }
    rc = route__check_object(c, v, ordering_keys);
    if (rc != PX_OK)
        goto out;
    const char *key = NULL;
    rc = route__get_string(c, v, "key", true, NULL, 64, &key);
    if (rc != PX_OK)
        goto out;
    struct route_cond tmp;
    memset(&tmp, 0, sizeof(tmp));
    size_t kmark = route__push_key(c, "key");
    rc = route__read_path(c, key, &tmp);
    if (rc != PX_OK)
        goto out;
    route__pop(c, kmark);
    o->kind = ROUTE_ORDER_KEY;
    o->key = tmp.path;
    o->key_text = key;
out:
    if (rc == PX_OK)
        route__pop(c, mark);
    return rc;
}

/* Reads the settings obj writes over s (which holds the inherited values). */
static px_err read_settings(route_ctx *c, const json_t *obj, route_settings *s, struct written *w)
{
    int idx = 0;
    bool present = false;
    px_err rc =
        route__get_enum(c, obj, "ack_mode", mode_names, COUNT(mode_names), -1, &idx, &present);
    if (rc != PX_OK)
        return rc;
    if (present)
        s->ack_mode = mode_values[idx];
    rc = route__get_enum(c, obj, "ack_policy", policy_names, COUNT(policy_names), -1, &idx,
                         &w->ack_policy);
    if (rc != PX_OK)
        return rc;
    if (w->ack_policy)
        s->ack_policy = policy_values[idx];
    rc = route__get_enum(c, obj, "on_upstream_down", down_names, COUNT(down_names), -1, &idx,
                         &present);
    if (rc != PX_OK)
        return rc;
    if (present)
        s->on_upstream_down = down_values[idx];
    rc = read_legs(c, obj, &s->legs, &w->legs);
    if (rc != PX_OK)
        return rc;
    rc = read_ordering(c, obj, &s->ordering);
    if (rc != PX_OK)
        return rc;
    return route__get_name(c, obj, "profile", false, s->profile, &s->profile);
}

/* The ACK policy must have the legs it answers from. The error names the key this level
 * wrote: a conflict a level did not write itself was reported where it was introduced. */
static px_err check_policy_legs(route_ctx *c, const route_settings *s, const struct written *w)
{
    const char *need = NULL;
    const char *why = NULL;
    if (s->ack_policy == ROUTE_ACK_LEGACY && !(s->legs & ROUTE_LEG_LEGACY)) {
        need = "the \"legacy\" leg";
        why = "relays the EHR's ACK";
    } else if (s->ack_policy == ROUTE_ACK_FHIR && !(s->legs & ROUTE_LEG_FHIR)) {
        need = "the \"fhir\" leg";
        why = "answers from the FHIR write";
    } else if (s->ack_policy == ROUTE_ACK_BOTH && s->legs != (ROUTE_LEG_LEGACY | ROUTE_LEG_FHIR)) {
        need = "both legs";
        why = "waits for both sides";
    }
    if (need == NULL)
        return PX_OK;
    return route__fail_key(c, w->ack_policy ? "ack_policy" : "legs",
                           "ack_policy \"%s\" %s, so legs must include %s",
                           route_ack_policy_name(s->ack_policy), why, need);
}

static px_err read_cond_array_item(route_ctx *c, const char *path_text, const json_t *value,
                                   bool glob, struct route_cond *cond)
{
    px_err rc = route__read_path(c, path_text, cond);
    if (rc != PX_OK)
        return rc;
    return read_patterns(c, value, glob, cond);
}

static px_err read_match(route_ctx *c, const json_t *route, struct route_rule *rule)
{
    const json_t *match = json_object_get(route, "match");
    if (match == NULL)
        return route__fail_key(c, "match", "missing (expected an object of field path -> pattern)");
    size_t mark = route__push_key(c, "match");
    px_err rc = PX_OK;
    if (!json_is_object(match)) {
        rc = route__fail(c, "expected an object of field path -> pattern, got %s",
                         route__json_kind(match));
        goto out;
    }
    size_t n = json_object_size(match);
    if (n == 0) {
        rc = route__fail(c, "expected at least one condition (an empty match would take every "
                            "message)");
        goto out;
    }
    if (n > MAX_CONDITIONS) {
        rc = route__fail(c, "too many conditions (%zu, at most %d)", n, MAX_CONDITIONS);
        goto out;
    }
    rule->conds = px_calloc(n, sizeof(*rule->conds));
    if (rule->conds == NULL) {
        rc = px_error_set(c->err, PX_ERR_NOMEM, "out of memory reading the configuration");
        goto out;
    }
    rule->cond_count = n;
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)match, key, value)
    {
        size_t kmark = route__push_key(c, key);
        rc = read_cond_array_item(c, key, value, true, &rule->conds[i++]);
        if (rc != PX_OK)
            goto out;
        route__pop(c, kmark);
    }
out:
    if (rc == PX_OK)
        route__pop(c, mark);
    return rc;
}

static px_err read_route(route_ctx *c, const json_t *v, const route_feed *feed, size_t index,
                         struct route_rule *rule)
{
    px_err rc = route__check_object(c, v, route_keys);
    if (rc != PX_OK)
        return rc;
    rc = route__get_name(c, v, "name", true, NULL, &rule->name);
    if (rc != PX_OK)
        return rc;
    if (strcmp(rule->name, ROUTE_DEFAULT_NAME) == 0)
        return route__fail_key(c, "name",
                               "\"default\" is the name of the feed's own settings; choose "
                               "another");
    const struct route_rule *rules = feed->routes;
    for (size_t i = 0; i < index; i++)
        if (strcmp(rules[i].name, rule->name) == 0)
            return route__fail_key(c, "name", "duplicate route name \"%s\" (also routes[%zu])",
                                   rule->name, i);
    rc = read_match(c, v, rule);
    if (rc != PX_OK)
        return rc;
    struct written w = {false, false};
    rule->settings = feed->defaults;
    rc = read_settings(c, v, &rule->settings, &w);
    if (rc != PX_OK)
        return rc;
    rule->legs_explicit = w.legs;
    return check_policy_legs(c, &rule->settings, &w);
}

static px_err read_filter(route_ctx *c, const json_t *v, struct route_filter *filter)
{
    px_err rc = route__check_object(c, v, filter_keys);
    if (rc != PX_OK)
        return rc;
    const char *path = NULL;
    rc = route__get_string(c, v, "path", true, NULL, 64, &path);
    if (rc != PX_OK)
        return rc;
    size_t mark = route__push_key(c, "path");
    rc = route__read_path(c, path, &filter->cond);
    if (rc != PX_OK)
        return rc;
    route__pop(c, mark);

    static const char *const ops[] = {"equals", "in", "glob"};
    const char *op = NULL;
    for (size_t i = 0; i < COUNT(ops); i++) {
        if (json_object_get(v, ops[i]) == NULL)
            continue;
        if (op != NULL)
            return route__fail_key(c, ops[i],
                                   "a filter has one of \"equals\", \"in\" or "
                                   "\"glob\", and \"%s\" is already given",
                                   op);
        op = ops[i];
    }
    if (op == NULL)
        return route__fail(c, "missing the condition: one of \"equals\", \"in\" or \"glob\"");
    const json_t *value = json_object_get(v, op);
    mark = route__push_key(c, op);
    if (strcmp(op, "in") == 0 && !json_is_array(value))
        return route__fail(c, "expected an array of strings, got %s", route__json_kind(value));
    if (strcmp(op, "in") != 0 && !json_is_string(value))
        return route__fail(c, "expected a string, got %s", route__json_kind(value));
    rc = read_patterns(c, value, strcmp(op, "glob") == 0, &filter->cond);
    if (rc != PX_OK)
        return rc;
    route__pop(c, mark);

    int idx = 0;
    bool present = false;
    rc = route__get_enum(c, v, "action", action_names, COUNT(action_names), -1, &idx, &present);
    if (rc != PX_OK)
        return rc;
    if (!present)
        return route__fail_key(c, "action",
                               "missing (expected \"refuse\", \"legacy_only\" or \"skip_fhir\")");
    filter->action = action_values[idx];
    return PX_OK;
}

/* obj[key] when it is an array of at most max entries; NULL when absent (*rc PX_OK) or when
 * it is not such an array (*rc set). */
static const json_t *get_array(route_ctx *c, const json_t *obj, const char *key, size_t max,
                               px_err *rc)
{
    const json_t *v = json_object_get(obj, key);
    *rc = PX_OK;
    if (v == NULL)
        return NULL;
    if (!json_is_array(v))
        *rc = route__fail_key(c, key, "expected an array, got %s", route__json_kind(v));
    else if (json_array_size(v) > max)
        *rc =
            route__fail_key(c, key, "too many entries (%zu, at most %zu)", json_array_size(v), max);
    return v;
}

static px_err read_charset(route_ctx *c, const json_t *obj, const char **out)
{
    const char *s = NULL;
    px_err rc = route__get_string(c, obj, "charset", false, "UNICODE UTF-8", 32, &s);
    if (rc != PX_OK)
        return rc;
    for (size_t i = 0; i < COUNT(charsets); i++) {
        if (strcmp(s, charsets[i]) == 0) {
            *out = charsets[i];
            return PX_OK;
        }
    }
    return route__fail_key(c, "charset",
                           "expected an HL7 table 0211 character set such as \"UNICODE UTF-8\", "
                           "\"8859/1\" or \"ASCII\", got \"%.32s\"",
                           s);
}

/* True when the feed's upstream is the feed's own listening socket on this machine. */
static bool forwards_to_itself(const route_feed *feed)
{
    const route_upstream *u = feed->upstream;
    if (u->port != feed->port)
        return false;
    static const char *const local[] = {"localhost", "127.0.0.1", "::1"};
    bool loopback = false;
    for (size_t i = 0; i < COUNT(local); i++)
        loopback = loopback || strcmp(u->host, local[i]) == 0;
    bool any = strcmp(feed->listen, "0.0.0.0") == 0 || strcmp(feed->listen, "::") == 0;
    return strcmp(u->host, feed->listen) == 0 ||
           (loopback &&
            (any || strcmp(feed->listen, "127.0.0.1") == 0 || strcmp(feed->listen, "::1") == 0));
}

static px_err read_feed(route_ctx *c, const json_t *v, struct route_config *cfg, size_t index)
{
    route_feed *feed = &cfg->feeds[index];
    px_err rc = route__check_object(c, v, feed_keys);
    if (rc != PX_OK)
        return rc;
    feed->index = index;
    if ((rc = route__get_name(c, v, "name", true, NULL, &feed->name)) != PX_OK)
        return rc;
    for (size_t i = 0; i < index; i++)
        if (strcmp(cfg->feeds[i].name, feed->name) == 0)
            return route__fail_key(c, "name", "duplicate feed name \"%s\" (also feeds[%zu])",
                                   feed->name, i);
    if ((rc = route__get_ip(c, v, "listen", true, NULL, &feed->listen)) != PX_OK)
        return rc;
    if ((rc = route__get_port(c, v, "port", true, 0, &feed->port)) != PX_OK)
        return rc;
    for (size_t i = 0; i < index; i++)
        if (cfg->feeds[i].port == feed->port)
            return route__fail_key(c, "port", "port %u is already used by feeds[%zu] (\"%s\")",
                                   (unsigned)feed->port, i, cfg->feeds[i].name);
    const char *upstream = NULL;
    if ((rc = route__get_name(c, v, "upstream", true, NULL, &upstream)) != PX_OK)
        return rc;
    for (size_t i = 0; i < cfg->upstream_count && feed->upstream == NULL; i++) {
        if (strcmp(cfg->upstreams[i].name, upstream) == 0) {
            feed->upstream = &cfg->upstreams[i];
            feed->upstream_index = i;
        }
    }
    if (feed->upstream == NULL)
        return route__fail_key(c, "upstream", "no upstream is named \"%s\"", upstream);
    if (forwards_to_itself(feed))
        return route__fail_key(c, "upstream",
                               "upstream \"%s\" (%s:%u) is this feed's own listener: messages "
                               "would loop",
                               feed->upstream->name, feed->upstream->host,
                               (unsigned)feed->upstream->port);

    feed->defaults.ack_mode = HL7_ACK_MODE_ORIGINAL;
    feed->defaults.ack_policy = ROUTE_ACK_LEGACY;
    feed->defaults.on_upstream_down = ROUTE_DOWN_HOLD;
    feed->defaults.legs = ROUTE_LEG_LEGACY | (cfg->has_fhir ? ROUTE_LEG_FHIR : 0u);
    feed->defaults.ordering.kind = ROUTE_ORDER_CONNECTION;
    feed->defaults.profile = "default";
    struct written w = {false, false};
    if ((rc = read_settings(c, v, &feed->defaults, &w)) != PX_OK)
        return rc;
    if ((rc = check_policy_legs(c, &feed->defaults, &w)) != PX_OK)
        return rc;
    if ((rc = route__get_u32(c, v, "hold_close_after_ms", false, 1, 86400000, 30000,
                             &feed->hold_close_after_ms)) != PX_OK)
        return rc;
    if ((rc = read_charset(c, v, &feed->charset)) != PX_OK)
        return rc;
    if ((rc = route__get_timezone(c, v, "timezone", ROUTE_ZONEINFO_DIR, "UTC", &feed->timezone)) !=
        PX_OK)
        return rc;
    if ((rc = route__get_u32(c, v, "retransmit_window", false, 1, 10000000, 10000,
                             &feed->retransmit_window)) != PX_OK)
        return rc;
    if ((rc = route__get_uint(c, v, "max_message_bytes", false, 1024, 1u << 30,
                              cfg->limits.max_message_bytes, &feed->max_message_bytes)) != PX_OK)
        return rc;
    if (feed->max_message_bytes > cfg->limits.inflight_bytes)
        return route__fail_key(c, "max_message_bytes",
                               "%llu exceeds limits.inflight_bytes (%llu): such a message could "
                               "never be read",
                               (unsigned long long)feed->max_message_bytes,
                               (unsigned long long)cfg->limits.inflight_bytes);

    const json_t *filters = get_array(c, v, "filters", MAX_FILTERS, &rc);
    if (rc != PX_OK)
        return rc;
    size_t nf = filters == NULL ? 0 : json_array_size(filters);
    if (nf > 0) {
        struct route_filter *fs = px_calloc(nf, sizeof(*fs));
        if (fs == NULL)
            return px_error_set(c->err, PX_ERR_NOMEM, "out of memory reading the configuration");
        feed->filters = fs;
        feed->filter_count = nf;
        size_t mark = route__push_key(c, "filters");
        for (size_t i = 0; i < nf; i++) {
            size_t imark = route__push_index(c, i);
            if ((rc = read_filter(c, json_array_get(filters, i), &fs[i])) != PX_OK)
                return rc;
            route__pop(c, imark);
        }
        route__pop(c, mark);
    }

    const json_t *routes = get_array(c, v, "routes", MAX_ROUTES, &rc);
    if (rc != PX_OK)
        return rc;
    size_t nr = routes == NULL ? 0 : json_array_size(routes);
    if (nr > 0) {
        struct route_rule *rs = px_calloc(nr, sizeof(*rs));
        if (rs == NULL)
            return px_error_set(c->err, PX_ERR_NOMEM, "out of memory reading the configuration");
        feed->routes = rs;
        feed->route_count = nr;
        size_t mark = route__push_key(c, "routes");
        for (size_t i = 0; i < nr; i++) {
            size_t imark = route__push_index(c, i);
            if ((rc = read_route(c, json_array_get(routes, i), feed, i, &rs[i])) != PX_OK)
                return rc;
            route__pop(c, imark);
        }
        route__pop(c, mark);
        cfg->route_count += nr;
    }
    return PX_OK;
}

px_err route__read_feeds(route_ctx *c, const json_t *feeds, struct route_config *cfg)
{
    size_t mark = route__push_key(c, "feeds");
    if (feeds == NULL)
        return route__fail(c, "missing (expected an array of feeds)");
    if (!json_is_array(feeds))
        return route__fail(c, "expected an array of feeds, got %s", route__json_kind(feeds));
    size_t n = json_array_size(feeds);
    if (n == 0)
        return route__fail(c, "expected at least one feed");
    if (n > MAX_FEEDS)
        return route__fail(c, "too many feeds (%zu, at most %d)", n, MAX_FEEDS);
    cfg->feeds = px_calloc(n, sizeof(*cfg->feeds));
    if (cfg->feeds == NULL)
        return px_error_set(c->err, PX_ERR_NOMEM, "out of memory reading the configuration");
    cfg->feed_count = n;
    for (size_t i = 0; i < n; i++) {
        size_t imark = route__push_index(c, i);
        px_err rc = read_feed(c, json_array_get(feeds, i), cfg, i);
        if (rc != PX_OK)
            return rc;
        route__pop(c, imark);
    }
    route__pop(c, mark);
    return PX_OK;
}
