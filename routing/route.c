/* Route resolution per message: filters, first matching route, legacy-only classes. */
#include "routing/route.h"

#include <string.h>

#include "routing/internal.h"

/* Glob over the virtual string a + sep + b (MSH-9 as "type^trigger") without building it:
 * the same one-backtrack matcher as px_str_glob. */
static char joined_at(px_str a, char sep, px_str b, size_t i)
{
    if (i < a.len)
        return a.ptr[i];
    if (i == a.len)
        return sep;
    return b.ptr[i - a.len - 1];
}

static bool glob_joined(px_str pattern, px_str a, char sep, px_str b)
{
    size_t n = a.len + 1 + b.len;
    size_t p = 0, i = 0, star_p = SIZE_MAX, star_i = 0;
    while (i < n) {
        char ch = joined_at(a, sep, b, i);
        if (p < pattern.len && (pattern.ptr[p] == '?' || pattern.ptr[p] == ch)) {
            p++;
            i++;
        } else if (p < pattern.len && pattern.ptr[p] == '*') {
            star_p = p++;
            star_i = i;
        } else if (star_p != SIZE_MAX) {
            p = star_p + 1;
            i = ++star_i;
        } else {
            return false;
        }
    }
    while (p < pattern.len && pattern.ptr[p] == '*')
        p++;
    return p == pattern.len;
}

static bool eq_joined(px_str pattern, px_str a, char sep, px_str b)
{
    if (pattern.len != a.len + 1 + b.len)
        return false;
    if (a.len > 0 && memcmp(pattern.ptr, a.ptr, a.len) != 0)
        return false;
    if (pattern.ptr[a.len] != sep)
        return false;
    return b.len == 0 || memcmp(pattern.ptr + a.len + 1, b.ptr, b.len) == 0;
}

static bool value_matches(const struct route_cond *c, px_str v)
{
    for (size_t i = 0; i < c->pattern_count; i++) {
        px_str p = c->patterns[i].text;
        if (c->glob ? px_str_glob(p, v) : px_str_eq(p, v))
            return true;
    }
    return false;
}

static bool msh9_matches(const struct route_cond *c, const hl7_msh *msh)
{
    for (size_t i = 0; i < c->pattern_count; i++) {
        const struct route_pattern *p = &c->patterns[i];
        bool hit;
        if (!p->caret)
            hit = c->glob ? px_str_glob(p->text, msh->type) : px_str_eq(p->text, msh->type);
        else if (c->glob)
            hit = glob_joined(p->text, msh->type, '^', msh->trigger);
        else
            hit = eq_joined(p->text, msh->type, '^', msh->trigger);
        if (hit)
            return true;
    }
    return false;
}

/* Without a parsed message only the MSH fields in msh can be read. */
static px_str msh_only_value(const hl7_path *p, const hl7_msh *msh)
{
    if (strcmp(p->segment, "MSH") != 0 || p->occurrence > 1 || p->rep > 1 || p->comp != 0 ||
        p->sub != 0)
        return PX_STR_NULL;
    switch (p->field) {
    case 3:
        return msh->sending_app;
    case 4:
        return msh->sending_facility;
    case 5:
        return msh->receiving_app;
    case 6:
        return msh->receiving_facility;
    case 10:
        return msh->control_id;
    default:
        return PX_STR_NULL;
    }
}

static bool cond_holds(const struct route_cond *c, const hl7_msg_t *msg, const hl7_msh *msh)
{
    if (c->msh9)
        return msh9_matches(c, msh);
    if (msg == NULL)
        return value_matches(c, msh_only_value(&c->path, msh));
    if (!c->any_rep) {
        px_str v = PX_STR_NULL;
        (void)hl7_path_get(msg, &c->path, &v);
        return value_matches(c, v);
    }
    const hl7_path *p = &c->path;
    ptrdiff_t seg = hl7_segment_find(msg, px_str_make(p->segment, strlen(p->segment)),
                                     p->occurrence == 0 ? 1 : p->occurrence);
    if (seg < 0)
        return value_matches(c, PX_STR_NULL);
    size_t reps = hl7_rep_count(msg, (size_t)seg, p->field);
    if (reps == 0)
        reps = 1;
    for (size_t r = 1; r <= reps; r++)
        if (value_matches(c, hl7_field(msg, (size_t)seg, p->field, r, p->comp, p->sub)))
            return true;
    return false;
}

