/* The harness of the proxy suite: real processes (`parallax serve`, `parallax mock-ehr`,
 * `parallax bench`, a scripted fake EHR), real sockets on 127.0.0.1 and the real ledger
 * file, read back through the SQLite C API.
 *
 * Every helper that can fail fails the running test (ck_assert) with a message naming what
 * was expected, so tests read as straight lines. Child processes die with the test process
 * (PR_SET_PDEATHSIG) even when an assertion ends it early; a test that passes stops what it
 * started by PID and removes its directory. */
#ifndef PX_TESTS_PROXY_HARNESS_H
#define PX_TESTS_PROXY_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PXT_PATH 512
#define PXT_DIR  256

/* Bytes owned by whoever holds the struct (free with pxt_bytes_free). */
typedef struct pxt_bytes {
    char *ptr;
    size_t len;
} pxt_bytes;

void pxt_bytes_free(pxt_bytes *b);

/* ---- time ---- */

uint64_t pxt_now_ms(void);
void pxt_sleep_ms(unsigned ms);

/* ---- files ---- */

/* Reads a whole file (NUL-terminated, not counted). Returns false when it cannot be read. */
bool pxt_file_read(const char *path, pxt_bytes *out);
/* Writes len bytes to path (0600, truncating). Fails the test on error. */
void pxt_file_write(const char *path, const void *bytes, size_t len);
/* Occurrences of needle in the file (0 when it cannot be read). */
size_t pxt_file_count(const char *path, const char *needle);

/* ---- processes ---- */

typedef struct pxt_proc {
    pid_t pid; /* 0 when not running */
    char name[48];
    char out_path[PXT_PATH]; /* its stdout */
    char err_path[PXT_PATH]; /* its stderr */
    int status;              /* the wait status once reaped */
} pxt_proc;

/* Starts argv[0] with argv, stdout and stderr to dir/name.out and dir/name.err, no other
 * descriptors inherited, killed with the test process. Fails the test when fork fails. */
void pxt_proc_spawn(pxt_proc *p, const char *dir, const char *name, char *const argv[]);

/* Waits until needle has appeared count times in the process's stdout (err false) or
 * stderr (err true). Returns false on timeout or when the process exited first. */
bool pxt_proc_wait_output(pxt_proc *p, bool err, const char *needle, size_t count,
                          unsigned timeout_ms);

/* True while the process runs (reaps it when it has exited). */
bool pxt_proc_running(pxt_proc *p);

/* Sends sig (0: none) and waits up to timeout_ms for the exit. Returns true with the wait
 * status in p->status; false after a timeout, the process then killed with SIGKILL. */
bool pxt_proc_stop(pxt_proc *p, int sig, unsigned timeout_ms);

/* Fails the test when the file holds a sanitizer report (ASan, LSan, UBSan). */
void pxt_assert_no_sanitizer_report(const char *path);

/* A port that was free a moment ago on 127.0.0.1. */
unsigned pxt_free_port(void);

/* ---- the test environment ---- */

typedef struct pxt_env {
    char dir[PXT_DIR]; /* private temporary directory */
    char cfg_path[PXT_PATH];
    char db_path[PXT_PATH]; /* the ledger (dir/db/ledger.db unless a test changes it) */
    char record_path[PXT_PATH];
    const char *parallax;     /* the binary under test ($PX_PARALLAX) */
    const char *ledger_extra; /* JSON members added to "ledger" by pxt_env_config, or NULL */
    unsigned feed_port;
    unsigned ehr_port;
    pxt_proc serve;
    pxt_proc mock;
    unsigned serve_runs, mock_runs;
} pxt_env;

/* A fresh directory, two free ports, the paths. */
void pxt_env_init(pxt_env *e);

/* Writes the configuration: one upstream "ehr" at ehr_port and one feed "lab" at feed_port.
 * The extras are JSON members (without braces) appended to the upstream object, the feed
 * object and the top-level object; NULL for none. Keeps tests fast with short reconnect
 * delays unless upstream_extra sets them. */
void pxt_env_config(pxt_env *e, const char *upstream_extra, const char *feed_extra,
                    const char *top_extra);

/* Starts `parallax mock-ehr --port ehr_port --record record_path` plus the extra arguments
 * (a NULL-terminated list) and waits for its "listening" line. */
