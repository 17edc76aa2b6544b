#ifndef PX_TESTS_COMMON_TCASES_H
#define PX_TESTS_COMMON_TCASES_H

#include <check.h>

TCase *common_tcase_buf(void);
TCase *common_tcase_str(void);
TCase *common_tcase_msg(void);

#endif
