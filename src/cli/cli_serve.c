/* `herald serve`: starts what exists so far and says on which ports. */
#include <stdio.h>

#include "cli/cli.h"

int cli_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "herald serve: nothing to serve yet\n");
    return 1;
}
