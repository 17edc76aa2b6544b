/* Writes a small ledger for the CLI tests: make_fixture PATH.
 * Ten messages: six lab ORU^R01 from LAB^HOSP on 2026-11-25 (two with an
 * outcome_mismatch, one AE), four adt ADT^A01 from REG^HOSP on 2026-11-26 (one with a
 * conversion_gap). */
#include <stdio.h>

#include "ledger/ledger.h"

/* 2026-11-25T00:00:00Z */
#define DAY0 1795564800000LL

static int add(ledger_t *l, const char *feed, const char *type, const char *trigger,
               const char *app, int64_t at, const char *ack, int div)
{
    ledger_op_t *op = NULL;
    if (ledger_op_create(NULL, &op, NULL) != PX_OK)
        return -1;
    ledger_message_rec m = {.received_at_ms = at,
                            .feed = px_str_from_cstr(feed),
                            .sending_app = px_str_from_cstr(app),
                            .sending_facility = PX_LIT("HOSP"),
                            .type = px_str_from_cstr(type),
                            .trigger = px_str_from_cstr(trigger),
                            .control_id = PX_LIT("CTRL\x1b[31m"),
                            .state = LEDGER_MSG_RECEIVED};
    ledger_leg_rec g = {
        .message = LEDGER_OP_MESSAGE(0), .leg = LEDGER_LEG_LEGACY, .state = LEDGER_LEG_DELIVERED};
    ledger_sender_ack_rec a = {
        .message = LEDGER_OP_MESSAGE(0), .code = px_str_from_cstr(ack), .bytes = PX_LIT("MSH|ack")};
    ledger_divergence_rec d = {.message = LEDGER_OP_MESSAGE(0),
                               .kind = (ledger_divergence_kind)(div > 0 ? div - 1 : 0),
                               .detail = PX_LIT("{\"field\":\"OBX-5\",\"note\":\"caf\xc3\xa9\"}"),
                               .at_ms = at + 5};
    if (ledger_op_add_message(op, &m, NULL, NULL) != PX_OK ||
        ledger_op_add_leg(op, &g, NULL) != PX_OK ||
        (ack[0] != '\0' && ledger_op_add_sender_ack(op, &a, NULL) != PX_OK) ||
        (div > 0 && ledger_op_add_divergence(op, &d, NULL) != PX_OK)) {
        ledger_op_destroy(op);
        return -1;
    }
    ledger_submit(l, op);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_fixture PATH\n");
        return 2;
    }
    ledger_options opt;
    ledger_options_init(&opt);
    opt.path = argv[1];
    ledger_t *l = NULL;
    px_error err;
    if (ledger_open(&opt, &l, &err) != PX_OK) {
        fprintf(stderr, "make_fixture: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < 6 && rc == 0; i++)
        rc = add(l, "lab", "ORU", "R01", "LAB", DAY0 + i * 1000, i == 5 ? "AE" : "AA",
                 i < 2 ? 1 + LEDGER_DIV_OUTCOME_MISMATCH : 0);
    for (int i = 0; i < 4 && rc == 0; i++)
        rc = add(l, "adt", "ADT", "A01", "REG", DAY0 + 86400000 + i, "",
                 i == 0 ? 1 + LEDGER_DIV_CONVERSION_GAP : 0);
    ledger_flush(l);
    for (ledger_op_t *op = ledger_take_completed(l); op != NULL;) {
        ledger_op_t *next = ledger_op_next(op);
        if (ledger_op_result(op, &err) != PX_OK) {
            fprintf(stderr, "make_fixture: %s\n", err.msg);
            rc = 1;
        }
        ledger_op_destroy(op);
        op = next;
    }
    ledger_close(l);
    return rc == 0 ? 0 : 1;
}
