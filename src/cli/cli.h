/* Subcommands of the herald binary; each returns the process exit code. */
#ifndef HERALD_CLI_H
#define HERALD_CLI_H

#define HERALD_VERSION "0.1.0"

int cli_serve(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_drain(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_token(int argc, char **argv);
int cli_listen(int argc, char **argv);
int cli_push(int argc, char **argv);
int cli_trace(int argc, char **argv);
int cli_app(int argc, char **argv);
int cli_device(int argc, char **argv);
/* The database path: flag, else $HERALD_DB, else "herald.db". */
const char *cli_db_path(const char *flag);
int cli_bench(int argc, char **argv);

/* Helpers shared by the commands (cli_token.c). */
#include <stddef.h>
/* Reads a secret file into out (NUL-terminated, trailing newlines cut);
 * its length or a negative errno (-EFBIG if it does not fit). */
int cli_read_secret_file(const char *path, char *out, size_t cap);
/* Strict decimal in [lo, hi]: 0, or -1. */
int cli_parse_long(const char *s, long lo, long hi, long *out);

#endif
