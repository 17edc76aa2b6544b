/* parallax bench: an MLLP load generator (proxy/bench.h). */
#include "cli/commands.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/str.h"
#include "proxy/bench.h"
#include "proxy/send.h"

static const char usage_text[] =
    "usage: parallax bench [--host H] --port P [--conns N] (--messages M | --duration S)\n"
    "           [--pipeline K] [--warmup S] [--acked-log FILE] [--timeout-ms T]\n"
    "           [--id-prefix STR] [--json] FILE|DIR...\n"
    "\n"
    "Loads an MLLP endpoint from one event loop: N connections each keep K messages in\n"
    "flight, cycling through the messages of the FILEs (read once; separators normalised to\n"
    "CR as in 'parallax send'). Each send carries a unique MSH-10, <prefix><conn>-<seq>; the\n"
    "rest of the message is sent byte for byte. Every ACK's MSA-2 must equal the MSH-10 it\n"
    "answers; latency is timed from send to ACK.\n"
    "\n"
    "  --host H          host name or address (default 127.0.0.1)\n"
    "  --port P          port\n"
    "  --conns N         connections (default 1)\n"
    "  --pipeline K      messages in flight per connection (default 1)\n"
    "  --messages M      send M messages in all, then wait for their ACKs\n"
    "  --duration S      send for S seconds after the warm-up, then wait for the ACKs\n"
    "  --warmup S        leave the first S seconds out of the rate and the latencies\n"
    "  --acked-log FILE  append each control id that got AA or CA, one per line. A line is\n"
    "                    written only after its ACK arrived; lines are buffered and written\n"
    "                    at least every 10 ms and at exit, so after a crash of the bench the\n"
    "                    file may miss the last ACKs but never names an unacknowledged one\n"
    "  --timeout-ms T    an ACK (or connection) later than this fails the connection and\n"
    "                    counts its messages in flight as errors (default 10000)\n"
    "  --id-prefix STR   control id prefix (default 'B' and 5 characters that change per run)\n"
    "  --json            print the summary as one JSON line\n"
    "  -h, --help        this text\n"
    "\n"
    "SIGINT or SIGTERM stops sending; the summary is printed once the ACKs in flight arrived.\n"
    "\n"
    "exit codes: 0 no errors, 1 errors (MSA-2 mismatch, unreadable or missing ACK) or a\n"
    "            connection failed, 2 usage, 3 a FILE could not be read or has no MSH-10,\n"
    "            5 the acked log could not be written\n";

static bool parse_seconds(const char *s, unsigned *ms)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= 0.0 && v <= 86400.0 * 7))
        return false;
    *ms = (unsigned)(v * 1000.0 + 0.5);
    return true;
}

int cmd_bench(int argc, char **argv)
{
    enum {
        OPT_HOST = 256,
        OPT_PORT,
        OPT_CONNS,
        OPT_MESSAGES,
        OPT_DURATION,
        OPT_PIPELINE,
        OPT_ACKED_LOG,
        OPT_WARMUP,
        OPT_TIMEOUT,
        OPT_PREFIX,
        OPT_JSON,
    };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"conns", required_argument, NULL, OPT_CONNS},
        {"messages", required_argument, NULL, OPT_MESSAGES},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"pipeline", required_argument, NULL, OPT_PIPELINE},
        {"acked-log", required_argument, NULL, OPT_ACKED_LOG},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"id-prefix", required_argument, NULL, OPT_PREFIX},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    proxy_bench_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.host = "127.0.0.1";
    opts.conns = 1;
    opts.pipeline = 1;
    opts.handle_signals = true;
    bool json = false, have_duration = false;
    uint64_t v;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        bool ok = true;
        switch (ch) {
        case OPT_HOST:
            opts.host = optarg;
            break;
        case OPT_PORT:
            ok = px_str_to_u64(px_str_from_cstr(optarg), 65535, &v) == PX_OK && v > 0;
            opts.port = (unsigned)v;
            break;
        case OPT_CONNS:
            ok = px_str_to_u64(px_str_from_cstr(optarg), 100000, &v) == PX_OK && v > 0;
            opts.conns = (unsigned)v;
            break;
        case OPT_PIPELINE:
            ok = px_str_to_u64(px_str_from_cstr(optarg), 100000, &v) == PX_OK && v > 0;
            opts.pipeline = (unsigned)v;
            break;
        case OPT_MESSAGES:
            ok = px_str_to_u64(px_str_from_cstr(optarg), UINT64_MAX, &opts.messages) == PX_OK &&
                 opts.messages > 0;
            break;
        case OPT_DURATION:
            ok = parse_seconds(optarg, &opts.duration_ms) && opts.duration_ms > 0;
            have_duration = true;
            break;
        case OPT_WARMUP:
            ok = parse_seconds(optarg, &opts.warmup_ms);
            break;
        case OPT_TIMEOUT:
            ok = px_str_to_u64(px_str_from_cstr(optarg), 86400000, &v) == PX_OK && v > 0;
            opts.timeout_ms = (unsigned)v;
            break;
        case OPT_ACKED_LOG:
            opts.acked_log = optarg;
            break;
        case OPT_PREFIX:
            ok = strlen(optarg) > 0 && strlen(optarg) <= 16;
            opts.id_prefix = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return PX_EXIT_OK;
        default:
            fputs(usage_text, stderr);
            return PX_EXIT_USAGE;
        }
        if (!ok) {
            fprintf(stderr, "parallax bench: bad value '%s' for --%s\n", optarg,
                    longopts[ch - OPT_HOST].name);
            return PX_EXIT_USAGE;
        }
    }
    const char *problem = NULL;
    if (opts.port == 0)
        problem = "--port is required";
    else if ((opts.messages > 0) == have_duration)
        problem = "give exactly one of --messages and --duration";
    else if (optind >= argc)
        problem = "no FILE given";
    if (problem != NULL) {
        fprintf(stderr, "parallax bench: %s\n", problem);
        fputs(usage_text, stderr);
        return PX_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);

    proxy_send_list_t *input = NULL;
    px_error err;
    int status = PX_EXIT_OK;
    if (proxy_send_list_create(&input, &err) != PX_OK) {
        fprintf(stderr, "parallax bench: %s\n", err.msg);
        return PX_EXIT_RUNTIME;
    }
    for (int i = optind; i < argc; i++) {
        if (proxy_send_list_add_path(input, argv[i], false, &err) != PX_OK) {
            fprintf(stderr, "parallax bench: %s\n", err.msg);
            status = err.code == PX_ERR_NOMEM ? PX_EXIT_RUNTIME : PX_EXIT_INPUT;
            goto out_destroy;
        }
    }
    proxy_bench_result *res = malloc(sizeof(*res));
    if (res == NULL) {
        fprintf(stderr, "parallax bench: out of memory\n");
        status = PX_EXIT_RUNTIME;
        goto out_destroy;
    }
    px_err rc = proxy_bench_run(&opts, input, res, &err);
    if (rc == PX_ERR_INVAL || rc == PX_ERR_PARSE) {
        fprintf(stderr, "parallax bench: %s\n", err.msg);
        status = rc == PX_ERR_PARSE ? PX_EXIT_INPUT : PX_EXIT_USAGE;
    } else {
        proxy_bench_report(res, stdout, json);
        fflush(stdout);
        if (rc != PX_OK) {
            fprintf(stderr, "parallax bench: %s\n", err.msg);
            status = PX_EXIT_RUNTIME;
        } else if (!proxy_bench_result_ok(res)) {
            status = PX_EXIT_FAILURE;
        }
    }
    free(res);
out_destroy:
    proxy_send_list_destroy(input);
    return status;
}