void pxt_mock_start(pxt_env *e, const char *const extra[]);
/* SIGTERM; asserts a clean exit and no sanitizer report. */
void pxt_mock_stop(pxt_env *e);

/* Starts `parallax serve -c cfg_path` and waits for its "started" log line. */
void pxt_serve_start(pxt_env *e);
/* SIGTERM; asserts exit status 0 within the drain bound and no sanitizer report. */
void pxt_serve_stop(pxt_env *e);
/* SIGKILL and reap. */
void pxt_serve_kill(pxt_env *e);
/* Waits until the serve log holds needle count times (fails the test on timeout). */
void pxt_serve_wait_log(pxt_env *e, const char *needle, size_t count, unsigned timeout_ms);

/* Stops whatever still runs (serve and mock with the checks above) and removes the
 * directory. */
void pxt_env_finish(pxt_env *e);

/* ---- an MLLP client with timeouts ---- */

typedef struct pxt_client {
    int fd;
    pxt_bytes in; /* bytes received and not yet returned as frames */
    size_t in_cap;
} pxt_client;

typedef enum pxt_read {
    PXT_READ_FRAME,
    PXT_READ_TIMEOUT,
    PXT_READ_CLOSED, /* the peer closed or reset the connection */
} pxt_read;

/* Connects to 127.0.0.1:port (fails the test when it cannot within 5 s). */
void pxt_client_open(pxt_client *c, unsigned port);
void pxt_client_close(pxt_client *c);
/* Writes raw bytes (all of them; fails the test on error). */
void pxt_client_write(pxt_client *c, const void *bytes, size_t len);
/* Writes one message framed as MLLP. */
void pxt_client_send(pxt_client *c, const char *msg, size_t len);
/* Half-closes the connection (no more writes). */
void pxt_client_shutdown(pxt_client *c);
/* The next frame's payload (owned by the caller) within timeout_ms. */
pxt_read pxt_client_read(pxt_client *c, unsigned timeout_ms, pxt_bytes *frame);
/* The next frame; fails the test when none comes within timeout_ms. */
pxt_bytes pxt_client_ack(pxt_client *c, unsigned timeout_ms);

/* ---- HL7 text ---- */

/* Builds an ORU^R01 v2.5.1 into buf with MSH-10 = ctl, MSH-7 = ts (NULL: a fixed time) and
 * OBX-5 = value (NULL: "7.5"). Returns its length (segments end with CR). */
size_t pxt_msg(char *buf, size_t size, const char *ctl, const char *ts, const char *value);

/* Field n of the first segment called seg, into out (a C string). MSH-1 is the field
 * separator, so MSH-10 is pxt_field(…, "MSH", 10, …). Segments end at CR or LF; fields are
 * split at '|'. Returns false when the segment or field is absent. */
bool pxt_field(const char *msg, size_t len, const char *seg, unsigned n, char *out, size_t size);

/* Asserts that ack is a well-formed ACK with MSA-1 = code and MSA-2 = ctl. */
void pxt_assert_ack(const pxt_bytes *ack, const char *code, const char *ctl);
/* Asserts that ack holds an ERR segment carrying the HL7 error code (e.g. "207"). */
void pxt_assert_err_code(const pxt_bytes *ack, const char *code);
/* True when MSH-10 of ack starts with prefix ("MOCK": built by the mock EHR; "PX": by
 * parallax itself). */
bool pxt_ack_id_starts(const pxt_bytes *ack, const char *prefix);

/* ---- the EHR's record file (the messages it received, framed) ---- */

/* Splits an MLLP stream into frame payloads. Returns the count; *frames is owned by the
 * caller (pxt_frames_free). A missing file gives 0. */
size_t pxt_record_read(const char *path, pxt_bytes **frames);
void pxt_frames_free(pxt_bytes *frames, size_t n);
/* Waits until the record holds at least n frames; returns the count seen last. */
size_t pxt_record_wait(const char *path, size_t n, unsigned timeout_ms);

/* Asserts that the record holds, for every sender c < nconns, the control ids
 * "<prefix><c>-<seq>" for seq 0 … nmsgs-1 exactly once each, in order. */
void pxt_assert_sender_order(const char *record_path, const char *prefix, unsigned nconns,
                             unsigned nmsgs);

