#ifndef PX_TESTS_HL7_TCASES_H
#define PX_TESTS_HL7_TCASES_H

#include <check.h>

TCase *hl7_tcase_parse(void);
TCase *hl7_tcase_path(void);
TCase *hl7_tcase_corpus(void);
TCase *hl7_tcase_batch(void);
TCase *hl7_tcase_escape(void);
TCase *hl7_tcase_ack(void);
TCase *hl7_tcase_mllp(void);
TCase *hl7_tcase_dict(void);

#endif
