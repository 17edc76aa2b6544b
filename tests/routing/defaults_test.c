/* What a minimal config means: every default, and the accessors that expose them. */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "routing_support.h"
#include "tcases.h"

static const char minimal[] =
    "{\"instance\": \"px-1\", \"ledger\": {\"path\": \"/var/lib/parallax/ledger.db\"},"
    " \"upstreams\": [{\"name\": \"ehr\", \"host\": \"ehr.example.org\", \"port\": 2575}],"
    " \"feeds\": [{\"name\": \"lab\", \"listen\": \"127.0.0.1\", \"port\": 6661,"
    "              \"upstream\": \"ehr\"}]}";

START_TEST(a_minimal_config_takes_the_documented_defaults)
{
    route_config_t *cfg = rt_config(minimal);
    ck_assert_str_eq(route_config_instance(cfg), "px-1");
    ck_assert_ptr_null(route_config_admin(cfg));

    const route_ledger *l = route_config_ledger(cfg);
    ck_assert_str_eq(l->path, "/var/lib/parallax/ledger.db");
    ck_assert_int_eq(l->synchronous, ROUTE_SYNC_FULL);
    ck_assert_uint_eq(l->journal_size_limit_mb, 64);
    ck_assert_uint_eq(l->busy_timeout_ms, 5000);

    const route_limits *lim = route_config_limits(cfg);
    ck_assert_uint_eq(lim->max_connections, 4096);
    ck_assert_uint_eq(lim->max_connections_per_peer, 256);
    ck_assert_uint_eq(lim->max_message_bytes, 16777216);
    ck_assert_uint_eq(lim->frame_deadline_ms, 10000);
    ck_assert_uint_eq(lim->idle_timeout_ms, 60000);
    ck_assert_uint_eq(lim->inflight_bytes, 268435456);
    ck_assert_uint_eq(lim->ack_write_timeout_ms, 10000);
    ck_assert_uint_eq(lim->drain_timeout_ms, 30000);

    size_t nu = 0;
    const route_upstream *u = route_config_upstreams(cfg, &nu);
    ck_assert_uint_eq(nu, 1);
    ck_assert_str_eq(u->name, "ehr");
    ck_assert_str_eq(u->host, "ehr.example.org");
    ck_assert_uint_eq(u->port, 2575);
    ck_assert_uint_eq(u->pool, 1);
    ck_assert_uint_eq(u->connect_timeout_ms, 3000);
    ck_assert_uint_eq(u->ack_timeout_ms, 10000);
    ck_assert(u->require_msa2_echo);
    ck_assert_uint_eq(u->reconnect_min_ms, 100);
    ck_assert_uint_eq(u->reconnect_max_ms, 5000);
    ck_assert_uint_eq(u->breaker_failures, 5);
    ck_assert_uint_eq(u->breaker_open_ms, 5000);

    size_t nf = 0;
    const route_feed *f = route_config_feeds(cfg, &nf);
    ck_assert_uint_eq(nf, 1);
    ck_assert_str_eq(f->name, "lab");
    ck_assert_str_eq(f->listen, "127.0.0.1");
    ck_assert_uint_eq(f->port, 6661);
    ck_assert_ptr_eq(f->upstream, u);
    ck_assert_uint_eq(f->upstream_index, 0);
    ck_assert_int_eq(f->defaults.ack_mode, HL7_ACK_MODE_ORIGINAL);
    ck_assert_int_eq(f->defaults.ack_policy, ROUTE_ACK_LEGACY);
    ck_assert_int_eq(f->defaults.on_upstream_down, ROUTE_DOWN_HOLD);
    /* No FHIR endpoint is configured, so the default is the legacy leg alone. */
    ck_assert_uint_eq(f->defaults.legs, ROUTE_LEG_LEGACY);
    ck_assert_int_eq(f->defaults.ordering.kind, ROUTE_ORDER_CONNECTION);
    ck_assert_ptr_null(f->defaults.ordering.key_text);
    ck_assert_str_eq(f->defaults.profile, "default");
    ck_assert_uint_eq(f->hold_close_after_ms, 30000);
    ck_assert_str_eq(f->charset, "UNICODE UTF-8");
    ck_assert_str_eq(f->timezone, "UTC");
    ck_assert_uint_eq(f->retransmit_window, 10000);
    ck_assert_uint_eq(f->max_message_bytes, 16777216);
    ck_assert_uint_eq(f->route_count, 0);
    ck_assert_uint_eq(f->filter_count, 0);
    ck_assert_uint_eq(route_config_route_count(cfg), 0);
    route_config_destroy(cfg);
}
END_TEST

