/* The proxy suite: `parallax serve` end to end over real sockets on 127.0.0.1, with the
 * mock EHR, the real ledger file and real processes. One TCase per behaviour, each defined
 * in tests/proxy/. */
#include <check.h>
#include <stdlib.h>

#include "proxy/tcases.h"

int main(void)
{
    Suite *s = suite_create("proxy");
    suite_add_tcase(s, proxy_tcase_happy_path());
    suite_add_tcase(s, proxy_tcase_upstream_down());
    suite_add_tcase(s, proxy_tcase_upstream_faults());
    suite_add_tcase(s, proxy_tcase_transparency());
    suite_add_tcase(s, proxy_tcase_retransmissions());
    suite_add_tcase(s, proxy_tcase_ledger_failure());
    suite_add_tcase(s, proxy_tcase_lifecycle());
    suite_add_tcase(s, proxy_tcase_operations());
    suite_add_tcase(s, proxy_tcase_routing());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
