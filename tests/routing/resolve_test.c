/* Route resolution: first match, globs, field paths, legacy-only classes, filters. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "routing_support.h"
#include "tcases.h"

/* Feed "lab" sends both legs so that class defaults and filters visibly take the FHIR leg
 * away; feed "plain" has no routes and no filters. */
static const char config[] =
    "{\"instance\": \"px\", \"ledger\": {\"path\": \"l.db\"},"
    " \"upstreams\": [{\"name\": \"ehr\", \"host\": \"127.0.0.1\", \"port\": 2575}],"
    " \"feeds\": ["
    "  {\"name\": \"lab\", \"listen\": \"127.0.0.1\", \"port\": 7001, \"upstream\": \"ehr\","
    "   \"legs\": [\"legacy\", \"fhir\"], \"profile\": \"lab\","
    "   \"filters\": ["
    "     {\"path\": \"MSH-4\", \"glob\": \"RETIRED_*\", \"action\": \"refuse\"},"
    "     {\"path\": \"MSH-11\", \"equals\": \"T\", \"action\": \"legacy_only\"},"
    "     {\"path\": \"OBX-2\", \"in\": [\"ED\", \"RP\"], \"action\": \"skip_fhir\"},"
    "     {\"path\": \"MSH-11\", \"in\": [\"T\", \"D\"], \"action\": \"refuse\"}],"
    "   \"routes\": ["
    "     {\"name\": \"lab-results\", \"match\": {\"MSH-3\": \"LAB*\", \"MSH-9\": \"ORU^R01\"},"
    "      \"ordering\": {\"key\": \"PID-3.1\"}, \"ack_policy\": \"commit\"},"
    "     {\"name\": \"any-results\", \"match\": {\"MSH-9\": \"ORU^R01\"}, \"profile\": "
    "\"generic\"},"
    "     {\"name\": \"hosp-a\", \"match\": {\"PID-3.4\": \"HOSP_A\"}, \"ack_mode\": \"enhanced\"},"
    "     {\"name\": \"pinned-rep\", \"match\": {\"PID-3[2].4\": \"HOSP_B\"}},"
    "     {\"name\": \"registrations\", \"match\": {\"MSH-9\": \"ADT^A0?\"}},"
    "     {\"name\": \"adt-other\", \"match\": {\"MSH-9\": \"ADT\"}, \"on_upstream_down\": "
    "\"nak\"},"
    "     {\"name\": \"fhir-queries\", \"match\": {\"MSH-9\": \"QBP^Q22\"},"
    "      \"legs\": [\"legacy\", \"fhir\"], \"ack_policy\": \"fhir\"},"
    "     {\"name\": \"fhir-policy\", \"match\": {\"MSH-5\": \"CUTOVER\"}, \"ack_policy\": "
    "\"fhir\"},"
    "     {\"name\": \"several\", \"match\": {\"MSH-9\": [\"SIU^S12\", \"SIU^S14\"]}}]},"
    "  {\"name\": \"plain\", \"listen\": \"127.0.0.1\", \"port\": 7002, \"upstream\": \"ehr\"}]}";

static route_config_t *cfg;

static void setup(void)
{
    cfg = rt_config(config);
}

static void teardown(void)
{
    route_config_destroy(cfg);
    cfg = NULL;
}

#define MSH_PREFIX "MSH|^~\\&|"

