/* The parallax commands: one thin file each. Each returns the process exit code. */
#ifndef PX_CLI_COMMANDS_H
#define PX_CLI_COMMANDS_H

/* Exit codes (documented in README.md). */
enum {
    PX_EXIT_OK = 0,
    PX_EXIT_FAILURE = 1, /* the command ran and found a problem (invalid message, NAK …) */
    PX_EXIT_USAGE = 2,   /* bad arguments */
    PX_EXIT_INPUT = 3,   /* an input file could not be read */
    PX_EXIT_CONFIG = 4,  /* the configuration is invalid */
    PX_EXIT_RUNTIME = 5, /* a runtime failure (socket, ledger, TLS) */
};

int cmd_hl7(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_mock_ehr(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_ledger(int argc, char **argv);

#endif
