/* Every validation error names the key path of the offending value and what was expected.
 * Each case changes one value of a valid base config and asserts the exact path that starts
 * the message and a fragment of what follows it. */
#include <string.h>

#include "routing_support.h"
#include "tcases.h"

static const char base[] =
    "{\"instance\": \"t1\","
    " \"ledger\": {\"path\": \"t.db\"},"
    " \"admin\": {\"port\": 9090},"
    " \"limits\": {},"
    " \"upstreams\": ["
    "   {\"name\": \"ehr\", \"host\": \"127.0.0.1\", \"port\": 2575},"
    "   {\"name\": \"lis\", \"host\": \"lis.example.org\", \"port\": 2576}],"
    " \"feeds\": ["
    "   {\"name\": \"lab\", \"listen\": \"127.0.0.1\", \"port\": 6661, \"upstream\": \"ehr\","
    "    \"filters\": [{\"path\": \"MSH-11\", \"equals\": \"T\", \"action\": \"legacy_only\"}],"
    "    \"routes\": [{\"name\": \"results\", \"match\": {\"MSH-9\": \"ORU^R01\"}}]},"
    "   {\"name\": \"adt\", \"listen\": \"127.0.0.1\", \"port\": 6662, \"upstream\": \"lis\"}]}";

struct bad_case {
    const char *set;   /* slash path of the change ("" replaces the whole document) */
    const char *value; /* JSON text, NULL removes the key */
    const char *path;  /* the key path the message must start with */
    const char *what;  /* a fragment the rest of the message must hold */
};

