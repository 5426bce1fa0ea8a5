/* cli_generate.c - `ilora generate`: greedy answers from a T5 model for texts given on the
 * command line, in a JSONL file, or taken from a BIG-Bench-Hard task file. */
#include <stdlib.h>
#include <string.h>

#include "bbh.h"
#include "cli_t5.h"
#include "lora.h"

static const char help[] =
    "usage: ilora generate --model DIR [options] TEXT...\n"
    "       ilora generate --model DIR [options] --input FILE.jsonl\n"
    "       ilora generate --model DIR [options] --task TASK.json [--max-questions N]\n\n"
    "Greedy decoding with a T5 / Flan-T5 model directory.\n"
    "  TEXT...               one output line per TEXT (newlines escaped as \\n, '\\' as \\\\)\n"
    "  --input FILE.jsonl    lines {\"input\": ...}; writes JSONL {\"input\",\"output\",\"truncated\"}\n"
    "  --task TASK.json      a BIG-Bench-Hard task file; writes JSONL\n"
    "                        {\"index\",\"input\",\"target\",\"output\",\"truncated\"}\n"
    "  --max-questions N     with --task: only the first N examples\n"
    "  --max-new-tokens N    generation budget per answer (default 256); 'truncated' is true\n"
    "                        when an answer stopped there without </s> (also reported on stderr)\n"
    "  --max-input-tokens N  inputs longer than N tokens are cut, keeping </s> (default 2048)\n"
    "  --batch N             inputs decoded together (default 8)\n"
    "  --lora DIR[=WEIGHT]   a PEFT LoRA adapter directory (repeatable; WEIGHT default 1). One\n"
    "                        adapter at weight 1 is used as it is; otherwise the adapters are\n"
    "                        composed with their weights by --compose\n"
    "  --compose RULE        linear (default; LoraHub's: A = sum w_i A_i, B = sum w_i B_i) or\n"
    "                        delta (exactly sum w_i s_i B_i A_i; ranks may differ)\n"
    "  --lora-apply HOW      merged (W + s B A folded into copies of the adapted weights),\n"
    "                        unmerged (added per row, as PEFT does) or auto (default: merged\n"
    "                        for 2 or more inputs, where it is faster; the two agree to float\n"
    "                        rounding)\n";

typedef struct {
    int max_new, max_input, batch;
} gen_settings;

static void print_record(const char *input, const char *target, int index, const char *output,
                         bool truncated, bool jsonl) {
    if (!jsonl) {
        cli_put_escaped_line(stdout, output);
        return;
    }
    il_buf b = {0};
    int rc = 0;
    if (index >= 0) rc |= il_buf_printf(&b, "{\"index\":%d,\"input\":", index);
    else rc |= il_buf_puts(&b, "{\"input\":");
    rc |= il_buf_json_string(&b, input);
    if (target) { rc |= il_buf_puts(&b, ",\"target\":"); rc |= il_buf_json_string(&b, target); }
    rc |= il_buf_puts(&b, ",\"output\":");
    rc |= il_buf_json_string(&b, output);
    rc |= il_buf_printf(&b, ",\"truncated\":%s}\n", truncated ? "true" : "false");
    if (!rc) fputs(b.data, stdout);
    il_buf_free(&b);
}

/* Generates for all texts in chunks of `batch` and prints each record as soon as its chunk
 * is done. Everything is tokenized (and so validated) before the first answer. */
static int run(cli_t5 *m, const gen_settings *s, const char *const *texts, const char *const *targets,
               int n, bool jsonl, bool indexed) {
    cli_ids ids;
    if (cli_tokenize_all(m, texts, n, s->max_input, &ids)) return cli_fail_lib();
    if (ids.n_truncated)
        fprintf(stderr, "ilora: warning: %d input(s) longer than %d tokens were truncated\n",
                ids.n_truncated, s->max_input);
    il_gen_opts o = il_gen_default_opts();
    o.max_new_tokens = s->max_new;
    int rc = EXIT_OK, n_hit = 0;
    int32_t **out = il_calloc((size_t)s->batch, sizeof *out);
    int *out_lens = il_calloc((size_t)s->batch, sizeof *out_lens);
    bool *hit = il_calloc((size_t)s->batch, sizeof *hit);
    if (!out || !out_lens || !hit) { rc = cli_fail_lib(); goto done; }
    for (int start = 0; start < n; start += s->batch) {
        int k = n - start < s->batch ? n - start : s->batch;
        if (il_t5_generate(m->model, k, (const int32_t *const *)ids.ids + start, ids.lens + start, &o,
                           out, out_lens, hit)) {
            rc = cli_fail_lib();
            goto done;
        }
        for (int i = 0; i < k; i++) {
            char *text = il_tokenizer_decode(m->tok, out[i], out_lens[i], true, il_tokenizer_cleanup_default(m->tok));
            if (!text) { rc = cli_fail_lib(); goto done; }
            n_hit += hit[i];
            print_record(texts[start + i], targets ? targets[start + i] : NULL, indexed ? start + i : -1,
                         text, hit[i], jsonl);
            free(text);
        }
        for (int i = 0; i < k; i++) { free(out[i]); out[i] = NULL; }
        fflush(stdout);
    }
    if (n_hit)
        fprintf(stderr, "ilora: warning: %d of %d answer(s) reached --max-new-tokens %d without </s>\n",
                n_hit, n, s->max_new);
done:
    if (out)
        for (int i = 0; i < s->batch; i++) free(out[i]);
    free(out); free(out_lens); free(hit);
    cli_ids_free(&ids);
    return rc;
}