START_TEST(explicit_values_replace_the_defaults)
{
    static const char text[] =
        "{\"instance\": \"px-2\","
        " \"ledger\": {\"path\": \"data/l.db\", \"synchronous\": \"normal\","
        "             \"journal_size_limit_mb\": 8, \"busy_timeout_ms\": 250},"
        " \"admin\": {\"port\": 9091},"
        " \"limits\": {\"max_connections\": 10, \"max_connections_per_peer\": 10,"
        "             \"max_message_bytes\": 2048, \"inflight_bytes\": 4096},"
        " \"upstreams\": [{\"name\": \"ehr\", \"host\": \"::1\", \"port\": 1, \"pool\": 64,"
        "                 \"require_msa2_echo\": false, \"breaker_failures\": 0}],"
        " \"feeds\": [{\"name\": \"f\", \"listen\": \"::\", \"port\": 65535, \"upstream\": \"ehr\","
        "             \"ack_mode\": \"from-MSH\", \"ack_policy\": \"commit\","
        "             \"on_upstream_down\": \"nak\", \"legs\": [\"fhir\", \"legacy\"],"
        "             \"ordering\": {\"key\": \"PID-3.1\"}, \"profile\": \"lab-v2\","
        "             \"timezone\": \"America/New_York\", \"charset\": \"8859/1\","
        "             \"retransmit_window\": 5, \"hold_close_after_ms\": 1,"
        "             \"max_message_bytes\": 4096}]}";
    route_config_t *cfg = rt_config(text);
    const route_ledger *l = route_config_ledger(cfg);
    ck_assert_str_eq(l->path, "data/l.db");
    ck_assert_int_eq(l->synchronous, ROUTE_SYNC_NORMAL);
    ck_assert_uint_eq(l->journal_size_limit_mb, 8);
    ck_assert_uint_eq(l->busy_timeout_ms, 250);
    const route_admin *a = route_config_admin(cfg);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->listen, "127.0.0.1");
    ck_assert_uint_eq(a->port, 9091);
    ck_assert_uint_eq(route_config_limits(cfg)->inflight_bytes, 4096);
    size_t n = 0;
    const route_upstream *u = route_config_upstreams(cfg, &n);
    ck_assert_uint_eq(u->pool, 64);
    ck_assert(!u->require_msa2_echo);
    ck_assert_uint_eq(u->breaker_failures, 0);
    const route_feed *f = route_config_feed_find(cfg, "f");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->defaults.ack_mode, HL7_ACK_MODE_FROM_MSH);
    ck_assert_int_eq(f->defaults.ack_policy, ROUTE_ACK_COMMIT);
    ck_assert_int_eq(f->defaults.on_upstream_down, ROUTE_DOWN_NAK);
    ck_assert_uint_eq(f->defaults.legs, ROUTE_LEG_LEGACY | ROUTE_LEG_FHIR);
    ck_assert_int_eq(f->defaults.ordering.kind, ROUTE_ORDER_KEY);
    ck_assert_str_eq(f->defaults.ordering.key_text, "PID-3.1");
    ck_assert_str_eq(f->defaults.ordering.key.segment, "PID");
    ck_assert_uint_eq(f->defaults.ordering.key.field, 3);
    ck_assert_uint_eq(f->defaults.ordering.key.comp, 1);
    ck_assert_str_eq(f->defaults.profile, "lab-v2");
    ck_assert_str_eq(f->timezone, "America/New_York");
    ck_assert_str_eq(f->charset, "8859/1");
    ck_assert_uint_eq(f->retransmit_window, 5);
    ck_assert_uint_eq(f->hold_close_after_ms, 1);
    ck_assert_uint_eq(f->max_message_bytes, 4096);
    ck_assert_ptr_null(route_config_feed_find(cfg, "g"));
    ck_assert_ptr_eq(route_config_upstream_find(cfg, "ehr"), u);
    ck_assert_ptr_null(route_config_upstream_find(cfg, "lis"));
    route_config_destroy(cfg);
}
END_TEST

START_TEST(routes_inherit_the_feed_settings_they_do_not_name)
{
    static const char text[] =
        "{\"instance\": \"px\", \"ledger\": {\"path\": \"l.db\"},"
        " \"upstreams\": [{\"name\": \"ehr\", \"host\": \"127.0.0.1\", \"port\": 2575}],"
        " \"feeds\": [{\"name\": \"f\", \"listen\": \"127.0.0.1\", \"port\": 7000,"
        "   \"upstream\": \"ehr\", \"ack_mode\": \"enhanced\", \"on_upstream_down\": \"queue\","
        "   \"ordering\": \"feed\", \"profile\": \"p1\","
        "   \"routes\": [{\"name\": \"r\", \"match\": {\"MSH-9\": \"ADT\"},"
        "                 \"ack_policy\": \"commit\"}]}]}";
    route_config_t *cfg = rt_config(text);
    route_decision d;
    rt_resolve(cfg, "f", "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\nPID|1||9", &d);
    ck_assert_str_eq(d.route_name, "r");
    ck_assert_int_eq(d.ack_policy, ROUTE_ACK_COMMIT);
    ck_assert_int_eq(d.ack_mode, HL7_ACK_MODE_ENHANCED);
    ck_assert_int_eq(d.on_upstream_down, ROUTE_DOWN_QUEUE);
    ck_assert_int_eq(d.ordering.kind, ROUTE_ORDER_FEED);
    ck_assert_str_eq(d.profile, "p1");
    ck_assert_uint_eq(route_config_route_count(cfg), 1);
    ck_assert_str_eq(route_feed_route_name(route_config_feed_find(cfg, "f"), 0), "r");
    route_config_destroy(cfg);
}
END_TEST

