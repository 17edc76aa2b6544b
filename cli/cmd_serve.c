/* parallax serve -c FILE: run the proxy. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "common/log.h"
#include "proxy/proxy.h"

static void serve_usage(FILE *out)
{
    fprintf(out, "usage: parallax serve -c FILE [--log-level debug|info|warn|error]\n\n"
                 "Runs the proxy: listens on every feed, forwards to the upstreams, records\n"
                 "everything in the ledger. SIGTERM/SIGINT stop gracefully (in-flight messages\n"
                 "finish within the drain bound); SIGHUP reloads the configuration.\n"
                 "Logs are JSON lines on stderr and never hold message content.\n"
                 "exit: 0 stopped cleanly, 2 usage, 4 invalid configuration, 5 runtime failure\n");
}

int cmd_serve(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            serve_usage(stdout);
            return PX_EXIT_OK;
        } else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
                   i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            px_log_level level;
            if (px_log_level_parse(argv[++i], &level) != 0) {
                fprintf(stderr,
                        "parallax serve: --log-level: expected debug, info, warn or error\n");
                return PX_EXIT_USAGE;
            }
            px_log_set_level(level);
        } else {
            fprintf(stderr, "parallax serve: unexpected argument '%s'\n", argv[i]);
            serve_usage(stderr);
            return PX_EXIT_USAGE;
        }
    }
    if (config == NULL) {
        fprintf(stderr, "parallax serve: -c FILE is required\n");
        serve_usage(stderr);
        return PX_EXIT_USAGE;
    }
    return proxy_serve(config);
}