/* ---- many senders at once ---- */

/* Runs nconns connections to port at once, each sending nmsgs messages ("<prefix><c>-<seq>")
 * one after the other, each after the previous one's ACK; fails the test unless every ACK
 * is AA with MSA-2 = its control id within timeout_ms overall. */
void pxt_run_senders(unsigned port, unsigned nconns, unsigned nmsgs, const char *prefix,
                     unsigned timeout_ms);

/* ---- the ledger ---- */

/* The first column of the first row of sql (an integer; 0 when no row). param, when not
 * NULL, is bound as text to ?1. Fails the test on an SQLite error. */
int64_t pxt_sql_int(const char *db_path, const char *sql, const char *param);
/* Polls pxt_sql_int until it returns want or timeout_ms passed; returns the last value. */
int64_t pxt_sql_wait(const char *db_path, const char *sql, const char *param, int64_t want,
                     unsigned timeout_ms);
/* The first column of the first row as bytes (owned). False when there is no row. */
bool pxt_sql_blob(const char *db_path, const char *sql, const char *param, pxt_bytes *out);
/* The result of PRAGMA integrity_check (a static buffer). */
const char *pxt_sql_integrity(const char *db_path);

/* ---- checks over many control ids at once ---- */

typedef struct sqlite3 sqlite3;

/* A connection to the ledger for checks; temporary tables loaded below live in it. */
sqlite3 *pxt_check_open(const char *db_path);
/* CREATE TEMP TABLE <table>(id TEXT) and one row per line of path (a missing file: none).
 * Returns the rows loaded. */
size_t pxt_check_load_lines(sqlite3 *db, const char *table, const char *path);
/* The same with one row per frame of an MLLP record file: its MSH-10. */
size_t pxt_check_load_record(sqlite3 *db, const char *table, const char *record_path);
/* The first column of the first row of sql as an integer (0: no row), or as text into out
 * (may be NULL). Fails the test on an SQLite error. */
int64_t pxt_check_int(sqlite3 *db, const char *sql);
void pxt_check_text(sqlite3 *db, const char *sql, char *out, size_t size);
/* Runs statements (e.g. "BEGIN EXCLUSIVE"); fails the test on an error. */
void pxt_check_exec(sqlite3 *db, const char *sql);
void pxt_check_close(sqlite3 *db);

/* ---- a scripted fake EHR (a forked child process) ---- */

typedef struct pxt_fake_opts {
    unsigned slow_ms;    /* control ids starting "SLOW" are answered after this many ms */
    const char *raw_ack; /* control ids starting "RAW" are answered with exactly these bytes */
    size_t raw_ack_len;
} pxt_fake_opts;

/* Listens on 127.0.0.1:port and answers each message by its control id: "SLOW…" late,
 * "RAW…" with raw_ack, "HANG…" never, "HALF…" with half an ACK and then a close, anything
 * else at once with AA (MSH-10 "FAKE<n>"). Logs "conn=<n> ctl=<id>" per message and
 * "late conn=<n> ctl=<id> written=<0|1>" per late answer to dir/name.out. */
void pxt_fake_start(pxt_proc *p, const char *dir, const char *name, unsigned port,
                    const pxt_fake_opts *opts);

/* ---- operations: reloads and the admin endpoint ---- */

/* Rewrites cfg_path as pxt_env_config does with these extras, then sends SIGHUP to the
 * running serve (which reloads off its loop: wait for its log line). */
void pxt_serve_reload(pxt_env *e, const char *upstream_extra, const char *feed_extra,
                      const char *top_extra);
/* Sends SIGHUP to the running serve (after the test wrote cfg_path itself). */
void pxt_serve_hup(pxt_env *e);

/* True when a connection to 127.0.0.1:port is refused (nothing listens there). */
bool pxt_port_refuses(unsigned port);

/* One HTTP/1.1 request without a body (method "GET", "POST", ...; path "/metrics") to
 * 127.0.0.1:port, read until the server closes. Returns the status code; the body goes to
 * *body (owned by the caller, NUL-terminated; NULL: discarded). Fails the test when there is
 * no complete response within 5 s or its Content-Length disagrees with the body. */
int pxt_http(unsigned port, const char *method, const char *path, pxt_bytes *body);

#endif
