/* The ledger's disk fills up (RELIABILITY B11): no positive ACK once a write fails, the feed
 * runs ledger-first so nothing more is forwarded unledgered, and service resumes without a
 * restart when space returns. The ledger lives on a 2 MiB tmpfs mounted in a mount
 * namespace of the test process's own, so it disappears with the test even when an
 * assertion ends it early. */
#define _GNU_SOURCE /* unshare, CLONE_NEWNS */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "tcases.h"

/* Writes zeros to path until the file system is full. Returns the bytes written. */
static size_t fill_disk(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "cannot create %s: %s", path, strerror(errno));
    static char zeros[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = write(fd, zeros, sizeof(zeros));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    /* The last few bytes of a page may still fit; fill them one by one. */
    while (write(fd, zeros, 1) == 1)
        total++;
    ck_assert_int_eq(errno, ENOSPC);
    close(fd);
    return total;
}

static pxt_bytes send_one(pxt_client *c, const char *ctl)
{
    char msg[1024];
    size_t len = pxt_msg(msg, sizeof(msg), ctl, NULL, NULL);
    pxt_client_send(c, msg, len);
    return pxt_client_ack(c, 10000);
}

START_TEST(a_full_disk_gets_ar_207_runs_ledger_first_and_recovers_without_restart)
{
    ck_assert_msg(geteuid() == 0,
                  "this test mounts a 2 MiB tmpfs for the ledger and must run as root (CI "
                  "does): rerun the proxy suite as root");
    pxt_env e;
    pxt_env_init(&e);
    ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
    ck_assert_msg(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0,
                  "making / private in the test's mount namespace: %s", strerror(errno));
    char mnt[PXT_DIR + 16], filler[PXT_DIR + 32];
    snprintf(mnt, sizeof(mnt), "%s/tmpfs", e.dir);
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    ck_assert_int_eq(mkdir(mnt, 0700), 0);
    ck_assert_msg(mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0700") == 0,
                  "mount -t tmpfs -o size=2m tmpfs %s: %s", mnt, strerror(errno));
    snprintf(e.db_path, sizeof(e.db_path), "%s/db/ledger.db", mnt);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < 3; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "BEFORE%02d", i);
        pxt_bytes ack = send_one(&c, ctl);
        pxt_assert_ack(&ack, "AA", ctl);
        pxt_bytes_free(&ack);
    }
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 3, 5000), 3);

    size_t filled = fill_disk(filler);
    ck_assert_msg(filled > 0, "the tmpfs was already full before the filler");
    for (int i = 0; i < 4; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "FULL%02d", i);
        pxt_bytes ack = send_one(&c, ctl);
        pxt_assert_ack(&ack, "AR", ctl);
        pxt_assert_err_code(&ack, "207");
        ck_assert(pxt_ack_id_starts(&ack, "PX"));
        pxt_bytes_free(&ack);
    }
    /* Only the message that met the failure went out (its forward ran in parallel with the
     * write); the feed ran ledger-first after that. */
    size_t forwarded = pxt_record_wait(e.record_path, 5, 300);
    ck_assert_msg(forwarded <= 4,
                  "%zu messages reached the EHR while the ledger could not "
                  "store them (at most 1 may)",
                  forwarded - 3);

    ck_assert_int_eq(unlink(filler), 0);
    for (int i = 0; i < 3; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "AFTER%02d", i);
        pxt_bytes ack = send_one(&c, ctl);
        pxt_assert_ack(&ack, "AA", ctl);
        ck_assert(pxt_ack_id_starts(&ack, "MOCK"));
        pxt_bytes_free(&ack);
    }
    pxt_client_close(&c);
    ck_assert_uint_eq(pxt_record_wait(e.record_path, forwarded + 3, 5000), forwarded + 3);
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(*) FROM messages m JOIN legs l ON l.message = m.id"
                                  " WHERE m.control_id LIKE 'AFTER%' AND m.state = 'received'"
                                  " AND l.leg = 'legacy' AND l.state = 'delivered'",
                                  NULL, 3, 5000),
                     3);
    /* Every message refused while the disk was full is stored once space returns, as
     * rejected with its NAK (nothing is dropped silently): the records are retried. */
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(DISTINCT m.control_id) FROM messages m"
                                  " JOIN sender_acks a ON a.message = m.id"
                                  " WHERE m.control_id LIKE 'FULL%' AND m.state = 'rejected'",
                                  NULL, 4, 8000),
                     4);
    /* No message the sender was refused for is stored as accepted. */
    ck_assert_int_eq(pxt_sql_int(e.db_path,
                                 "SELECT count(*) FROM messages WHERE control_id LIKE 'FULL%'"
                                 " AND state = 'received'",
                                 NULL),
                     0);
    pxt_serve_stop(&e);
    ck_assert_str_eq(pxt_sql_integrity(e.db_path), "ok");
    ck_assert_msg(umount2(mnt, MNT_DETACH) == 0, "umount %s: %s", mnt, strerror(errno));
    pxt_env_finish(&e);
}
END_TEST

START_TEST(a_reader_holding_the_write_lock_delays_the_ack_until_the_commit)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_bytes ack = send_one(&c, "UNLOCKED1");
    pxt_assert_ack(&ack, "AA", "UNLOCKED1");
    pxt_bytes_free(&ack);

    /* Another connection holds the ledger's write lock (RELIABILITY B12): the forward goes
     * out in parallel, but the sender's AA must wait for the commit. */
    sqlite3 *lock = pxt_check_open(e.db_path);
    pxt_check_exec(lock, "BEGIN EXCLUSIVE");
    char msg[1024];
    size_t len = pxt_msg(msg, sizeof(msg), "LOCKED01", NULL, NULL);
    pxt_client_send(&c, msg, len);
    pxt_read r = pxt_client_read(&c, 1500, &ack);
    ck_assert_msg(r == PXT_READ_TIMEOUT, "answered while the ledger could not commit: %.*s",
                  (int)ack.len, ack.ptr);
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 2, 2000), 2);
    pxt_check_exec(lock, "ROLLBACK");
    pxt_check_close(lock);
    ack = pxt_client_ack(&c, 10000);
    pxt_assert_ack(&ack, "AA", "LOCKED01");
    pxt_bytes_free(&ack);
    pxt_client_close(&c);
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(*) FROM messages m JOIN legs l ON l.message = m.id"
                                  " WHERE m.control_id = 'LOCKED01' AND l.leg = 'legacy'"
                                  " AND l.state = 'delivered'",
                                  NULL, 1, 5000),
                     1);
    pxt_env_finish(&e);
}
END_TEST

TCase *proxy_tcase_ledger_failure(void)
{
    TCase *tc = tcase_create("ledger_failure");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_full_disk_gets_ar_207_runs_ledger_first_and_recovers_without_restart);
    tcase_add_test(tc, a_reader_holding_the_write_lock_delays_the_ack_until_the_commit);
    return tc;
}