START_TEST(the_version_is_a_hash_of_the_bytes_and_generations_count_loads)
{
    route_config_t *a = rt_config(minimal);
    route_config_t *b = rt_config(minimal);
    ck_assert_str_eq(route_config_version(a), route_config_version(b));
    ck_assert_uint_eq(strlen(route_config_version(a)), 16);
    ck_assert_uint_eq(strspn(route_config_version(a), "0123456789abcdef"), 16);
    /* The numeric version stored with messages is the same hash, stable across loads. */
    char hex[17];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)route_config_version_id(a));
    ck_assert_str_eq(hex, route_config_version(a));
    ck_assert_uint_eq(route_config_version_id(a), route_config_version_id(b));
    ck_assert_uint_eq(route_config_generation(b), route_config_generation(a) + 1);

    /* One more space changes the bytes, so the version. */
    char other[sizeof(minimal) + 1];
    other[0] = ' ';
    memcpy(other + 1, minimal, sizeof(minimal));
    route_config_t *c = rt_config(other);
    ck_assert_str_ne(route_config_version(a), route_config_version(c));
    route_config_destroy(a);
    route_config_destroy(b);
    route_config_destroy(c);
}
END_TEST

START_TEST(a_reference_keeps_the_config_alive_after_destroy)
{
    route_config_t *cfg = rt_config(minimal);
    ck_assert_ptr_eq(route_config_ref(cfg), cfg);
    route_config_destroy(cfg);
    /* Still readable through the second reference (ASan reports a use after free if not). */
    ck_assert_str_eq(route_config_instance(cfg), "px-1");
    route_config_destroy(cfg);
    route_config_destroy(NULL);
}
END_TEST

START_TEST(parsing_fails_cleanly_at_every_allocation_failure)
{
    static const char text[] =
        "{\"instance\": \"px\", \"ledger\": {\"path\": \"l.db\"},"
        " \"upstreams\": [{\"name\": \"ehr\", \"host\": \"127.0.0.1\", \"port\": 2575}],"
        " \"feeds\": [{\"name\": \"f\", \"listen\": \"127.0.0.1\", \"port\": 7000,"
        "   \"upstream\": \"ehr\","
        "   \"filters\": [{\"path\": \"MSH-11\", \"in\": [\"T\", \"D\"], \"action\": \"refuse\"}],"
        "   \"routes\": [{\"name\": \"r\", \"match\": {\"MSH-9\": \"ADT\", \"PID-3.4\": [\"A\"]}},"
        "                {\"name\": \"s\", \"match\": {\"MSH-3\": \"X*\"}}]}]}";
    px_alloc_fail_after(-1);
    route_config_t *cfg = NULL;
    ck_assert_int_eq(route_config_parse(text, strlen(text), &cfg, NULL), PX_OK);
    route_config_destroy(cfg);
    long total = px_alloc_fail_after(-1);
    ck_assert_int_gt(total, 5);
    for (long n = 0; n < total; n++) {
        px_error err;
        px_error_clear(&err);
        cfg = NULL;
        px_alloc_fail_after(n);
        px_err rc = route_config_parse(text, strlen(text), &cfg, &err);
        px_alloc_fail_after(-1);
        ck_assert_msg(rc == PX_ERR_NOMEM, "failing allocation %ld gave %s", n, px_err_name(rc));
        ck_assert_ptr_null(cfg);
    }
}
END_TEST

TCase *routing_tcase_defaults(void)
{
    TCase *tc = tcase_create("defaults");
    tcase_add_test(tc, a_minimal_config_takes_the_documented_defaults);
    tcase_add_test(tc, explicit_values_replace_the_defaults);
    tcase_add_test(tc, routes_inherit_the_feed_settings_they_do_not_name);
    tcase_add_test(tc, the_version_is_a_hash_of_the_bytes_and_generations_count_loads);
    tcase_add_test(tc, a_reference_keeps_the_config_alive_after_destroy);
    tcase_add_test(tc, parsing_fails_cleanly_at_every_allocation_failure);
    return tc;
}
