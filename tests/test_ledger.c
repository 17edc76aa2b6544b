/* The ledger suite. */
#include <check.h>
#include <stdlib.h>

#include "ledger/tcases.h"

int main(void)
{
    Suite *s = suite_create("ledger");
    suite_add_tcase(s, ledger_tcase_files());
    suite_add_tcase(s, ledger_tcase_migrations());
    suite_add_tcase(s, ledger_tcase_group_commit());
    suite_add_tcase(s, ledger_tcase_write_failures());
    suite_add_tcase(s, ledger_tcase_reads());
    suite_add_tcase(s, ledger_tcase_queries());
    suite_add_tcase(s, ledger_tcase_crash());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
