/* The stored names of the ledger's vocabularies (ARCHITECTURE.md "Divergence kinds"). */
#include "ledger/ledger.h"

#include <stddef.h>

static const char *const msg_states[] = {"received", "rejected", "filtered"};
static const char *const leg_kinds[] = {"legacy", "fhir"};
static const char *const leg_states[] = {"pending",     "in_flight", "delivered",
                                         "rejected",    "failed",    "unknown",
                                         "dead_letter", "skipped",   "held"};
static const char *const div_kinds[] = {"outcome_mismatch", "one_side_failed", "unknown_outcome",
                                        "conversion_gap",   "field_mismatch",  "ack_anomaly",
                                        "duplicate"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(COUNT(div_kinds) == LEDGER_DIV_KIND_COUNT, "divergence kinds out of sync");
_Static_assert(COUNT(leg_states) == LEDGER_LEG_HELD + 1, "leg states out of sync");

static const char *name_of(const char *const *names, size_t n, int v)
{
    if (v < 0 || (size_t)v >= n)
        return "?";
    return names[v];
}

static px_err parse(const char *const *names, size_t n, px_str s, int *out)
{
    for (size_t i = 0; i < n; i++) {
        if (px_str_eq_cstr(s, names[i])) {
            *out = (int)i;
            return PX_OK;
        }
    }
    return PX_ERR_INVAL;
}

const char *ledger_msg_state_name(ledger_msg_state s)
{
    return name_of(msg_states, COUNT(msg_states), (int)s);
}

const char *ledger_leg_kind_name(ledger_leg_kind k)
{
    return name_of(leg_kinds, COUNT(leg_kinds), (int)k);
}

const char *ledger_leg_state_name(ledger_leg_state s)
{
    return name_of(leg_states, COUNT(leg_states), (int)s);
}

const char *ledger_divergence_kind_name(ledger_divergence_kind k)
{
    return name_of(div_kinds, COUNT(div_kinds), (int)k);
}

px_err ledger_leg_kind_parse(px_str s, ledger_leg_kind *out)
{
    int v;
    px_err rc = parse(leg_kinds, COUNT(leg_kinds), s, &v);
    if (rc == PX_OK)
        *out = (ledger_leg_kind)v;
    return rc;
}

px_err ledger_leg_state_parse(px_str s, ledger_leg_state *out)
{
    int v;
    px_err rc = parse(leg_states, COUNT(leg_states), s, &v);
    if (rc == PX_OK)
        *out = (ledger_leg_state)v;
    return rc;
}

px_err ledger_divergence_kind_parse(px_str s, ledger_divergence_kind *out)
{
    int v;
    px_err rc = parse(div_kinds, COUNT(div_kinds), s, &v);
    if (rc == PX_OK)
        *out = (ledger_divergence_kind)v;
    return rc;
}

bool ledger_leg_state_is_final(ledger_leg_state s)
{
    switch (s) {
    case LEDGER_LEG_DELIVERED:
    case LEDGER_LEG_REJECTED:
    case LEDGER_LEG_FAILED:
    case LEDGER_LEG_UNKNOWN:
    case LEDGER_LEG_DEAD_LETTER:
    case LEDGER_LEG_SKIPPED:
        return true;
    case LEDGER_LEG_PENDING:
    case LEDGER_LEG_IN_FLIGHT:
    case LEDGER_LEG_HELD:
        break;
    }
    return false;
}
