/* The tools suite: mock EHR, send and bench over real sockets on 127.0.0.1. Each TCase is
 * defined in tests/tools/. Usage: test_tools PATH-TO-PARALLAX */
#include <check.h>
#include <signal.h>
#include <stdlib.h>

#include "tools/tcases.h"

int main(int argc, char **argv)
{
    if (argc > 1)
        tools_test_parallax = argv[1];
    /* A peer closing while a test writes must fail an assertion, not kill the runner. */
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("tools");
    suite_add_tcase(s, tools_tcase_histogram());
    suite_add_tcase(s, tools_tcase_mllp_io());
    suite_add_tcase(s, tools_tcase_mock_ehr());
    suite_add_tcase(s, tools_tcase_send());
    suite_add_tcase(s, tools_tcase_bench());
    suite_add_tcase(s, tools_tcase_cli());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
