/* Subcommands of the herald binary; each returns the process exit code. */
#ifndef HERALD_CLI_H
#define HERALD_CLI_H

#define HERALD_VERSION "0.1.0"

int cli_serve(int argc, char **argv);
int cli_version(int argc, char **argv);

#endif
