/* cli_index.c - `ilora index`: build or refresh a LoRA library's centroid index. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "library.h"

int cmd_index(int argc, char **argv);

static const char help[] =
    "usage: ilora index --library DIR|library.json --embedder DIR [--max-examples N]\n"
    "                   [--index FILE] [--rebuild]\n"
    "       ilora index --library DIR|library.json --embedder DIR --centroids FILE\n\n"
    "Compute each adapter's centroid - the mean of the embedder's vectors of\n"
    "input + \" \" + output over its first N training examples - and cache them in an index\n"
    "file. A cached centroid is reused when the embedder's files, N and the adapter's files\n"
    "(adapter_config.json, weights, training data) are unchanged; the others are\n"
    "recomputed. Prints a summary (adapters, reused, recomputed, dim, index path).\n\n"
    "A library is a directory with one subdirectory per adapter (adapter_config.json,\n"
    "adapter_model.safetensors or .bin, and train.jsonl with {\"input\",\"output\"} lines),\n"
    "or a manifest {\"adapters\": [{\"name\", \"adapter\", \"data\"}, ...]} with paths\n"
    "relative to it. The embedder is a sentence-transformers directory or a T5 model.\n\n"
    "options:\n"
    "  --library PATH      the library directory or manifest file\n"
    "  --embedder DIR      the sentence embedder\n"
    "  --max-examples N    examples per adapter (default 100; 0 = all)\n"
    "  --index FILE        the index file (default: DIR/.ilora-index.json, or\n"
    "                      .<manifest name>.ilora-index.json next to a manifest)\n"
    "  --rebuild           ignore the cached index and recompute every centroid\n"
    "  --centroids FILE    check precomputed centroids (an index file from elsewhere)\n"
    "                      against the library: names and dimension only, fingerprints\n"
    "                      are not checked; nothing is computed or written\n";

typedef struct {
    bool tty;
    bool progress_shown;
} index_ui;

static void on_log(void *user, bool warning, const char *msg) {
    index_ui *ui = user;
    if (ui->progress_shown) { fputc('\n', stderr); ui->progress_shown = false; }
    fprintf(stderr, "ilora: %s%s\n", warning ? "warning: " : "", msg);
}

static void on_progress(void *user, int done, int total, const char *name, bool recomputed) {
    index_ui *ui = user;
    if (!ui->tty) return;
    fprintf(stderr, "\rindex: %d/%d %s (%s)\033[K", done, total, name,
            recomputed ? "embedded" : "cached");
    ui->progress_shown = true;
    if (done == total) { fputc('\n', stderr); ui->progress_shown = false; }
}

int cmd_index(int argc, char **argv) {
    const char *library = NULL, *embedder = NULL, *index = NULL, *centroids = NULL;
    int max_examples = IL_LIBRARY_DEFAULT_MAX_EXAMPLES;
    bool rebuild = false;
    const cli_opt opts[] = {
        {"--library", OPT_STRING, &library, 0, 0},
        {"--embedder", OPT_STRING, &embedder, 0, 0},
        {"--max-examples", OPT_INT, &max_examples, 0, 1000000000},
        {"--index", OPT_STRING, &index, 0, 0},
        {"--rebuild", OPT_FLAG, &rebuild, 0, 0},
        {"--centroids", OPT_STRING, &centroids, 0, 0},
    };
    cli_list pos = {0};
    bool want_help;
    il_library *lib = NULL;
    il_embedder *emb = NULL;
    il_library_index x = {0};
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help, stdout); goto out; }
    if (!library || !embedder) {
        rc = cli_fail(EXIT_USAGE, "index needs --library PATH and --embedder DIR (see --help)");
        goto out;
    }
    if (pos.n) { rc = cli_fail(EXIT_USAGE, "index takes no positional arguments ('%s')", pos.items[0]); goto out; }
    if (centroids && (index || rebuild)) {
        rc = cli_fail(EXIT_USAGE, "--centroids cannot be combined with --index or --rebuild");
        goto out;
    }
    uint64_t efp;
    if (!(lib = il_library_open(library, max_examples)) || !(emb = il_embedder_load(embedder)) ||
        il_library_embedder_fingerprint(embedder, &efp)) {
        rc = cli_fail_lib();
        goto out;
    }
    index_ui ui = {.tty = isatty(2) != 0};
    if (centroids) {
        if (il_library_index_load(lib, centroids, il_embedder_dim(emb), efp, &x)) {
            rc = cli_fail_lib();
            goto out;
        }
        fprintf(stderr, "ilora: %s: centroids used as given (names and dimension checked, "
                "fingerprints not checked%s)\n", centroids,
                x.fingerprint_matches ? "; the embedder fingerprint matches"
                                      : "; the embedder fingerprint differs or is absent");
    } else {
        const il_index_opts io = {.index_path = index, .rebuild = rebuild, .log = on_log,
                                  .progress = on_progress, .user = &ui};
        if (il_library_index_build(lib, emb, efp, &io, &x)) {
            rc = cli_fail_lib();
            goto out;
        }
    }
    printf("library\t%s\n", il_library_path(lib));
    printf("adapters\t%d\n", x.m);
    printf("reused\t%d\n", x.n_reused);
    printf("recomputed\t%d\n", x.n_recomputed);
    if (x.supplied) printf("supplied\t%d\n", x.m);
    printf("dim\t%d\n", x.dim);
    if (x.max_examples >= 0) printf("max_examples\t%d\n", x.max_examples);
    printf("index\t%s\n", x.path);
    if (!x.supplied) printf("written\t%s\n", x.written ? "yes" : "no (unchanged)");
out:
    il_library_index_free(&x);
    il_embedder_free(emb);
    il_library_free(lib);
    cli_list_free(&pos);
    return rc;
}
