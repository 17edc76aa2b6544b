/* The hl7 suite: one TCase per behaviour, each defined in tests/hl7/. */
#include <check.h>
#include <stdlib.h>

#include "hl7/tcases.h"

int main(void)
{
    Suite *s = suite_create("hl7");
    suite_add_tcase(s, hl7_tcase_parse());
    suite_add_tcase(s, hl7_tcase_path());
    suite_add_tcase(s, hl7_tcase_corpus());
    suite_add_tcase(s, hl7_tcase_batch());
    suite_add_tcase(s, hl7_tcase_escape());
    suite_add_tcase(s, hl7_tcase_ack());
    suite_add_tcase(s, hl7_tcase_mllp());
    suite_add_tcase(s, hl7_tcase_dict());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
