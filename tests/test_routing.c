/* The routing suite: configuration loading and validation, route resolution, check-config.
 * Arguments: the parallax binary and the source root (tests/meson.build passes both). */
#include <check.h>
#include <stdlib.h>

#include "routing/tcases.h"

const char *routing_test_parallax;
const char *routing_test_source_root;

int main(int argc, char **argv)
{
    routing_test_parallax = argc > 1 ? argv[1] : NULL;
    routing_test_source_root = argc > 2 ? argv[2] : NULL;
    Suite *s = suite_create("routing");
    suite_add_tcase(s, routing_tcase_errors());
    suite_add_tcase(s, routing_tcase_defaults());
    suite_add_tcase(s, routing_tcase_resolve());
    suite_add_tcase(s, routing_tcase_load());
    suite_add_tcase(s, routing_tcase_cli());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