route_class route_class_of(px_str type)
{
    static const struct {
        const char *type;
        route_class cls;
    } classes[] = {
        {"QBP", ROUTE_CLASS_QUERY},          {"QRY", ROUTE_CLASS_QUERY},
        {"VXQ", ROUTE_CLASS_QUERY},          {"QSB", ROUTE_CLASS_QUERY},
        {"QVR", ROUTE_CLASS_QUERY},          {"QCN", ROUTE_CLASS_QUERY},
        {"RSP", ROUTE_CLASS_QUERY_RESPONSE}, {"RTB", ROUTE_CLASS_QUERY_RESPONSE},
        {"RDY", ROUTE_CLASS_QUERY_RESPONSE}, {"VXR", ROUTE_CLASS_QUERY_RESPONSE},
        {"VXX", ROUTE_CLASS_QUERY_RESPONSE}, {"ADR", ROUTE_CLASS_QUERY_RESPONSE},
        {"ORF", ROUTE_CLASS_QUERY_RESPONSE}, {"DSR", ROUTE_CLASS_QUERY_RESPONSE},
        {"MFN", ROUTE_CLASS_MASTER_FILE},    {"MFK", ROUTE_CLASS_MASTER_FILE},
        {"MFD", ROUTE_CLASS_MASTER_FILE},    {"MFQ", ROUTE_CLASS_MASTER_FILE},
        {"MFR", ROUTE_CLASS_MASTER_FILE},    {"DFT", ROUTE_CLASS_FINANCIAL},
        {"BAR", ROUTE_CLASS_FINANCIAL},      {"ACK", ROUTE_CLASS_ACK},
    };
    type = px_str_trim(type);
    if (type.len != 3)
        return ROUTE_CLASS_NONE;
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
        if (px_str_eq_nocase(type, px_str_make(classes[i].type, 3)))
            return classes[i].cls;
    return ROUTE_CLASS_NONE;
}

void route_resolve(const route_config_t *cfg, const route_feed *feed, const hl7_msg_t *msg,
                   const hl7_msh *msh, route_decision *out)
{
    (void)cfg;
    const struct route_rule *rule = NULL;
    int route_index = -1;
    for (size_t i = 0; i < feed->route_count && rule == NULL; i++) {
        const struct route_rule *r = &feed->routes[i];
        bool all = true;
        for (size_t j = 0; j < r->cond_count && all; j++)
            all = cond_holds(&r->conds[j], msg, msh);
        if (all) {
            rule = r;
            route_index = (int)i;
        }
    }
    const route_settings *s = rule != NULL ? &rule->settings : &feed->defaults;

    out->feed = feed;
    out->route_name = rule != NULL ? rule->name : ROUTE_DEFAULT_NAME;
    out->route_index = route_index;
    out->ack_mode = s->ack_mode;
    out->ack_policy = s->ack_policy;
    out->on_upstream_down = s->on_upstream_down;
    out->legs = s->legs;
    out->ordering = s->ordering;
    out->profile = s->profile;
    out->filter_action = ROUTE_FILTER_NONE;
    out->filter_index = -1;
    out->filter_path = NULL;
    out->legacy_only_class = ROUTE_CLASS_NONE;

    if (rule == NULL || !rule->legs_explicit) {
        route_class cls = route_class_of(msh->type);
        if (cls != ROUTE_CLASS_NONE) {
            out->legacy_only_class = cls;
            out->legs = ROUTE_LEG_LEGACY;
        }
    }

    for (size_t i = 0; i < feed->filter_count; i++) {
        const struct route_filter *f = &feed->filters[i];
        if (!cond_holds(&f->cond, msg, msh))
            continue;
        out->filter_action = f->action;
        out->filter_index = (int)i;
        out->filter_path = f->cond.path_text;
        out->legs = f->action == ROUTE_FILTER_REFUSE ? 0u : ROUTE_LEG_LEGACY;
        break;
    }

    if (!(out->legs & ROUTE_LEG_FHIR) &&
        (out->ack_policy == ROUTE_ACK_FHIR || out->ack_policy == ROUTE_ACK_BOTH))
        out->ack_policy = ROUTE_ACK_LEGACY;
}

