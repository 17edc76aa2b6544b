/* parallax send: send HL7 messages from files over MLLP and show the ACKs (proxy/send.h). */
#include "cli/commands.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/str.h"
#include "proxy/send.h"

static const char usage_text[] =
    "usage: parallax send [--host H] --port P [--timeout-ms T] [--batch-as-one] FILE|DIR...\n"
    "\n"
    "Sends every HL7 message in the FILEs over one MLLP connection, one at a time, waiting for\n"
    "each ACK, and prints one line per ACK:\n"
    "  SOURCE control_id=ID msa1=AA msa2=ID ack_control_id=ID [err_code=C] [err=\"TEXT\"]\n"
    "         result=accepted|negative|msa2-mismatch\n"
    "SOURCE is FILE#n, the n-th message of FILE. A DIR is walked recursively in sorted order.\n"
    "A file may hold several messages one after another. Segment separators (CR, LF or CRLF)\n"
    "are normalised to CR before sending, blank lines are dropped and the last segment is\n"
    "terminated. Batch files (FHS/BHS) are sent message by message.\n"
    "In enhanced mode a CA counts as accepted; application ACKs that arrive meanwhile are\n"
    "printed as 'app-ack' lines.\n"
    "\n"
    "  --host H          host name or address (default 127.0.0.1)\n"
    "  --port P          port\n"
    "  --timeout-ms T    how long to wait for the connection and for each ACK (default 10000)\n"
    "  --batch-as-one    send a batch file whole, as one message\n"
    "  -h, --help        this text\n"
    "\n"
    "exit codes: 0 every message got AA or CA echoing its MSH-10, 1 some ACK was AE, AR, CE,\n"
    "            CR, unreadable or did not echo MSH-10, 2 usage, 3 a FILE could not be read or\n"
    "            holds no message, 5 the connection failed, closed or timed out\n";

int cmd_send(int argc, char **argv)
{
    enum { OPT_HOST = 256, OPT_PORT, OPT_TIMEOUT, OPT_BATCH };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"batch-as-one", no_argument, NULL, OPT_BATCH},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    proxy_send_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.host = "127.0.0.1";
    opts.timeout_ms = 10000;
    opts.out = stdout;
    bool batch_as_one = false;
    uint64_t v;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_HOST:
            opts.host = optarg;
            break;
        case OPT_PORT:
            if (px_str_to_u64(px_str_from_cstr(optarg), 65535, &v) != PX_OK || v == 0) {
                fprintf(stderr, "parallax send: bad port '%s'\n", optarg);
                return PX_EXIT_USAGE;
            }
            opts.port = (unsigned)v;
            break;
        case OPT_TIMEOUT:
            if (px_str_to_u64(px_str_from_cstr(optarg), 86400000, &v) != PX_OK || v == 0) {
                fprintf(stderr, "parallax send: bad timeout '%s'\n", optarg);
                return PX_EXIT_USAGE;
            }
            opts.timeout_ms = (unsigned)v;
            break;
        case OPT_BATCH:
            batch_as_one = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return PX_EXIT_OK;
        default:
            fputs(usage_text, stderr);
            return PX_EXIT_USAGE;
        }
    }
    if (opts.port == 0 || optind >= argc) {
        fprintf(stderr, "parallax send: %s\n",
                opts.port == 0 ? "--port is required" : "no FILE or DIR given");
        fputs(usage_text, stderr);
        return PX_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);

    proxy_send_list_t *list = NULL;
    px_error err;
    int status = PX_EXIT_OK;
    if (proxy_send_list_create(&list, &err) != PX_OK) {
        fprintf(stderr, "parallax send: %s\n", err.msg);
        return PX_EXIT_RUNTIME;
    }
    for (int i = optind; i < argc; i++) {
        px_err rc = proxy_send_list_add_path(list, argv[i], batch_as_one, &err);
        if (rc != PX_OK) {
            fprintf(stderr, "parallax send: %s\n", err.msg);
            status = rc == PX_ERR_NOMEM ? PX_EXIT_RUNTIME : PX_EXIT_INPUT;
            goto out_destroy;
        }
    }
    proxy_send_result res;
    px_err rc = proxy_send_run(&opts, list, &res, &err);
    fprintf(stderr,
            "parallax send: %zu sent, %zu answered, %zu accepted, %zu negative, %zu msa2 "
            "mismatches, %zu unreadable ACKs\n",
            res.sent, res.answered, res.accepted, res.negative, res.mismatched, res.unreadable);
    if (rc != PX_OK) {
        fprintf(stderr, "parallax send: %s:%u: %s\n", opts.host, opts.port, err.msg);
        status = PX_EXIT_RUNTIME;
    } else if (!proxy_send_result_ok(&res)) {
        status = PX_EXIT_FAILURE;
    }
out_destroy:
    proxy_send_list_destroy(list);
    return status;
}
