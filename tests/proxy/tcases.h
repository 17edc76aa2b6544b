#ifndef PX_TESTS_PROXY_TCASES_H
#define PX_TESTS_PROXY_TCASES_H

#include <check.h>

TCase *proxy_tcase_happy_path(void);
TCase *proxy_tcase_upstream_down(void);
TCase *proxy_tcase_upstream_faults(void);
TCase *proxy_tcase_transparency(void);
TCase *proxy_tcase_retransmissions(void);
TCase *proxy_tcase_ledger_failure(void);
TCase *proxy_tcase_lifecycle(void);
TCase *proxy_tcase_operations(void);
TCase *proxy_tcase_routing(void);

#endif
