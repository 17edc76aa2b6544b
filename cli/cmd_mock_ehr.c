/* parallax mock-ehr: a test EHR that answers MLLP messages with ACKs (proxy/mock_ehr.h). */
#include "cli/commands.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "common/error.h"
#include "common/str.h"
#include "proxy/mock_ehr.h"

static const char usage_text[] =
    "usage: parallax mock-ehr --port P [--host ADDR] [--nak-rate R] [--drop-ack-rate R]\n"
    "           [--delay-ms D] [--close-after N] [--enhanced] [--app-ack-delay-ms D]\n"
    "           [--bad-ack wrong-msa2|blank-msa2|garbage|no-msa] [--record FILE] [--seed N]\n"
    "\n"
    "A test EHR: accepts MLLP connections and answers every message with an ACK (MSH-3..6\n"
    "swapped, MSA-2 = the message's MSH-10). Answers on one connection leave in arrival order.\n"
    "\n"
    "  --port P              port to listen on; 0 picks a free one\n"
    "  --host ADDR           numeric address to listen on (default 127.0.0.1)\n"
    "  --nak-rate R          answer this fraction of messages AE (0 to 1)\n"
    "  --drop-ack-rate R     leave this fraction of messages unanswered (0 to 1)\n"
    "  --delay-ms D          send each answer D ms after its message arrived\n"
    "  --close-after N       after a connection's Nth message, read no more from it and close\n"
    "                        it once its answers are written\n"
    "  --enhanced            answer CA at once, then an application ACK (AA, or AE per\n"
    "                        --nak-rate) as a message of its own with its own control id\n"
    "  --app-ack-delay-ms D  delay of the application ACK after the commit ACK\n"
    "  --bad-ack KIND        spoil every ACK: wrong-msa2 (MSA-2 = WRONG-<MSH-10>), blank-msa2,\n"
    "                        garbage (a framed payload that is not HL7), no-msa (MSA removed)\n"
    "  --record FILE         append each received message, framed as MLLP, to FILE (written\n"
    "                        before its ACK is sent)\n"
    "  --seed N              seed of the random choices (default 1)\n"
    "  --max-bytes N         largest message accepted (default 16777216)\n"
    "  -h, --help            this text\n"
    "\n"
    "Prints 'listening ADDR:PORT' on stdout once ready, one JSON line per connection opened or\n"
    "closed on stderr, and on SIGINT or SIGTERM a summary line (received, acked, naked,\n"
    "dropped). Logs hold connection numbers and counts, never message content.\n"
    "\n"
    "exit codes: 0 stopped by a signal, 2 usage, 5 cannot listen or open the record file\n";

typedef struct mock_cli {
    proxy_mock_ehr_t *mock;
    uv_signal_t sigint, sigterm;
} mock_cli;

static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    return px_str_to_u64(px_str_from_cstr(s), max, out) == PX_OK;
}

static bool parse_rate(const char *s, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= 0.0 && v <= 1.0))
        return false;
    *out = v;
    return true;
}

static void on_signal(uv_signal_t *s, int signum)
{
    mock_cli *cli = s->data;
    (void)signum;
    if (cli->mock == NULL)
        return;
    proxy_mock_ehr_stats st;
    proxy_mock_ehr_get_stats(cli->mock, &st);
    fprintf(stderr,
            "{\"event\":\"summary\",\"received\":%llu,\"acked\":%llu,\"naked\":%llu,"
            "\"dropped\":%llu,\"connections\":%llu,\"unframeable\":%llu}\n",
            (unsigned long long)st.received, (unsigned long long)st.acked,
            (unsigned long long)st.naked, (unsigned long long)st.dropped,
            (unsigned long long)st.connections, (unsigned long long)st.unframeable);
    fflush(stderr);
    proxy_mock_ehr_close(cli->mock, NULL, NULL);
    cli->mock = NULL;
    uv_close((uv_handle_t *)&cli->sigint, NULL);
    uv_close((uv_handle_t *)&cli->sigterm, NULL);
}

