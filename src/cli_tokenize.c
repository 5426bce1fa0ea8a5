/* cli_tokenize.c - `ilora tokenize --model DIR | --embedder DIR TEXT...`: token ids, one
 * line per TEXT. */
#include <stdio.h>
#include <stdlib.h>

#include "cli_t5.h"
#include "embedder.h"

static const char help[] =
    "usage: ilora tokenize --model DIR TEXT...\n"
    "       ilora tokenize --embedder DIR TEXT...\n\n"
    "Print the token ids of each TEXT on its own line, space-separated.\n"
    "--model DIR: exactly as Hugging Face's T5 tokenizer gives them (including the trailing\n"
    "  </s>, id 1); DIR holds spiece.model (or tokenizer.json) and optionally\n"
    "  tokenizer_config.json.\n"
    "--embedder DIR: the ids the sentence embedder sees - for a sentence-transformers\n"
    "  directory the BERT WordPiece ids with [CLS] and [SEP], truncated to max_seq_length\n"
    "  as sentence-transformers does; for a T5 model directory the T5 ids with </s>.\n"
    "Give exactly one of --model and --embedder.\n";

static int tokenize_embedder(const char *dir, const cli_list *pos) {
    il_embedder *e = il_embedder_load(dir);
    if (!e) return cli_fail_lib();
    int rc = EXIT_OK;
    for (int i = 0; i < pos->n && rc == EXIT_OK; i++) {
        int32_t *ids;
        int n;
        if (il_embedder_tokenize(e, pos->items[i], &ids, &n)) {
            il_prefixerr("text %d", i + 1);
            rc = cli_fail_lib();
            break;
        }
        for (int j = 0; j < n; j++) printf(j ? " %d" : "%d", (int)ids[j]);
        putchar('\n');
        free(ids);
    }
    il_embedder_free(e);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *embedder = NULL;
    const cli_opt opts[] = {{"--model", OPT_STRING, &model, 0, 0},
                            {"--embedder", OPT_STRING, &embedder, 0, 0}};
    cli_list pos = {0};
    bool want_help;
    cli_t5 m = {0};
    cli_ids ids = {0};
    int rc = cli_parse(argc, argv, opts, 2, &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help, stdout); goto out; }
    if (!model == !embedder) {
        rc = cli_fail(EXIT_USAGE, "tokenize needs exactly one of --model DIR and --embedder DIR "
                      "(see --help)");
        goto out;
    }
    if (pos.n == 0) { rc = cli_fail(EXIT_USAGE, "tokenize needs at least one TEXT"); goto out; }
    if (embedder) {
        rc = tokenize_embedder(embedder, &pos);
        goto out;
    }
    if (cli_t5_open(&m, model, false) || cli_tokenize_all(&m, pos.items, pos.n, 0, &ids)) {
        rc = cli_fail_lib();
        goto out;
    }
    for (int i = 0; i < ids.n; i++) {
        for (int j = 0; j < ids.lens[i]; j++) printf(j ? " %d" : "%d", (int)ids.ids[i][j]);
        putchar('\n');
    }
out:
    cli_ids_free(&ids);
    cli_t5_close(&m);
    cli_list_free(&pos);
    return rc;
}
