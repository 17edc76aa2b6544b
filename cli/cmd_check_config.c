/* parallax check-config -c FILE: load and validate a configuration without serving. */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "routing/config.h"

static const char check_config_usage[] =
    "usage: parallax check-config -c FILE\n"
    "\n"
    "Loads FILE as parallax's configuration and validates all of it (types, ranges, names,\n"
    "references between sections, field paths, time zones) without opening any socket or\n"
    "ledger. A valid file gives one summary line on standard output:\n"
    "  FILE: ok: instance px-1, 2 feeds, 4 routes, 1 upstream, version 5f1c0e7a9b2d4c61\n"
    "An invalid one gives the first error on standard error, with the key path of the\n"
    "offending value and what was expected:\n"
    "  parallax check-config: FILE: feeds[0].routes[1].match.PID-3.x: bad path: ...\n"
    "\n"
    "  -c, --config FILE  the configuration file (JSON)\n"
    "  -h, --help         this text\n"
    "\n"
    "exit codes: 0 valid, 2 usage, 3 FILE unreadable, 4 invalid configuration,\n"
    "            5 out of memory\n";

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

int cmd_check_config(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(check_config_usage, stdout);
            return PX_EXIT_OK;
        }
        const char *value = NULL;
        if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "parallax check-config: %s needs a FILE\n", arg);
                fputs(check_config_usage, stderr);
                return PX_EXIT_USAGE;
            }
            value = argv[++i];
        } else if (strncmp(arg, "--config=", 9) == 0) {
            value = arg + 9;
        } else {
            fprintf(stderr, "parallax check-config: unexpected argument '%s'\n", arg);
            fputs(check_config_usage, stderr);
            return PX_EXIT_USAGE;
        }
        if (path != NULL) {
            fprintf(stderr, "parallax check-config: only one configuration file is checked\n");
            return PX_EXIT_USAGE;
        }
        if (value[0] == '\0') {
            fprintf(stderr, "parallax check-config: the FILE name is empty\n");
            return PX_EXIT_USAGE;
        }
        path = value;
    }
    if (path == NULL) {
        fprintf(stderr, "parallax check-config: missing -c FILE\n");
        fputs(check_config_usage, stderr);
        return PX_EXIT_USAGE;
    }

    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    px_err rc = route_config_load(path, &cfg, &err);
    switch (rc) {
    case PX_OK:
        break;
    case PX_ERR_IO:
        fprintf(stderr, "parallax check-config: %s: %s\n", path, err.msg);
        return PX_EXIT_INPUT;
    case PX_ERR_NOMEM:
        fprintf(stderr, "parallax check-config: %s: %s\n", path, err.msg);
        return PX_EXIT_RUNTIME;
    default:
        fprintf(stderr, "parallax check-config: %s: %s\n", path, err.msg);
        return PX_EXIT_CONFIG;
    }
    size_t feeds = 0, upstreams = 0;
    (void)route_config_feeds(cfg, &feeds);
    (void)route_config_upstreams(cfg, &upstreams);
    size_t routes = route_config_route_count(cfg);
    int n = printf("%s: ok: instance %s, %zu feed%s, %zu route%s, %zu upstream%s, version %s\n",
                   path, route_config_instance(cfg), feeds, plural(feeds), routes, plural(routes),
                   upstreams, plural(upstreams), route_config_version(cfg));
    route_config_destroy(cfg);
    if (n < 0 || fflush(stdout) != 0)
        return PX_EXIT_RUNTIME;
    return PX_EXIT_OK;
}