START_TEST(the_first_route_whose_conditions_all_hold_wins)
{
    route_decision d;
    /* Both lab-results and any-results match: the first one listed wins. */
    rt_resolve(cfg, "lab", MSH_PREFIX "LAB1|HOSP|EHR|HOSP|20240101||ORU^R01|c1|P|2.5\nPID|1||123",
               &d);
    ck_assert_str_eq(d.route_name, "lab-results");
    ck_assert_int_eq(d.route_index, 0);
    ck_assert_int_eq(d.ack_policy, ROUTE_ACK_COMMIT);
    ck_assert_int_eq(d.ordering.kind, ROUTE_ORDER_KEY);
    ck_assert_str_eq(d.ordering.key_text, "PID-3.1");
    ck_assert_str_eq(d.profile, "lab");
    ck_assert_uint_eq(d.legs, ROUTE_LEG_LEGACY | ROUTE_LEG_FHIR);
    ck_assert_int_eq(d.filter_action, ROUTE_FILTER_NONE);
    ck_assert_int_eq(d.filter_index, -1);
    ck_assert_ptr_null(d.filter_path);
    ck_assert_int_eq(d.legacy_only_class, ROUTE_CLASS_NONE);

    /* MSH-3 does not match LAB*: not all conditions of the first route hold. */
    rt_resolve(cfg, "lab", MSH_PREFIX "RAD1|HOSP|EHR|HOSP|20240101||ORU^R01|c2|P|2.5\nPID|1||1",
               &d);
    ck_assert_str_eq(d.route_name, "any-results");
    ck_assert_int_eq(d.route_index, 1);
    ck_assert_int_eq(d.ack_policy, ROUTE_ACK_LEGACY);
    ck_assert_str_eq(d.profile, "generic");
    ck_assert_int_eq(d.ordering.kind, ROUTE_ORDER_CONNECTION);
}
END_TEST

START_TEST(a_message_no_route_matches_takes_the_feed_default)
{
    route_decision d;
    rt_resolve(cfg, "lab", MSH_PREFIX "X|Y|Z|W|20240101||ORM^O01|c3|P|2.3\nPID|1||5", &d);
    ck_assert_str_eq(d.route_name, ROUTE_DEFAULT_NAME);
    ck_assert_int_eq(d.route_index, -1);
    ck_assert_ptr_eq(d.feed, route_config_feed_find(cfg, "lab"));
    ck_assert_int_eq(d.ack_mode, HL7_ACK_MODE_ORIGINAL);
    ck_assert_int_eq(d.ack_policy, ROUTE_ACK_LEGACY);
    ck_assert_int_eq(d.on_upstream_down, ROUTE_DOWN_HOLD);
    ck_assert_str_eq(d.profile, "lab");

    rt_resolve(cfg, "plain", MSH_PREFIX "LAB1|H|E|H|20240101||ORU^R01|c4|P|2.5", &d);
    ck_assert_str_eq(d.route_name, "default");
    ck_assert_uint_eq(d.legs, ROUTE_LEG_LEGACY);
    ck_assert_str_eq(d.profile, "default");
}
END_TEST

START_TEST(msh9_globs_match_type_and_trigger)
{
    route_decision d;
    rt_resolve(cfg, "lab", MSH_PREFIX "A|B|C|D|20240101||ADT^A04|c5|P|2.5", &d);
    ck_assert_str_eq(d.route_name, "registrations");
    /* ? matches exactly one byte: A10 is not A0?, and falls to the type-only pattern. */
    rt_resolve(cfg, "lab", MSH_PREFIX "A|B|C|D|20240101||ADT^A10|c6|P|2.5", &d);
    ck_assert_str_eq(d.route_name, "adt-other");
    ck_assert_int_eq(d.on_upstream_down, ROUTE_DOWN_NAK);
    /* A pattern without ^ compares the type alone, whatever the trigger and structure. */
    rt_resolve(cfg, "lab", MSH_PREFIX "A|B|C|D|20240101||ADT^A31^ADT_A05|c7|P|2.5", &d);
    ck_assert_str_eq(d.route_name, "adt-other");
    /* An array of patterns matches any of them. */
    rt_resolve(cfg, "lab", MSH_PREFIX "A|B|C|D|20240101||SIU^S14|c8|P|2.5", &d);
    ck_assert_str_eq(d.route_name, "several");
    rt_resolve(cfg, "lab", MSH_PREFIX "A|B|C|D|20240101||SIU^S13|c9|P|2.5", &d);
    ck_assert_str_eq(d.route_name, "default");
}
END_TEST