/* The adapter (if any) applied to m for n inputs: merged or through a context. */
typedef struct {
    il_lora *adapter;
    bool owned;
    il_lora_ctx *ctx;
    il_lora_merged *merged;
} gen_lora;

static int apply_lora(cli_t5 *m, cli_loras *l, il_lora_rule rule, const char *how, int n,
                      gen_lora *g) {
    if (!l->n) return 0;
    if (cli_loras_load(l, il_t5_get_config(m->model)) ||
        !(g->adapter = cli_loras_combine(l, rule, &g->owned)))
        return -1;
    bool merge = !strcmp(how, "merged") || (!strcmp(how, "auto") && n >= 2);
    if (merge) return (g->merged = il_lora_merge(m->model, g->adapter)) ? 0 : -1;
    if (!(g->ctx = il_lora_ctx_new(m->model))) return -1;
    return il_lora_ctx_set_default(g->ctx, g->adapter);
}

static void release_lora(gen_lora *g) {
    il_lora_unmerge(g->merged);
    il_lora_ctx_free(g->ctx);
    if (g->owned) il_lora_free(g->adapter);
    memset(g, 0, sizeof *g);
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *input = NULL, *task = NULL, *compose = NULL, *how = "auto";
    cli_list lora_args = {0};
    cli_loras loras = {0};
    il_lora_rule rule = IL_LORA_LINEAR;
    gen_lora gl = {0};
    gen_settings s = {256, 2048, 8};
    int max_questions = 0;
    const cli_opt opts[] = {
        {"--model", OPT_STRING, &model, 0, 0},
        {"--input", OPT_STRING, &input, 0, 0},
        {"--task", OPT_STRING, &task, 0, 0},
        {"--max-questions", OPT_INT, &max_questions, 1, 1000000},
        {"--max-new-tokens", OPT_INT, &s.max_new, 1, 100000},
        {"--max-input-tokens", OPT_INT, &s.max_input, 2, 1000000},
        {"--batch", OPT_INT, &s.batch, 1, 4096},
        {"--lora", OPT_LIST, &lora_args, 0, 0},
        {"--compose", OPT_STRING, &compose, 0, 0},
        {"--lora-apply", OPT_STRING, &how, 0, 0},
    };
    cli_list pos = {0};
    bool want_help;
    cli_t5 m = {0};
    cli_examples ex = {0};
    il_bbh_task t = {0};
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help, stdout); goto out; }
    if (!model) { rc = cli_fail(EXIT_USAGE, "generate needs --model DIR (see --help)"); goto out; }
    if ((pos.n > 0) + (input != NULL) + (task != NULL) != 1) {
        rc = cli_fail(EXIT_USAGE, "give exactly one of: TEXT..., --input FILE.jsonl, --task TASK.json");
        goto out;
    }
    if (max_questions && !task) { rc = cli_fail(EXIT_USAGE, "--max-questions needs --task"); goto out; }
    if (compose && !lora_args.n) { rc = cli_fail(EXIT_USAGE, "--compose needs --lora"); goto out; }
    if (compose && (rc = cli_parse_rule(compose, &rule))) goto out;
    if (strcmp(how, "auto") && strcmp(how, "merged") && strcmp(how, "unmerged")) {
        rc = cli_fail(EXIT_USAGE, "option --lora-apply: expected merged, unmerged or auto, got '%s'", how);
        goto out;
    }
    if ((rc = cli_loras_parse(&loras, &lora_args, NULL, true))) goto out;
    /* Read and validate the inputs before loading the (possibly large) model. */
    if (input && cli_read_examples(input, false, &ex)) { rc = cli_fail_lib(); goto out; }
    if (task && il_bbh_load(&t, task)) { rc = cli_fail_lib(); goto out; }
    if (cli_t5_open(&m, model, true)) { rc = cli_fail_lib(); goto out; }
    int n_in = pos.n ? pos.n : input ? ex.n : (max_questions && max_questions < t.n ? max_questions : t.n);
    if (apply_lora(&m, &loras, rule, how, n_in, &gl)) { rc = cli_fail_lib(); goto out; }
    if (pos.n) rc = run(&m, &s, pos.items, NULL, pos.n, false, false);
    else if (input) rc = run(&m, &s, (const char *const *)ex.input, NULL, ex.n, true, false);
    else {
        int n = max_questions && max_questions < t.n ? max_questions : t.n;
        rc = run(&m, &s, (const char *const *)t.input, (const char *const *)t.target, n, true, true);
    }
out:
    release_lora(&gl);
    cli_loras_free(&loras);
    cli_list_free(&lora_args);
    il_bbh_free(&t);
    cli_examples_free(&ex);
    cli_t5_close(&m);
    cli_list_free(&pos);
    return rc;
}
