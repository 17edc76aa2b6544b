#ifndef PX_TESTS_ROUTING_TCASES_H
#define PX_TESTS_ROUTING_TCASES_H

#include <check.h>

TCase *routing_tcase_errors(void);
TCase *routing_tcase_defaults(void);
TCase *routing_tcase_resolve(void);
TCase *routing_tcase_load(void);
TCase *routing_tcase_cli(void);

/* Set by main from its arguments: the built parallax binary and the source root (for
 * examples/). NULL when not given; the tests that need them fail with a clear message. */
extern const char *routing_test_parallax;
extern const char *routing_test_source_root;

#endif
