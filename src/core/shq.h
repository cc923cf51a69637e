/*
 * shq: quoting for the POSIX shell, for the commands herald prints for an
 * operator to copy (`herald app create` prints a `herald token ...` line).
 * A word of safe characters stays as it is; anything else goes in single
 * quotes, each ' written as '\''.  No secret is ever logged through this:
 * it only shapes what a command prints on its own stdout.
 */
#ifndef HERALD_CORE_SHQ_H
#define HERALD_CORE_SHQ_H

#include <stddef.h>

/* Writes s, quoted if it needs it, and a NUL into out.  Returns the
 * length, or -1 if cap is too small (out is then ""). */
int shq_quote(char *out, size_t cap, const char *s);

#endif
