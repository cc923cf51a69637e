/*
 * jce2c [--with-tars] [-I DIR]... -o OUTDIR FILE.jce...
 *
 * For each FILE writes OUTDIR/<Base>.h, <Base>_enums.h (constants and enums
 * alone), <Base>.c and <Base>.schema.json.
 * Nothing is written unless every file parsed and checked cleanly, and each
 * output goes through a temporary file and rename(), so an interrupted or
 * failing run never leaves a half-written or stale-but-new-looking file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jce2c.h"

static void usage(void) {
    fprintf(stderr,
            "usage: jce2c [--with-tars] [-I DIR]... -o OUTDIR FILE.jce...\n");
    exit(1);
}

static int write_atomic(const char *path, const buf_t *b) {
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        fprintf(stderr, "jce2c: cannot create %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    size_t n = b->len ? fwrite(b->p, 1, b->len, fp) : 0;
    int bad = n != b->len;
    bad |= fflush(fp) != 0;
    bad |= fclose(fp) != 0;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "jce2c: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

typedef struct output {
    char *path;
    buf_t text;
} output_t;

int main(int argc, char **argv) {
    const char *outdir = NULL;
    const char **inputs = xcalloc((size_t)argc, sizeof(char *));
    int n_inputs = 0;
    g_opts.inc_dirs = xcalloc((size_t)argc, sizeof(char *));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--with-tars") == 0)
            g_opts.with_tars = true;
        else if (strcmp(argv[i], "-I") == 0 && i + 1 < argc)
            g_opts.inc_dirs[g_opts.n_inc_dirs++] = argv[++i];
        else if (strncmp(argv[i], "-I", 2) == 0 && argv[i][2])
            g_opts.inc_dirs[g_opts.n_inc_dirs++] = argv[i] + 2;
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            outdir = argv[++i];
        else if (argv[i][0] == '-')
            usage();
        else
            inputs[n_inputs++] = argv[i];
    }
    if (!outdir || n_inputs == 0) usage();

    file_t **roots = xcalloc((size_t)n_inputs, sizeof(file_t *));
    bool bad = false;
    for (int i = 0; i < n_inputs; i++) {
        roots[i] = parse_file(inputs[i], (loc_t){NULL, 0, 0});
        bad |= roots[i] == NULL;
    }
    if (bad || diag_count() || sema_check() < 0) return 1;

    output_t *outs = xcalloc((size_t)n_inputs * 4, sizeof *outs);
    int n_outs = 0;
    for (int i = 0; i < n_inputs; i++) {
        file_t *f = roots[i];
        bool seen = false;
        for (int k = 0; k < i; k++) seen |= roots[k] == f;
        if (seen) continue;
        outs[n_outs].path = xasprintf("%s/%s.h", outdir, f->base);
        gen_header(f, &outs[n_outs++].text);
        outs[n_outs].path = xasprintf("%s/%s_enums.h", outdir, f->base);
        gen_enums_header(f, &outs[n_outs++].text);
        outs[n_outs].path = xasprintf("%s/%s.c", outdir, f->base);
        gen_source(f, &outs[n_outs++].text);
        outs[n_outs].path = xasprintf("%s/%s.schema.json", outdir, f->base);
        gen_schema(f, &outs[n_outs++].text);
    }
    for (int i = 0; i < n_outs; i++)
        if (write_atomic(outs[i].path, &outs[i].text) < 0) return 1;
    return 0;
}
