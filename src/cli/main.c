/*
 * herald: one binary, subcommands (DESIGN.md §5).  This file only routes
 * argv to the command that owns it; each command lives in its own cli_*.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} cmds[] = {
    {"serve", cli_serve, "run herald (device port, push API, admin)"},
    {"config", cli_config, "check a config file, print an example or docs"},
    {"drain", cli_drain, "drain a running herald serve (--pid-file)"},
    {"token", cli_token, "mint a device token"},
    {"listen", cli_listen, "act as a device: print each push as a line"},
    {"app", cli_app, "create, list, rotate-key, set applications (--db)"},
    {"device", cli_device, "revoke a device's tokens (--db)"},
    {"push", cli_push, "send a push through the HTTP API"},
    {"trace", cli_trace, "show a message's path (accepted ... acked)"},
    {"bench", cli_bench, "load generator: herald, mosquitto or nchan"},
    {"version", cli_version, "print the version"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: herald COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
    fprintf(f, "\n`herald COMMAND --help` tells more.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
        return cli_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "herald: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
