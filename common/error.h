/* Project-wide error codes and the error report every fallible function fills. */
#ifndef PX_COMMON_ERROR_H
#define PX_COMMON_ERROR_H

#include <stddef.h>

typedef enum px_err {
    PX_OK = 0,
    PX_ERR_NOMEM,
    PX_ERR_INVAL,
    PX_ERR_AGAIN, /* need more input; not a failure */
    PX_ERR_TOO_LARGE,
    PX_ERR_PARSE,
    PX_ERR_IO,
    PX_ERR_TLS,
    PX_ERR_HTTP,
    PX_ERR_DB,
    PX_ERR_TIMEOUT,
    PX_ERR_CLOSED,
} px_err;

/* A failure report: the code, a foreign detail code (errno, SQLite rc, CURLcode,
 * a uv error, a position) and a message that never holds PHI. */
typedef struct px_error {
    px_err code;
    int detail;
    char msg[256];
} px_error;

#if defined(__GNUC__)
#define PX_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define PX_PRINTF(fmt_index, first_arg)
#endif

/* Fills err (which may be NULL) with code and a formatted message and returns code, so
 * that a failure is one line: `return px_error_set(err, PX_ERR_PARSE, "MSH-9 empty");`. */
px_err px_error_set(px_error *err, px_err code, const char *fmt, ...) PX_PRINTF(3, 4);

/* As px_error_set, also recording a foreign detail code. */
px_err px_error_setd(px_error *err, px_err code, int detail, const char *fmt, ...) PX_PRINTF(4, 5);

/* Resets err (which may be NULL) to PX_OK with an empty message. */
void px_error_clear(px_error *err);

/* The stable name of a code ("PX_ERR_PARSE"); never NULL. */
const char *px_err_name(px_err code);

#endif