START_TEST(msh9_is_compared_as_type_caret_trigger_whatever_the_separators)
{
    route_decision d;
    /* Component separator $ instead of ^: the pattern is still written ADT^A0?. */
    rt_resolve(cfg, "lab", "MSH#$~\\&#A#B#C#D#20240101##ADT$A01#c10#P#2.5", &d);
    ck_assert_str_eq(d.route_name, "registrations");
}
END_TEST

START_TEST(field_path_conditions_match_any_repetition_unless_one_is_pinned)
{
    route_decision d;
    /* HOSP_A in the second repetition of PID-3 matches PID-3.4. */
    rt_resolve(cfg, "lab",
               MSH_PREFIX "A|B|C|D|20240101||ORM^O01|c11|P|2.5\n"
                          "PID|1||111^^^OTHER~222^^^HOSP_A",
               &d);
    ck_assert_str_eq(d.route_name, "hosp-a");
    ck_assert_int_eq(d.ack_mode, HL7_ACK_MODE_ENHANCED);
    /* PID-3[2].4 looks only at the second repetition. */
    rt_resolve(cfg, "lab",
               MSH_PREFIX "A|B|C|D|20240101||ORM^O01|c12|P|2.5\n"
                          "PID|1||111^^^OTHER~222^^^HOSP_B",
               &d);
    ck_assert_str_eq(d.route_name, "pinned-rep");
    rt_resolve(cfg, "lab",
               MSH_PREFIX "A|B|C|D|20240101||ORM^O01|c13|P|2.5\n"
                          "PID|1||222^^^HOSP_B~111^^^OTHER",
               &d);
    ck_assert_str_eq(d.route_name, "default");
    /* No PID at all: the condition reads an empty value and does not hold. */
    rt_resolve(cfg, "lab", MSH_PREFIX "A|B|C|D|20240101||ORM^O01|c14|P|2.5", &d);
    ck_assert_str_eq(d.route_name, "default");
}
END_TEST

