#ifndef PX_TESTS_TOOLS_TCASES_H
#define PX_TESTS_TOOLS_TCASES_H

#include <check.h>

TCase *tools_tcase_mock_ehr(void);
TCase *tools_tcase_send(void);
TCase *tools_tcase_bench(void);
TCase *tools_tcase_histogram(void);
TCase *tools_tcase_cli(void);
TCase *tools_tcase_mllp_io(void);

/* The built parallax binary, from the command line (NULL when not given). */
extern const char *tools_test_parallax;

#endif
