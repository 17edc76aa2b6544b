/* Helpers for the tools suite: an in-process mock EHR on its own loop thread, a blocking
 * MLLP test client, synthetic messages, temporary files and spawning the parallax binary. */
#ifndef PX_TESTS_TOOLS_HARNESS_H
#define PX_TESTS_TOOLS_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <uv.h>

#include "proxy/mock_ehr.h"

/* A mock EHR running on its own loop in a thread. */
typedef struct tools_mock {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    proxy_mock_ehr_t *mock;
    unsigned port;
    proxy_mock_ehr_stats stats; /* filled by tools_mock_stop */
    int loop_close_rc;          /* uv_loop_close's result, filled by tools_mock_stop */
} tools_mock;

/* Starts a mock with opts (host 127.0.0.1 and port 0 are forced). Fails the test on error. */
void tools_mock_start(tools_mock *t, const proxy_mock_ehr_opts *opts);

/* Stops it from the test thread, joins the thread and asserts uv_loop_close returned 0. */
void tools_mock_stop(tools_mock *t);

/* A blocking MLLP connection with a receive buffer. */
typedef struct tools_conn {
    int fd;
    char *buf;
    size_t len, cap;
} tools_conn;

/* Connects to 127.0.0.1:port; fails the test on error. */
void tools_conn_open(tools_conn *c, unsigned port);
void tools_conn_close(tools_conn *c);

/* Writes raw bytes / one message framed as MLLP. */
void tools_conn_write(tools_conn *c, const void *p, size_t len);
void tools_conn_send(tools_conn *c, const char *msg, size_t len);

/* Reads the next frame's content into a malloc'd NUL-terminated buffer (free it), or NULL
 * when nothing whole arrived within timeout_ms or the peer closed. */
char *tools_conn_recv(tools_conn *c, int timeout_ms, size_t *len);

/* True when the peer closes (EOF or reset) within timeout_ms with no further frame. */
bool tools_conn_wait_closed(tools_conn *c, int timeout_ms);

/* Writes a small synthetic ADT^A01 with MSH-10 = control_id into dst (segments end with
 * sep, "\r" normally) and returns its length. MSH-3..6 are SENDAPP, SENDFAC, RECVAPP,
 * RECVFAC; the patient name is ZZTESTNAME^ZZGIVEN. */
size_t tools_make_msg(char *dst, size_t cap, const char *control_id, const char *sep);

/* The value at (segment name, field, comp) in a message, copied into dst ("" if absent). */
const char *tools_field(const char *msg, size_t len, const char *seg, size_t field, size_t comp,
                        char *dst, size_t cap);

/* A fresh temporary directory (malloc'd path) and a path inside it (malloc'd). */
char *tools_tmpdir(void);
char *tools_path(const char *dir, const char *name);
void tools_write_file(const char *path, const void *p, size_t len);
char *tools_read_file(const char *path, size_t *len);
/* Removes dir and what is in it (one level). */
void tools_rmdir(const char *dir);

/* The parallax binary ($PX_PARALLAX). */
const char *tools_parallax(void);

/* Starts argv with stdout and stderr to files (either may be NULL for /dev/null); the child
 * dies with the test (PR_SET_PDEATHSIG). */
pid_t tools_spawn(char *const argv[], const char *out_path, const char *err_path);

/* Waits up to timeout_ms for pid; returns its exit status, or -1 after killing it on
 * timeout, or 128 + signal when it died from one. */
int tools_wait(pid_t pid, int timeout_ms);

/* Waits until the file at path contains needle (up to timeout_ms); returns its content
 * (malloc'd) or NULL. */
char *tools_wait_for_text(const char *path, const char *needle, int timeout_ms);

/* Milliseconds on a monotonic clock. */
double tools_now_ms(void);

#endif
