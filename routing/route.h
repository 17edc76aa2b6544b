/* Route resolution: the effective settings for one message of a feed.
 *
 * A feed's routes are tried in order and the first whose conditions all hold wins; when none
 * matches, the feed's own settings apply (the default route, named "default"). A route
 * overrides only the settings it names. The feed's filters are evaluated in order and the
 * first that matches decides the filter outcome. Message classes that are legacy-only by
 * default (queries and their responses, master files, financial messages, ACKs) go to the
 * legacy leg only, unless the matching route lists its legs explicitly.
 *
 * Conditions compare raw field values (escapes not decoded) with globs where `*` matches any
 * run and `?` one byte. "MSH-9" is special: a pattern without `^` is compared with the message
 * type (MSH-9.1), a pattern with `^` with "type^trigger" (MSH-9.1 ^ MSH-9.2, whatever the
 * message's component separator). Any other path is read from the message; when the path
 * names no repetition ("PID-3.4"), the condition holds if any repetition matches; an explicit
 * repetition ("PID-3[2].4") pins one. A missing segment or field reads as empty. */
#ifndef PX_ROUTING_ROUTE_H
#define PX_ROUTING_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/str.h"
#include "hl7/hl7.h"
#include "routing/config.h"

/* The name of the default route of every feed. No configured route may use it. */
#define ROUTE_DEFAULT_NAME "default"

/* What a filter does to a message it matches. */
typedef enum route_filter_action {
    ROUTE_FILTER_NONE = 0,    /* no filter matched */
    ROUTE_FILTER_REFUSE,      /* refuse it: NAK and a ledger row, not forwarded */
    ROUTE_FILTER_LEGACY_ONLY, /* legacy leg only (recorded) */
    ROUTE_FILTER_SKIP_FHIR,   /* the same effect as legacy_only, recorded under its own name */
} route_filter_action;

/* Message classes that are legacy-only by default (by MSH-9.1). */
typedef enum route_class {
    ROUTE_CLASS_NONE = 0,
    ROUTE_CLASS_QUERY,          /* QBP, QRY, VXQ, QSB, QVR, QCN */
    ROUTE_CLASS_QUERY_RESPONSE, /* RSP, RTB, RDY, VXR, VXX, ADR, ORF, DSR */
    ROUTE_CLASS_MASTER_FILE,    /* MFN, MFK, MFD, MFQ, MFR */
    ROUTE_CLASS_FINANCIAL,      /* DFT, BAR */
    ROUTE_CLASS_ACK,            /* ACK */
} route_class;

/* The effective settings for one message. All pointers are borrowed from the configuration
 * the feed belongs to. Invariants: when filter_action is ROUTE_FILTER_REFUSE, legs is 0;
 * otherwise legs is not 0. When legs lacks ROUTE_LEG_FHIR, ack_policy is neither fhir nor
 * both (a message without a FHIR leg is answered by the legacy policy). */
typedef struct route_decision {
    const route_feed *feed;
    const char *route_name; /* the matching route's name, or ROUTE_DEFAULT_NAME */
    int route_index;        /* index among the feed's routes, -1 for the default route */
    hl7_ack_mode ack_mode;  /* as configured; resolve from-MSH with hl7_ack_mode_for() */
    route_ack_policy ack_policy;
    route_upstream_down on_upstream_down;
    unsigned legs; /* ROUTE_LEG_* after class defaults and filters */
    route_ordering ordering;
    const char *profile;
    route_filter_action filter_action;
    int filter_index;              /* index among the feed's filters, -1 when none matched */
    const char *filter_path;       /* the matching filter's path as written, NULL when none */
    route_class legacy_only_class; /* the legacy-only class that applied (legs forced to
                                      legacy), or NONE */
} route_decision;

/* Resolves the settings for a message of feed (borrowed from cfg). msg is the parsed message
 * and msh its MSH as read by hl7_msh_read (both borrowed for the call). msg may be NULL when
 * only the MSH is known: conditions on other paths then read as empty. Never allocates and
 * never fails; cfg and feed are read only, so any thread may call it concurrently. */
void route_resolve(const route_config_t *cfg, const route_feed *feed, const hl7_msg_t *msg,
                   const hl7_msh *msh, route_decision *out);

/* The class of a message type (MSH-9.1), ROUTE_CLASS_NONE for ordinary messages. */
route_class route_class_of(px_str message_type);

/* Reads the ordering key of a message for a ROUTE_ORDER_KEY rule into *out (a view into the
 * message). Returns false, with an empty view, when the rule is not a key rule or the segment
 * is absent. */
bool route_ordering_value(const route_ordering *o, const hl7_msg_t *msg, px_str *out);

/* The name of the i-th route of a feed (i < feed->route_count). */
const char *route_feed_route_name(const route_feed *feed, size_t i);

/* The path text of the i-th filter of a feed (i < feed->filter_count) and its action. */
const char *route_feed_filter_path(const route_feed *feed, size_t i);
route_filter_action route_feed_filter_action(const route_feed *feed, size_t i);

/* Stable names: "refuse", "legacy_only", "skip_fhir" ("none" for NONE); "query",
 * "query_response", "master_file", "financial", "ack" ("none" for NONE). Never NULL. */
const char *route_filter_action_name(route_filter_action a);
const char *route_class_name(route_class c);

#endif