int cmd_mock_ehr(int argc, char **argv)
{
    enum {
        OPT_PORT = 256,
        OPT_HOST,
        OPT_NAK,
        OPT_DROP,
        OPT_DELAY,
        OPT_CLOSE_AFTER,
        OPT_ENHANCED,
        OPT_APP_DELAY,
        OPT_BAD_ACK,
        OPT_RECORD,
        OPT_SEED,
        OPT_MAX_BYTES,
    };
    static const struct option longopts[] = {
        {"port", required_argument, NULL, OPT_PORT},
        {"host", required_argument, NULL, OPT_HOST},
        {"nak-rate", required_argument, NULL, OPT_NAK},
        {"drop-ack-rate", required_argument, NULL, OPT_DROP},
        {"delay-ms", required_argument, NULL, OPT_DELAY},
        {"close-after", required_argument, NULL, OPT_CLOSE_AFTER},
        {"enhanced", no_argument, NULL, OPT_ENHANCED},
        {"app-ack-delay-ms", required_argument, NULL, OPT_APP_DELAY},
        {"bad-ack", required_argument, NULL, OPT_BAD_ACK},
        {"record", required_argument, NULL, OPT_RECORD},
        {"seed", required_argument, NULL, OPT_SEED},
        {"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    proxy_mock_ehr_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.host = "127.0.0.1";
    opts.seed = 1;
    opts.log = stderr;
    bool have_port = false;
    uint64_t v;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        bool ok = true;
        switch (ch) {
        case OPT_PORT:
            ok = parse_uint(optarg, 65535, &v);
            opts.port = (unsigned)v;
            have_port = true;
            break;
        case OPT_HOST:
            opts.host = optarg;
            break;
        case OPT_NAK:
            ok = parse_rate(optarg, &opts.nak_rate);
            break;
        case OPT_DROP:
            ok = parse_rate(optarg, &opts.drop_ack_rate);
            break;
        case OPT_DELAY:
            ok = parse_uint(optarg, 3600000, &v);
            opts.delay_ms = (unsigned)v;
            break;
        case OPT_CLOSE_AFTER:
            ok = parse_uint(optarg, UINT32_MAX, &v);
            opts.close_after = (unsigned)v;
            break;
        case OPT_ENHANCED:
            opts.enhanced = true;
            break;
        case OPT_APP_DELAY:
            ok = parse_uint(optarg, 3600000, &v);
            opts.app_ack_delay_ms = (unsigned)v;
            break;
        case OPT_BAD_ACK:
            ok = proxy_mock_bad_ack_parse(optarg, &opts.bad_ack);
            break;
        case OPT_RECORD:
            opts.record_path = optarg;
            break;
        case OPT_SEED:
            ok = parse_uint(optarg, UINT64_MAX, &opts.seed);
            break;
        case OPT_MAX_BYTES:
            ok = parse_uint(optarg, 1u << 30, &v) && v > 0;
            opts.max_frame = (size_t)v;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return PX_EXIT_OK;
        default:
            fputs(usage_text, stderr);
            return PX_EXIT_USAGE;
        }
        if (!ok) {
            fprintf(stderr, "parallax mock-ehr: bad value '%s' for --%s\n", optarg,
                    longopts[ch - OPT_PORT].name);
            return PX_EXIT_USAGE;
        }
    }
    if (optind != argc || !have_port) {
        fprintf(stderr, "parallax mock-ehr: %s\n",
                have_port ? "unexpected argument" : "--port is required");
        fputs(usage_text, stderr);
        return PX_EXIT_USAGE;
    }
    /* A peer that closes while we write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "parallax mock-ehr: cannot create the event loop\n");
        return PX_EXIT_RUNTIME;
    }
    mock_cli cli;
    memset(&cli, 0, sizeof(cli));
    px_error err;
    if (proxy_mock_ehr_create(&loop, &opts, &cli.mock, &err) != PX_OK) {
        fprintf(stderr, "parallax mock-ehr: %s\n", err.msg);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return err.code == PX_ERR_INVAL ? PX_EXIT_USAGE : PX_EXIT_RUNTIME;
    }
    bool v6 = strchr(opts.host, ':') != NULL;
    printf("listening %s%s%s:%u\n", v6 ? "[" : "", opts.host, v6 ? "]" : "",
           proxy_mock_ehr_port(cli.mock));
    fflush(stdout);
    uv_signal_init(&loop, &cli.sigint);
    uv_signal_init(&loop, &cli.sigterm);
    cli.sigint.data = cli.sigterm.data = &cli;
    uv_signal_start(&cli.sigint, on_signal, SIGINT);
    uv_signal_start(&cli.sigterm, on_signal, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "parallax mock-ehr: handles left open at exit\n");
        return PX_EXIT_RUNTIME;
    }
    return PX_EXIT_OK;
}