START_TEST(legacy_only_classes_go_to_the_legacy_leg_by_default)
{
    static const struct {
        const char *type;
        route_class cls;
    } cases[] = {
        {"QBP^Q11", ROUTE_CLASS_QUERY},       {"RSP^K11", ROUTE_CLASS_QUERY_RESPONSE},
        {"QRY^A19", ROUTE_CLASS_QUERY},       {"VXQ^V01", ROUTE_CLASS_QUERY},
        {"MFN^M02", ROUTE_CLASS_MASTER_FILE}, {"MFK^M01", ROUTE_CLASS_MASTER_FILE},
        {"DFT^P03", ROUTE_CLASS_FINANCIAL},   {"BAR^P01", ROUTE_CLASS_FINANCIAL},
        {"ACK^R01", ROUTE_CLASS_ACK},         {"ACK", ROUTE_CLASS_ACK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[160];
        int n = snprintf(text, sizeof(text), MSH_PREFIX "A|B|C|D|20240101||%s|q%zu|P|2.5",
                         cases[i].type, i);
        ck_assert(n > 0 && (size_t)n < sizeof(text));
        route_decision d;
        rt_resolve(cfg, "lab", text, &d);
        ck_assert_msg(d.legs == ROUTE_LEG_LEGACY, "%s: legs %u", cases[i].type, d.legs);
        ck_assert_msg(d.legacy_only_class == cases[i].cls, "%s: class %s", cases[i].type,
                      route_class_name(d.legacy_only_class));
    }
    ck_assert_int_eq(route_class_of(PX_LIT("ORU")), ROUTE_CLASS_NONE);
    ck_assert_int_eq(route_class_of(PX_LIT("qbp")), ROUTE_CLASS_QUERY);
    ck_assert_int_eq(route_class_of(PX_LIT("QBPX")), ROUTE_CLASS_NONE);
    ck_assert_str_eq(route_class_name(ROUTE_CLASS_MASTER_FILE), "master_file");
}
END_TEST

START_TEST(a_route_that_lists_its_legs_overrides_the_class_default)
{
    route_decision d;
    rt_resolve(cfg, "lab", MSH_PREFIX "A|B|C|D|20240101||QBP^Q22|q1|P|2.5", &d);
    ck_assert_str_eq(d.route_name, "fhir-queries");
    ck_assert_uint_eq(d.legs, ROUTE_LEG_LEGACY | ROUTE_LEG_FHIR);
    ck_assert_int_eq(d.legacy_only_class, ROUTE_CLASS_NONE);
    ck_assert_int_eq(d.ack_policy, ROUTE_ACK_FHIR);
}
END_TEST

START_TEST(a_message_without_a_fhir_leg_is_answered_by_the_legacy_policy)
{
    route_decision d;
    /* The fhir-policy route keeps the feed's legs; an ORM has both, so the policy stands. */
    rt_resolve(cfg, "lab", MSH_PREFIX "A|B|CUTOVER|D|20240101||ORM^O01|p1|P|2.5", &d);
    ck_assert_str_eq(d.route_name, "fhir-policy");
    ck_assert_int_eq(d.ack_policy, ROUTE_ACK_FHIR);
    /* A DFT on the same route loses its FHIR leg to the class default, so it cannot be
     * answered from the FHIR write. */
    rt_resolve(cfg, "lab", MSH_PREFIX "A|B|CUTOVER|D|20240101||DFT^P03|p2|P|2.5", &d);
    ck_assert_str_eq(d.route_name, "fhir-policy");
    ck_assert_uint_eq(d.legs, ROUTE_LEG_LEGACY);
    ck_assert_int_eq(d.ack_policy, ROUTE_ACK_LEGACY);
    /* And so does a test message the legacy_only filter keeps off FHIR. */
    rt_resolve(cfg, "lab", MSH_PREFIX "A|B|CUTOVER|D|20240101||ORM^O01|p3|T|2.5", &d);
    ck_assert_int_eq(d.filter_action, ROUTE_FILTER_LEGACY_ONLY);
    ck_assert_int_eq(d.ack_policy, ROUTE_ACK_LEGACY);
}
END_TEST

START_TEST(filters_refuse_or_keep_messages_off_the_fhir_leg)
{
    route_decision d;
    rt_resolve(cfg, "lab", MSH_PREFIX "LAB1|RETIRED_EAST|C|D|20240101||ORU^R01|f1|P|2.5", &d);
    ck_assert_int_eq(d.filter_action, ROUTE_FILTER_REFUSE);
    ck_assert_int_eq(d.filter_index, 0);
    ck_assert_str_eq(d.filter_path, "MSH-4");
    ck_assert_uint_eq(d.legs, 0);
    /* The route is still resolved, for the ledger row. */
    ck_assert_str_eq(d.route_name, "lab-results");

    rt_resolve(cfg, "lab", MSH_PREFIX "LAB1|H|C|D|20240101||ORU^R01|f2|T|2.5", &d);
    ck_assert_int_eq(d.filter_action, ROUTE_FILTER_LEGACY_ONLY);
    ck_assert_int_eq(d.filter_index, 1);
    ck_assert_str_eq(d.filter_path, "MSH-11");
    ck_assert_uint_eq(d.legs, ROUTE_LEG_LEGACY);

    rt_resolve(cfg, "lab",
               MSH_PREFIX "LAB1|H|C|D|20240101||ORU^R01|f3|P|2.5\nPID|1||1\n"
                          "OBX|1|RP|PDF^Report||^application^pdf",
               &d);
    ck_assert_int_eq(d.filter_action, ROUTE_FILTER_SKIP_FHIR);
    ck_assert_int_eq(d.filter_index, 2);
    ck_assert_uint_eq(d.legs, ROUTE_LEG_LEGACY);
    ck_assert_str_eq(route_filter_action_name(d.filter_action), "skip_fhir");

    /* MSH-11 D is in the fourth filter only. */
    rt_resolve(cfg, "lab", MSH_PREFIX "LAB1|H|C|D|20240101||ORU^R01|f4|D|2.5", &d);
    ck_assert_int_eq(d.filter_action, ROUTE_FILTER_REFUSE);
    ck_assert_int_eq(d.filter_index, 3);
    /* T matches both the second and the fourth: the first that matches decides. */
    rt_resolve(cfg, "lab", MSH_PREFIX "LAB1|H|C|D|20240101||ORU^R01|f5|T|2.5", &d);
    ck_assert_int_eq(d.filter_index, 1);

    const route_feed *lab = route_config_feed_find(cfg, "lab");
    ck_assert_uint_eq(lab->filter_count, 4);
    ck_assert_str_eq(route_feed_filter_path(lab, 2), "OBX-2");
    ck_assert_int_eq(route_feed_filter_action(lab, 3), ROUTE_FILTER_REFUSE);
}
END_TEST

START_TEST(msh9_filters_compare_exactly_with_type_or_type_caret_trigger)
{
    static const char text[] =
        "{\"instance\": \"px\", \"ledger\": {\"path\": \"l.db\"},"
        " \"upstreams\": [{\"name\": \"ehr\", \"host\": \"127.0.0.1\", \"port\": 2575}],"
        " \"feeds\": [{\"name\": \"f\", \"listen\": \"127.0.0.1\", \"port\": 7000,"
        "   \"upstream\": \"ehr\", \"filters\": ["
        "     {\"path\": \"MSH-9\", \"equals\": \"ADT^A01\", \"action\": \"refuse\"},"
        "     {\"path\": \"MSH-9\", \"in\": [\"ORM\", \"SIU^S12\"], \"action\": \"skip_fhir\"},"
        "     {\"path\": \"PID-8\", \"equals\": \"\", \"action\": \"legacy_only\"}]}]}";
    route_config_t *c = rt_config(text);
    route_decision d;
    rt_resolve(c, "f", MSH_PREFIX "A|B|C|D|20240101||ADT^A01|e1|P|2.5\nPID|1||1|||||F", &d);
    ck_assert_int_eq(d.filter_index, 0);
    /* Equality is exact: A011 is not A01, and * is not a wildcard for equals. */
    rt_resolve(c, "f", MSH_PREFIX "A|B|C|D|20240101||ADT^A011|e2|P|2.5\nPID|1||1|||||F", &d);
    ck_assert_int_eq(d.filter_index, -1);
    rt_resolve(c, "f", MSH_PREFIX "A|B|C|D|20240101||ORM^O01|e3|P|2.5\nPID|1||1|||||F", &d);
    ck_assert_int_eq(d.filter_index, 1);
    rt_resolve(c, "f", MSH_PREFIX "A|B|C|D|20240101||SIU^S12|e4|P|2.5\nPID|1||1|||||F", &d);
    ck_assert_int_eq(d.filter_index, 1);
    rt_resolve(c, "f", MSH_PREFIX "A|B|C|D|20240101||SIU^S13|e5|P|2.5\nPID|1||1|||||F", &d);
    ck_assert_int_eq(d.filter_index, -1);
    /* An empty PID-8, or no PID at all, equals "". */
    rt_resolve(c, "f", MSH_PREFIX "A|B|C|D|20240101||SIU^S13|e6|P|2.5\nPID|1||1", &d);
    ck_assert_int_eq(d.filter_index, 2);
    rt_resolve(c, "f", MSH_PREFIX "A|B|C|D|20240101||SIU^S13|e7|P|2.5", &d);
    ck_assert_int_eq(d.filter_index, 2);
    route_config_destroy(c);
}
END_TEST

START_TEST(resolution_with_only_the_msh_reads_other_paths_as_empty)
{
    rt_msg msg;
    rt_msg_parse(&msg, MSH_PREFIX "LAB1|H|C|D|20240101||ORU^R01|m1|P|2.5\n"
                                  "PID|1||1^^^HOSP_A");
    const route_feed *lab = route_config_feed_find(cfg, "lab");
    route_decision d;
    route_resolve(cfg, lab, NULL, &msg.msh, &d);
    ck_assert_str_eq(d.route_name, "lab-results");
    /* Without the message PID-3.4 cannot be read: hosp-a does not match. */
    rt_msg_free(&msg);
    rt_msg_parse(&msg, MSH_PREFIX "X|H|C|D|20240101||ORM^O01|m2|P|2.5\nPID|1||1^^^HOSP_A");
    route_resolve(cfg, lab, msg.m, &msg.msh, &d);
    ck_assert_str_eq(d.route_name, "hosp-a");
    route_resolve(cfg, lab, NULL, &msg.msh, &d);
    ck_assert_str_eq(d.route_name, "default");
    rt_msg_free(&msg);
}
END_TEST

START_TEST(the_ordering_key_is_read_from_the_message)
{
    rt_msg msg;
    rt_msg_parse(&msg, MSH_PREFIX "LAB1|H|C|D|20240101||ORU^R01|o1|P|2.5\nPID|1||4711^^^H");
    route_decision d;
    route_resolve(cfg, route_config_feed_find(cfg, "lab"), msg.m, &msg.msh, &d);
    px_str key = PX_STR_NULL;
    ck_assert(route_ordering_value(&d.ordering, msg.m, &key));
    ck_assert(px_str_eq(key, PX_LIT("4711")));
    rt_msg_free(&msg);

    /* A connection-ordered decision has no key. */
    rt_msg_parse(&msg, MSH_PREFIX "X|H|C|D|20240101||ORM^O01|o2|P|2.5\nPID|1||4711");
    route_resolve(cfg, route_config_feed_find(cfg, "lab"), msg.m, &msg.msh, &d);
    ck_assert(!route_ordering_value(&d.ordering, msg.m, &key));
    ck_assert_uint_eq(key.len, 0);
    rt_msg_free(&msg);
}
END_TEST

START_TEST(resolution_is_fast_and_never_allocates)
{
    rt_msg msg;
    rt_msg_parse(&msg, MSH_PREFIX "RAD|H|C|D|20240101||SIU^S14|b1|P|2.5\n"
                                  "PID|1||1^^^X~2^^^Y~3^^^Z\nOBX|1|ST|A||v");
    const route_feed *lab = route_config_feed_find(cfg, "lab");
    route_decision d;
    enum { ROUNDS = 100000 };
    struct timespec t0, t1;
    px_alloc_fail_after(-1);
    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
    /* The message matches only the last of nine routes, after four filters. */
    for (int i = 0; i < ROUNDS; i++)
        route_resolve(cfg, lab, msg.m, &msg.msh, &d);
    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
    ck_assert_int_eq(px_alloc_fail_after(-1), 0);
    ck_assert_str_eq(d.route_name, "several");
    double ns =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / ROUNDS;
    /* A generous bound (sanitizer builds included): the proxy calls this for every message
     * and aims at thousands per second per core. */
    ck_assert_msg(ns < 20000.0, "%.0f ns per resolution", ns);
    rt_msg_free(&msg);
}
END_TEST

TCase *routing_tcase_resolve(void)
{
    TCase *tc = tcase_create("resolve");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_first_route_whose_conditions_all_hold_wins);
    tcase_add_test(tc, a_message_no_route_matches_takes_the_feed_default);
    tcase_add_test(tc, msh9_globs_match_type_and_trigger);
    tcase_add_test(tc, msh9_is_compared_as_type_caret_trigger_whatever_the_separators);
    tcase_add_test(tc, field_path_conditions_match_any_repetition_unless_one_is_pinned);
    tcase_add_test(tc, legacy_only_classes_go_to_the_legacy_leg_by_default);
    tcase_add_test(tc, a_route_that_lists_its_legs_overrides_the_class_default);
    tcase_add_test(tc, a_message_without_a_fhir_leg_is_answered_by_the_legacy_policy);
    tcase_add_test(tc, filters_refuse_or_keep_messages_off_the_fhir_leg);
    tcase_add_test(tc, msh9_filters_compare_exactly_with_type_or_type_caret_trigger);
    tcase_add_test(tc, resolution_with_only_the_msh_reads_other_paths_as_empty);
    tcase_add_test(tc, the_ordering_key_is_read_from_the_message);
    tcase_add_test(tc, resolution_is_fast_and_never_allocates);
    return tc;
}