bool route_ordering_value(const route_ordering *o, const hl7_msg_t *msg, px_str *out)
{
    *out = PX_STR_NULL;
    if (o->kind != ROUTE_ORDER_KEY || msg == NULL)
        return false;
    return hl7_path_get(msg, &o->key, out);
}

const char *route_feed_route_name(const route_feed *feed, size_t i)
{
    return i < feed->route_count ? feed->routes[i].name : "?";
}

const char *route_feed_filter_path(const route_feed *feed, size_t i)
{
    return i < feed->filter_count ? feed->filters[i].cond.path_text : "?";
}

route_filter_action route_feed_filter_action(const route_feed *feed, size_t i)
{
    return i < feed->filter_count ? feed->filters[i].action : ROUTE_FILTER_NONE;
}

const char *route_filter_action_name(route_filter_action a)
{
    switch (a) {
    case ROUTE_FILTER_NONE:
        return "none";
    case ROUTE_FILTER_REFUSE:
        return "refuse";
    case ROUTE_FILTER_LEGACY_ONLY:
        return "legacy_only";
    case ROUTE_FILTER_SKIP_FHIR:
        return "skip_fhir";
    }
    return "?";
}

const char *route_class_name(route_class c)
{
    switch (c) {
    case ROUTE_CLASS_NONE:
        return "none";
    case ROUTE_CLASS_QUERY:
        return "query";
    case ROUTE_CLASS_QUERY_RESPONSE:
        return "query_response";
    case ROUTE_CLASS_MASTER_FILE:
        return "master_file";
    case ROUTE_CLASS_FINANCIAL:
        return "financial";
    case ROUTE_CLASS_ACK:
        return "ack";
    }
    return "?";
}

const char *route_ack_policy_name(route_ack_policy p)
{
    switch (p) {
    case ROUTE_ACK_LEGACY:
        return "legacy";
    case ROUTE_ACK_COMMIT:
        return "commit";
    case ROUTE_ACK_FHIR:
        return "fhir";
    case ROUTE_ACK_BOTH:
        return "both";
    }
    return "?";
}

const char *route_ack_mode_name(hl7_ack_mode m)
{
    switch (m) {
    case HL7_ACK_MODE_ORIGINAL:
        return "original";
    case HL7_ACK_MODE_ENHANCED:
        return "enhanced";
    case HL7_ACK_MODE_FROM_MSH:
        return "from-MSH";
    }
    return "?";
}

const char *route_upstream_down_name(route_upstream_down d)
{
    switch (d) {
    case ROUTE_DOWN_HOLD:
        return "hold";
    case ROUTE_DOWN_QUEUE:
        return "queue";
    case ROUTE_DOWN_NAK:
        return "nak";
    }
    return "?";
}

const char *route_ordering_kind_name(route_ordering_kind k)
{
    switch (k) {
    case ROUTE_ORDER_CONNECTION:
        return "connection";
    case ROUTE_ORDER_FEED:
        return "feed";
    case ROUTE_ORDER_KEY:
        return "key";
    }
    return "?";
}

const char *route_ledger_sync_name(route_ledger_sync s)
{
    return s == ROUTE_SYNC_NORMAL ? "normal" : s == ROUTE_SYNC_FULL ? "full" : "?";
}
