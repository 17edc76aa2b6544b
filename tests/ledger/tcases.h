#ifndef PX_TESTS_LEDGER_TCASES_H
#define PX_TESTS_LEDGER_TCASES_H

#include <check.h>

TCase *ledger_tcase_files(void);
TCase *ledger_tcase_migrations(void);
TCase *ledger_tcase_group_commit(void);
TCase *ledger_tcase_write_failures(void);
TCase *ledger_tcase_reads(void);
TCase *ledger_tcase_queries(void);
TCase *ledger_tcase_crash(void);

#endif