static const struct bad_case cases[] = {
    /* top level */
    {"", "[1, 2]", "(top level)", "expected an object, got an array"},
    {"instance", NULL, "instance", "missing (expected a string)"},
    {"instanse", "\"x\"", "instanse", "unknown key (did you mean \"instance\"?)"},
    {"instance", "\"px 1\"", "instance", "a name uses only letters, digits"},
    {"fhir", "{}", "fhir", "unknown key"},
    /* ledger */
    {"ledger", NULL, "ledger", "missing (expected an object"},
    {"ledger/path", "\"../secrets/ledger.db\"", "ledger.path", "\"..\" components are not allowed"},
    {"ledger/path", "\"/var/lib/px/\"", "ledger.path", "expected a file path, not a directory"},
    {"ledger/path", "\"\"", "ledger.path", "expected a non-empty string"},
    {"ledger/synchronous", "\"off\"", "ledger.synchronous",
     "expected \"full\" or \"normal\", got \"off\""},
    {"ledger/journal_size_limit_mb", "0", "ledger.journal_size_limit_mb",
     "expected an integer from 1 to 65536, got 0"},
    {"ledger/busy_timeout", "5", "ledger.busy_timeout",
     "unknown key (did you mean \"busy_timeout_ms\"?)"},
    /* admin */
    {"admin/port", "0", "admin.port", "expected an integer from 1 to 65535, got 0"},
    {"admin/listen", "\"localhost\"", "admin.listen", "expected an IP address"},
    {"admin/port", "6661", "admin.port", "port 6661 is already used by feeds[0] (\"lab\")"},
    /* limits */
    {"limits/max_connections_per_peer", "5000", "limits.max_connections_per_peer",
     "5000 exceeds max_connections (4096)"},
    {"limits/max_message_bytes", "1.5", "limits.max_message_bytes", "got a decimal number"},
    {"limits/inflight_bytes", "2048", "limits.inflight_bytes",
     "2048 is less than max_message_bytes (16777216)"},
    {"limits/frame_deadline_ms", "0", "limits.frame_deadline_ms",
     "expected an integer from 1 to 86400000, got 0"},
    {"limits/idle_timeout_ms", "\"60s\"", "limits.idle_timeout_ms", "got a string"},
    {"limits", "[]", "limits", "expected an object, got an array"},
    /* upstreams */
    {"upstreams", "[]", "upstreams", "expected at least one upstream"},
    {"upstreams/0/pool", "65", "upstreams[0].pool", "expected an integer from 1 to 64, got 65"},
    {"upstreams/0/host", "\"bad host!\"", "upstreams[0].host",
     "expected a host name or an IP address"},
    {"upstreams/1/name", "\"ehr\"", "upstreams[1].name",
     "duplicate upstream name \"ehr\" (also upstreams[0])"},
    {"upstreams/0/reconnect_min_ms", "9000", "upstreams[0].reconnect_min_ms",
     "9000 exceeds reconnect_max_ms (5000)"},
    {"upstreams/0/require_msa2_echo", "\"yes\"", "upstreams[0].require_msa2_echo",
     "expected true or false, got a string"},
    {"upstreams/1/port", "70000", "upstreams[1].port",
     "expected an integer from 1 to 65535, got 70000"},
    {"upstreams/0/breaker_failures", "-1", "upstreams[0].breaker_failures", "got -1"},
    /* feeds */
    {"feeds", "{}", "feeds", "expected an array of feeds, got an object"},
    {"feeds/1/name", "\"lab\"", "feeds[1].name", "duplicate feed name \"lab\" (also feeds[0])"},
    {"feeds/1/port", "6661", "feeds[1].port", "port 6661 is already used by feeds[0] (\"lab\")"},
    {"feeds/0/port", NULL, "feeds[0].port", "missing (expected an integer from 1 to 65535)"},
    {"feeds/0/listen", "\"0.0.0.0.0\"", "feeds[0].listen", "expected an IP address"},
    {"feeds/0/upstream", "\"ehrr\"", "feeds[0].upstream", "no upstream is named \"ehrr\""},
    {"upstreams/0/port", "6661", "feeds[0].upstream",
     "upstream \"ehr\" (127.0.0.1:6661) is this feed's own listener: messages would loop"},
    {"feeds/0/ack_mode", "\"orignal\"", "feeds[0].ack_mode",
     "expected \"original\", \"enhanced\" or \"from-MSH\", got \"orignal\""},
    {"feeds/0/ack_policy", "\"fhir\"", "feeds[0].ack_policy",
     "ack_policy \"fhir\" answers from the FHIR write, so legs must include the \"fhir\" leg"},
    {"feeds/0/ack_policy", "\"dual\"", "feeds[0].ack_policy",
     "expected \"legacy\", \"commit\", \"fhir\" or \"both\", got \"dual\""},
    {"feeds/0/on_upstream_down", "\"drop\"", "feeds[0].on_upstream_down",
     "expected \"hold\", \"queue\" or \"nak\", got \"drop\""},
    {"feeds/0/timezone", "\"Mars/Olympus_Mons\"", "feeds[0].timezone",
     "unknown time zone \"Mars/Olympus_Mons\""},
    {"feeds/0/timezone", "\"../../etc/passwd\"", "feeds[0].timezone",
     "expected an IANA time-zone name"},
    {"feeds/0/timezone", "\"leapseconds\"", "feeds[0].timezone", "unknown time zone"},
    {"feeds/0/charset", "\"UTF8\"", "feeds[0].charset", "expected an HL7 table 0211 character set"},
    {"feeds/0/legs", "[]", "feeds[0].legs", "expected at least one leg"},
    {"feeds/0/legs", "[\"legacy\", \"legacy\"]", "feeds[0].legs[1]", "leg listed twice"},
    {"feeds/0/legs", "[\"hl7\"]", "feeds[0].legs[0]", "expected \"legacy\" or \"fhir\""},
    {"feeds/0/legs", "[\"fhir\"]", "feeds[0].legs",
     "ack_policy \"legacy\" relays the EHR's ACK, so legs must include the \"legacy\" leg"},
    {"feeds/0/ordering", "\"patient\"", "feeds[0].ordering",
     "expected \"connection\", \"feed\" or {\"key\": \"<field path>\"}, got \"patient\""},
    {"feeds/0/ordering", "{\"key\": \"PID-3.x\"}", "feeds[0].ordering.key", "bad path:"},
    {"feeds/0/ordering", "{\"field\": \"PID-3\"}", "feeds[0].ordering.field", "unknown key"},
    {"feeds/0/max_message_bytes", "512", "feeds[0].max_message_bytes",
     "expected an integer from 1024 to 1073741824, got 512"},
    {"feeds/0/max_message_bytes", "300000000", "feeds[0].max_message_bytes",
     "300000000 exceeds limits.inflight_bytes (268435456)"},
    {"feeds/0/retransmit_window", "0", "feeds[0].retransmit_window", "got 0"},
    {"feeds/0/hold_close_after_ms", "-5", "feeds[0].hold_close_after_ms", "got -5"},
    {"feeds/0/name", "\"\"", "feeds[0].name", "expected a non-empty string"},
    {"feeds/0/profile", "\"lab results\"", "feeds[0].profile", "a name uses only letters, digits"},
    {"feeds/1/rutes", "[]", "feeds[1].rutes", "unknown key (did you mean \"routes\"?)"},
    /* routes */
    {"feeds/0/routes/0/match/PID-3.x", "\"A\"", "feeds[0].routes[0].match.PID-3.x",
     "bad path: expected a component number at offset 6"},
    {"feeds/0/routes/0/match/pid-3", "\"A\"", "feeds[0].routes[0].match.pid-3", "bad path:"},
    {"feeds/0/routes/0/match", "{}", "feeds[0].routes[0].match", "expected at least one condition"},
    {"feeds/0/routes/0/match", NULL, "feeds[0].routes[0].match", "missing"},
    {"feeds/0/routes/0/match/MSH-9", "[]", "feeds[0].routes[0].match.MSH-9",
     "expected at least one value"},
    {"feeds/0/routes/0/match/MSH-9", "[\"ORU^R01\", 1]", "feeds[0].routes[0].match.MSH-9[1]",
     "expected a string, got an integer"},
    {"feeds/0/routes/0/match/MSH-9", "true", "feeds[0].routes[0].match.MSH-9",
     "expected a string or an array of strings, got a boolean"},
    {"feeds/0/routes/0/name", "\"default\"", "feeds[0].routes[0].name",
     "\"default\" is the name of the feed's own settings"},
    {"feeds/0/routes/1", "{\"name\": \"results\", \"match\": {\"MSH-3\": \"X\"}}",
     "feeds[0].routes[1].name", "duplicate route name \"results\" (also routes[0])"},
    {"feeds/0/routes/0/legs", "[\"fhir\"]", "feeds[0].routes[0].legs",
     "so legs must include the \"legacy\" leg"},
    {"feeds/0/routes/0/ack_policy", "\"both\"", "feeds[0].routes[0].ack_policy",
     "ack_policy \"both\" waits for both sides, so legs must include both legs"},
    {"feeds/0/routes/0/macth", "{}", "feeds[0].routes[0].macth",
     "unknown key (did you mean \"match\"?)"},
    {"feeds/0/routes/0/ordering", "{\"key\": \"PID\"}", "feeds[0].routes[0].ordering.key",
     "bad path:"},
    {"feeds/0/routes/0/on_upstream_down", "\"retry\"", "feeds[0].routes[0].on_upstream_down",
     "expected \"hold\", \"queue\" or \"nak\""},
    {"feeds/0/routes", "{}", "feeds[0].routes", "expected an array, got an object"},
    /* filters */
    {"feeds/0/filters/0/action", "\"drop\"", "feeds[0].filters[0].action",
     "expected \"refuse\", \"legacy_only\" or \"skip_fhir\", got \"drop\""},
    {"feeds/0/filters/0/action", NULL, "feeds[0].filters[0].action", "missing"},
    {"feeds/0/filters/0/in", "[\"A\"]", "feeds[0].filters[0].in",
     "a filter has one of \"equals\", \"in\" or \"glob\""},
    {"feeds/0/filters/0/equals", NULL, "feeds[0].filters[0]", "missing the condition"},
    {"feeds/0/filters/0/path", "\"MSH\"", "feeds[0].filters[0].path", "bad path:"},
    {"feeds/0/filters/0/equals", "[\"T\"]", "feeds[0].filters[0].equals",
     "expected a string, got an array"},
    {"feeds/0/filters/1", "{\"path\": \"MSH-11\", \"in\": \"T\", \"action\": \"refuse\"}",
     "feeds[0].filters[1].in", "expected an array of strings, got a string"},
    {"feeds/0/filters/0/when", "1", "feeds[0].filters[0].when", "unknown key"},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

START_TEST(the_base_config_of_the_error_table_is_valid)
{
    route_config_destroy(rt_config(base));
}
END_TEST

START_TEST(each_invalid_value_is_refused_with_its_key_path)
{
    const struct bad_case *c = &cases[_i];
    px_error err;
    px_error_clear(&err);
    px_err rc = rt_parse_changed(base, c->set, c->value, &err);
    ck_assert_msg(rc == PX_ERR_INVAL, "case %d (%s): rc %s, msg '%s'", _i, c->set, px_err_name(rc),
                  err.msg);
    size_t plen = strlen(c->path);
    ck_assert_msg(strncmp(err.msg, c->path, plen) == 0 && strncmp(err.msg + plen, ": ", 2) == 0,
                  "case %d: expected path '%s' in '%s'", _i, c->path, err.msg);
    ck_assert_msg(strstr(err.msg + plen, c->what) != NULL, "case %d: expected '%s' in '%s'", _i,
                  c->what, err.msg);
}
END_TEST

START_TEST(json_syntax_errors_give_line_and_column)
{
    static const char text[] = "{\"instance\": \"a\",\n  \"ledger\": }\n";
    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    ck_assert_int_eq(route_config_parse(text, strlen(text), &cfg, &err), PX_ERR_PARSE);
    ck_assert_ptr_null(cfg);
    ck_assert_int_eq(err.detail, 2);
    ck_assert_msg(strncmp(err.msg, "2:13: ", 6) == 0, "got '%s'", err.msg);
}
END_TEST

START_TEST(duplicate_keys_are_refused_rather_than_the_last_winning)
{
    static const char text[] = "{\"instance\": \"a\", \"instance\": \"b\"}";
    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    ck_assert_int_eq(route_config_parse(text, strlen(text), &cfg, &err), PX_ERR_PARSE);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(err.msg, "duplicate") != NULL, "got '%s'", err.msg);
}
END_TEST

START_TEST(empty_and_oversized_documents_are_refused)
{
    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    ck_assert_int_eq(route_config_parse("", 0, &cfg, &err), PX_ERR_PARSE);
    ck_assert_ptr_null(cfg);
    ck_assert_int_eq(route_config_parse(base, ROUTE_CONFIG_MAX_BYTES + 1, &cfg, &err),
                     PX_ERR_TOO_LARGE);
    ck_assert_ptr_null(cfg);
}
END_TEST

TCase *routing_tcase_errors(void)
{
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, the_base_config_of_the_error_table_is_valid);
    tcase_add_loop_test(tc, each_invalid_value_is_refused_with_its_key_path, 0, (int)NCASES);
    tcase_add_test(tc, json_syntax_errors_give_line_and_column);
    tcase_add_test(tc, duplicate_keys_are_refused_rather_than_the_last_winning);
    tcase_add_test(tc, empty_and_oversized_documents_are_refused);
    return tc;
}
