/* cli_embed.c - `ilora embed`: sentence vectors as one JSON array of arrays. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "embedder.h"

int cmd_embed(int argc, char **argv);

static const char help[] =
    "usage: ilora embed --embedder DIR TEXT...\n"
    "       ilora embed --embedder DIR --input FILE.jsonl\n\n"
    "Print the sentence embedding of each TEXT (or of the \"input\" field of each JSONL line)\n"
    "as one JSON array of arrays on stdout, one vector per line, floats as %.9g (exact\n"
    "float32). DIR is a sentence-transformers directory (modules.json: BERT, pooling,\n"
    "optional Normalize) or a T5 model directory (mean of the encoder states, normalised).\n"
    "Texts longer than the model's max_seq_length are truncated as sentence-transformers\n"
    "does.\n\n"
    "options:\n"
    "  --embedder DIR      the sentence embedder\n"
    "  --input FILE.jsonl  embed the \"input\" field of every line instead of TEXT arguments\n";

int cmd_embed(int argc, char **argv) {
    const char *embedder = NULL, *input = NULL;
    const cli_opt opts[] = {
        {"--embedder", OPT_STRING, &embedder, 0, 0},
        {"--input", OPT_STRING, &input, 0, 0},
    };
    cli_list pos = {0};
    bool want_help;
    cli_examples ex = {0};
    il_embedder *e = NULL;
    float *vecs = NULL;
    int rc = cli_parse(argc, argv, opts, 2, &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help, stdout); goto out; }
    if (!embedder) { rc = cli_fail(EXIT_USAGE, "embed needs --embedder DIR (see --help)"); goto out; }
    if (input && pos.n) { rc = cli_fail(EXIT_USAGE, "give either --input FILE or TEXT arguments, not both"); goto out; }
    if (!input && pos.n == 0) { rc = cli_fail(EXIT_USAGE, "embed needs at least one TEXT (or --input FILE)"); goto out; }
    if (input && cli_read_examples(input, false, &ex)) { rc = cli_fail_lib(); goto out; }
    const char *const *texts = input ? (const char *const *)ex.input : pos.items;
    const int n = input ? ex.n : pos.n;
    if (!(e = il_embedder_load(embedder))) { rc = cli_fail_lib(); goto out; }
    const int dim = il_embedder_dim(e);
    if (!(vecs = il_malloc((size_t)n * (size_t)dim * sizeof *vecs)) ||
        il_embedder_embed(e, n, texts, vecs)) {
        if (input) il_prefixerr("%s", input);
        rc = cli_fail_lib();
        goto out;
    }
    for (size_t k = 0; k < (size_t)n * (size_t)dim; k++) {
        if (!isfinite(vecs[k])) {
            rc = cli_fail(EXIT_RUNTIME, "%s: text %zu: the embedding is not finite", embedder,
                          k / (size_t)dim + 1);
            goto out;
        }
    }
    fputs("[\n", stdout);
    for (int i = 0; i < n; i++) {
        putchar('[');
        for (int j = 0; j < dim; j++) printf(j ? ",%.9g" : "%.9g", (double)vecs[(size_t)i * dim + j]);
        fputs(i + 1 < n ? "],\n" : "]\n", stdout);
    }
    fputs("]\n", stdout);
    if (fflush(stdout)) rc = cli_fail(EXIT_RUNTIME, "cannot write the output");
out:
    free(vecs);
    il_embedder_free(e);
    cli_examples_free(&ex);
    cli_list_free(&pos);
    return rc;
}
