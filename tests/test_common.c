/* The common suite. */
#include <check.h>
#include <stdlib.h>

#include "common/tcases.h"

int main(void)
{
    Suite *s = suite_create("common");
    suite_add_tcase(s, common_tcase_buf());
    suite_add_tcase(s, common_tcase_str());
    suite_add_tcase(s, common_tcase_msg());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
