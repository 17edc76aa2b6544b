/* parallax serve: the dual-write proxy on a libuv loop. */
#ifndef PX_PROXY_PROXY_H
#define PX_PROXY_PROXY_H

#include <uv.h>

#include "common/error.h"
#include "routing/config.h"

typedef struct proxy proxy_t;

/* Creates the proxy for a loaded configuration (takes a reference of cfg) and starts it on
 * loop: opens the ledger (recovering what a crash left in flight), connects the upstreams,
 * refills the retransmission window, starts the listeners and the admin server, and
 * installs SIGTERM/SIGINT (graceful stop) and SIGHUP (reload from config_path).
 * Returns PX_ERR_IO (a port cannot be bound), PX_ERR_DB / PX_ERR_INVAL (ledger), PX_ERR_NOMEM;
 * on failure everything started is stopped again and *out is NULL. */
px_err proxy_start(uv_loop_t *loop, route_config_t *cfg, const char *config_path, proxy_t **out,
                   px_error *err);

/* Begins a graceful stop: listeners close, no new frames are read, in-flight messages finish
 * within the drain bound, the ledger is flushed, every handle is closed. When all is done the
 * proxy frees itself and uv_run returns. Safe to call more than once. */
void proxy_stop(proxy_t *px);

/* The exit status the proxy wants once uv_run returned (0 after a clean stop). */
int proxy_exit_status(const proxy_t *px);

/* Runs parallax serve in the calling thread until stopped; returns the process exit code. */
int proxy_serve(const char *config_path);

#endif
