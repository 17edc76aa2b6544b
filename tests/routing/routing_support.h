/* Helpers for the routing suite: configs from a base document with one change, and parsed
 * messages written with \n between segments. */
#ifndef PX_TESTS_ROUTING_ROUTING_SUPPORT_H
#define PX_TESTS_ROUTING_ROUTING_SUPPORT_H

#include "common/error.h"
#include "hl7/hl7.h"
#include "routing/config.h"
#include "routing/route.h"

/* Parses json, failing the test with the error message when it is not valid. */
route_config_t *rt_config(const char *json);

/* Parses base with one change: the value at slash-separated path (keys and array indexes,
 * "feeds/0/routes/0/match/MSH-9") replaced by value_json, or removed when value_json is
 * NULL. An index equal to an array's size appends. Returns what route_config_parse returned
 * (the config, if any, is destroyed). */
px_err rt_parse_changed(const char *base, const char *path, const char *value_json, px_error *err);

/* A parsed message. text uses \n between segments; it is copied with \r instead. */
typedef struct rt_msg {
    hl7_msg_t *m;
    hl7_msh msh;
    char *bytes;
} rt_msg;

void rt_msg_parse(rt_msg *msg, const char *text);
void rt_msg_free(rt_msg *msg);

/* Resolves text (as rt_msg_parse reads it) for the named feed of cfg. */
void rt_resolve(const route_config_t *cfg, const char *feed, const char *text, route_decision *out);

#endif
