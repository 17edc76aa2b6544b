/* parallax: the dual-write HL7 v2 proxy. This file only dispatches to the commands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "px_config.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"hl7", cmd_hl7, "inspect HL7 v2 messages (show, validate)"},
    {"check-config", cmd_check_config, "validate a configuration file"},
    {"serve", cmd_serve, "run the proxy (-c FILE)"},
    {"send", cmd_send, "send HL7 files over MLLP and show the ACKs"},
    {"mock-ehr", cmd_mock_ehr, "run a test EHR that answers MLLP messages"},
    {"bench", cmd_bench, "load an MLLP endpoint and report rate and latency"},
    {"ledger", cmd_ledger, "query the ledger (summary, divergences)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: parallax [--version] [--help] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'parallax COMMAND --help' describes a command.\n"
                 "exit codes: 0 ok, 1 problem found, 2 usage, 3 unreadable input,\n"
                 "            4 invalid configuration, 5 runtime failure\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return PX_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return PX_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("parallax %s\n", PX_VERSION);
        return PX_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "parallax: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return PX_EXIT_USAGE;
}
