/* cli_tokenize.c - `ilora tokenize --model DIR TEXT...`: token ids, one line per TEXT. */
#include <stdio.h>

#include "cli_t5.h"

static const char help[] =
    "usage: ilora tokenize --model DIR TEXT...\n\n"
    "Print the token ids of each TEXT on its own line, space-separated, exactly as Hugging\n"
    "Face's T5 tokenizer gives them (including the trailing </s>, id 1).\n"
    "DIR holds spiece.model (or tokenizer.json) and optionally tokenizer_config.json.\n";

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    const cli_opt opts[] = {{"--model", OPT_STRING, &model, 0, 0}};
    cli_list pos = {0};
    bool want_help;
    cli_t5 m = {0};
    cli_ids ids = {0};
    int rc = cli_parse(argc, argv, opts, 1, &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help, stdout); goto out; }
    if (!model) { rc = cli_fail(EXIT_USAGE, "tokenize needs --model DIR (see --help)"); goto out; }
    if (pos.n == 0) { rc = cli_fail(EXIT_USAGE, "tokenize needs at least one TEXT"); goto out; }
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
