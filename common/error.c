#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>

static px_err error_vset(px_error *err, px_err code, int detail, const char *fmt, va_list ap)
    PX_PRINTF(4, 0);

static px_err error_vset(px_error *err, px_err code, int detail, const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->detail = detail;
    if (vsnprintf(err->msg, sizeof(err->msg), fmt, ap) < 0)
        err->msg[0] = '\0';
    return code;
}

px_err px_error_set(px_error *err, px_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, code, 0, fmt, ap);
    va_end(ap);
    return code;
}

px_err px_error_setd(px_error *err, px_err code, int detail, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, code, detail, fmt, ap);
    va_end(ap);
    return code;
}

void px_error_clear(px_error *err)
{
    if (err == NULL)
        return;
    err->code = PX_OK;
    err->detail = 0;
    err->msg[0] = '\0';
}

const char *px_err_name(px_err code)
{
    switch (code) {
    case PX_OK:
        return "PX_OK";
    case PX_ERR_NOMEM:
        return "PX_ERR_NOMEM";
    case PX_ERR_INVAL:
        return "PX_ERR_INVAL";
    case PX_ERR_AGAIN:
        return "PX_ERR_AGAIN";
    case PX_ERR_TOO_LARGE:
        return "PX_ERR_TOO_LARGE";
    case PX_ERR_PARSE:
        return "PX_ERR_PARSE";
    case PX_ERR_IO:
        return "PX_ERR_IO";
    case PX_ERR_TLS:
        return "PX_ERR_TLS";
    case PX_ERR_HTTP:
        return "PX_ERR_HTTP";
    case PX_ERR_DB:
        return "PX_ERR_DB";
    case PX_ERR_TIMEOUT:
        return "PX_ERR_TIMEOUT";
    case PX_ERR_CLOSED:
        return "PX_ERR_CLOSED";
    }
    return "PX_ERR_UNKNOWN";
}
